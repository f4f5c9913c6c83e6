"""Object masks from clicks, boxes or words, over a whole video (issue 13).

Public API:
- `segment_video(video, prompts, segmenter="color"|"sam2.1-tiny"|..., ...) -> SegmentationResult`
- `write_segmentation(result, out_dir, overwrite=False)`: mask mp4 + COCO RLE JSON per object, preview.mp4,
  masks.json
- `to_object_masks(result, decoded_video) -> list[ObjectMask]` (what mask files give, for the pipeline)
- prompts: `parse_prompt_args([(kind, value), ...])`, `ObjectPrompt`, `Point`, `Box`, `TextPrompt`
- text grounding for data tools: `saganet.segment.grounding.Grounder(...).detect(frames, text, key_frames)`

Heavy parts (transformers) are imported lazily, only when a learned segmenter is used.
"""

from saganet.segment.api import (
    DEFAULT_LEARNED,
    SAM2_MODELS,
    SEGMENTERS,
    interpolate_masks,
    make_segmenter,
    segment_video,
)
from saganet.segment.frames import VideoFrames, load_frames
from saganet.segment.prompts import (
    Box,
    ObjectPrompt,
    Point,
    TextPrompt,
    frame_at_time,
    parse_prompt_args,
    validate_prompts,
)
from saganet.segment.result import (
    ObjectTrack,
    SegmentationResult,
    check_outputs,
    to_object_masks,
    write_segmentation,
)

__all__ = [
    "DEFAULT_LEARNED",
    "SAM2_MODELS",
    "SEGMENTERS",
    "Box",
    "ObjectPrompt",
    "ObjectTrack",
    "Point",
    "SegmentationResult",
    "TextPrompt",
    "VideoFrames",
    "check_outputs",
    "frame_at_time",
    "interpolate_masks",
    "load_frames",
    "make_segmenter",
    "parse_prompt_args",
    "segment_video",
    "to_object_masks",
    "validate_prompts",
    "write_segmentation",
]
