"""SAM 2.1 video propagation through transformers (`Sam2VideoModel` + `Sam2VideoProcessor`).

Why transformers and not Meta's `sam2` package: transformers is already a dependency of the data tools,
ships wheels for every platform (the `sam2` package compiles a CUDA extension at install time and pins its own
torch), builds the model from a plain config (so tests run the real classes at a tiny size without any
download), and loads the hub checkpoints `facebook/sam2.1-hiera-*` through huggingface_hub like our other hub
models. Its video API (inference session, per-object point / box inputs on any frame, propagation forwards and
in reverse, mask post-processing to the original size) covers everything `saganet segment` needs.

How a clip is segmented (`Sam2Segmenter.segment`):
1. text prompts become boxes: Grounding DINO on key frames (`saganet.segment.grounding`), one object per
   kept box;
2. every object's clicks / box on every prompted frame are added to one inference session (object ids 1..N)
   and run on that frame (conditioning frames);
3. propagation forwards from the earliest prompted frame to the end, and in reverse from the latest prompted
   frame to the start; each frame of each object takes the pass coming from that object's nearest prompt
   (forward if its nearest prompted frame is at or before it);
4. low-resolution mask logits are resized to the video's size by the processor and thresholded at 0; the
   per-frame score is the sigmoid of SAM's object-presence logit.

Coordinates: prompts are display pixels of the decoded (rotated) frames; the processor scales them by
`target_size / (W, H)` into the model's square input, as it does the frames.
Memory: frames are preprocessed to 1024² when the model reaches them and only a few are kept (the processor
would otherwise hold the whole clip at 12 MB a frame); masks are kept at the video's size, (objects, T, H, W)
booleans, and so are the decoded frames.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from saganet import weights
from saganet.errors import CheckpointError, InputError
from saganet.segment.frames import VideoFrames
from saganet.segment.grounding import Grounder, choose_detections, default_key_frames
from saganet.segment.models import SAM2_MODELS
from saganet.segment.prompts import Box, ObjectPrompt
from saganet.segment.result import ObjectTrack
from saganet.weights import HubModel, resolve_hub

log = logging.getLogger(__name__)

__all__ = ["Sam2Segmenter", "hub_model"]


def hub_model(key: str) -> HubModel:
    """The hub model of a SAM 2.1 size ("sam2.1-tiny", ...), as registered in saganet.weights."""
    try:
        return weights.hub_model(key)
    except CheckpointError:  # not registered there: the hub id alone is enough to fetch it
        return HubModel(key, SAM2_MODELS[key])


class Sam2Segmenter:
    """SAM 2 video segmenter around a `Sam2VideoModel` and its `Sam2VideoProcessor`."""

    def __init__(self, model, processor, name: str = "sam2", model_id: str = "?",
                 device: str | torch.device = "cpu", grounder: Grounder | None = None,
                 offline: bool | None = None, key_frames: int = 3, model_dirs: dict | None = None):
        self.model = model.eval().to(device)
        self.processor = processor
        self.name, self.model_id = name, model_id
        self.device = torch.device(device)
        self.dtype = next(model.parameters()).dtype
        self._grounder = grounder
        self.offline, self.model_dirs = offline, model_dirs
        self.key_frames = key_frames

    @classmethod
    def from_hub(cls, key: str, device: str | torch.device | None = None, offline: bool | None = None,
                 model_dirs: dict | None = None) -> Sam2Segmenter:
        """Load `facebook/sam2.1-hiera-*` through saganet.weights: a local folder given for the model
        (`model_dirs`, environment, config file), else the hub cache, else a download unless offline."""
        from transformers import Sam2VideoModel, Sam2VideoProcessor

        hub = hub_model(key)
        try:
            path = resolve_hub(hub, offline=offline, model_dirs=model_dirs)
        except CheckpointError as e:
            raise CheckpointError(f"segmenter {key} needs {hub.repo_id}: {str(e).splitlines()[0]} (or use "
                                  "--segmenter color on flat-coloured scenes)") from e
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        try:
            model = Sam2VideoModel.from_pretrained(path)
            processor = Sam2VideoProcessor.from_pretrained(path)
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise CheckpointError(f"cannot load {hub.repo_id} from {path} ({str(e).splitlines()[0][:200]}): "
                                  "expected a copy of the hub repository (config.json, model.safetensors, "
                                  "processor_config.json)") from e
        return cls(model, processor, key, hub.repo_id, dev, offline=offline, model_dirs=model_dirs)

    @property
    def grounder(self) -> Grounder:
        if self._grounder is None:
            self._grounder = Grounder.from_hub(self.device, self.offline, self.model_dirs)
        return self._grounder

    # ------------------------------------------------------------------------------------- text
    def _expand_text(self, frames: VideoFrames, objects: list[ObjectPrompt], max_objects: int,
                     min_score: float) -> tuple[list[ObjectPrompt], list[dict]]:
        """Text objects -> one box-prompted object per kept detection."""
        out, infos = [], []
        for obj in objects:
            if obj.text is None:
                out.append(obj)
                infos.append({})
                continue
            keys = [obj.text.frame] if obj.text.frame is not None else default_key_frames(len(frames),
                                                                                         self.key_frames)
            dets = choose_detections(self.grounder.detect(frames.frames, obj.text.text, keys, min_score),
                                     max_objects)
            if not dets:
                raise InputError(f"text '{obj.text.text}' finds nothing (score >= {min_score:g}) on the key "
                                 f"frames at {', '.join(f'{frames.times[k]:.2f}' for k in keys)} s: check the "
                                 "words, lower --min-score, or click on the object")
            for j, d in enumerate(dets):
                name = obj.name if len(dets) == 1 else f"{obj.name}_{j + 1}"
                box = Box(*d.box, time=float(frames.times[d.frame]), frame=d.frame)
                out.append(ObjectPrompt(name, [], [box], obj.text))
                infos.append({"detection": d.to_dict(), "grounding_model": self.grounder.model_id})
        return out, infos

    # ------------------------------------------------------------------------------------- SAM
    def _add_prompts(self, session, obj_id: int, obj: ObjectPrompt, frame: int) -> None:
        pts = [p for p in obj.points if p.frame == frame]
        boxes = [b for b in obj.boxes if b.frame == frame]
        if len(boxes) > 1:
            raise InputError(f"object '{obj.name}' has {len(boxes)} boxes on one frame: SAM 2 takes one box per "
                             "object and frame (add the others at other times, or as another --object)")
        kw = {}
        if pts:
            kw["input_points"] = [[[[float(p.x), float(p.y)] for p in pts]]]
            kw["input_labels"] = [[[1 if p.positive else 0 for p in pts]]]
        if boxes:
            kw["input_boxes"] = [[list(boxes[0].xyxy)]]
        self.processor.add_inputs_to_inference_session(inference_session=session, frame_idx=frame,
                                                       obj_ids=obj_id, **kw)

    def _masks(self, out, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Model output -> (N, H, W) bool masks at the video size, (N,) presence scores."""
        m = self.processor.post_process_masks([out.pred_masks.float().cpu()], original_sizes=[list(size)],
                                              binarize=True)[0]
        scores = torch.sigmoid(out.object_score_logits.float().reshape(-1)).cpu().numpy()
        return m[:, 0].numpy().astype(bool), scores

    def _session(self, frames: VideoFrames, lazy: bool = True):
        """An inference session over the clip; `lazy` preprocesses each frame when the model first asks for it
        and keeps only a few, instead of the whole clip at 1024² float32 (12 MB a frame)."""
        if not lazy:
            return self.processor.init_video_session(video=list(frames.frames), inference_device=self.device,
                                                     video_storage_device="cpu", dtype=self.dtype)
        session = self.processor.init_video_session(inference_device=self.device, video_storage_device="cpu",
                                                    dtype=self.dtype)
        session.processed_frames = _LazyFrames(frames.frames, self.processor, self.dtype)
        session.video_height, session.video_width = frames.size
        return session

    @torch.inference_mode()
    def segment(self, frames: VideoFrames, objects: list[ObjectPrompt], max_objects: int = 5,
                min_score: float = 0.3, lazy: bool = True) -> list[ObjectTrack]:
        objects, infos = self._expand_text(frames, objects, max_objects, min_score)
        T, (H, W) = len(frames), frames.size
        session = self._session(frames, lazy)
        prompted = [o.frames for o in objects]
        for i, (obj, fs) in enumerate(zip(objects, prompted)):
            for f in fs:
                self._add_prompts(session, i + 1, obj, f)
                self.model(inference_session=session, frame_idx=f)  # conditioning output on this frame
        # Each frame of each object takes the pass from its nearest prompt: forward if that is at or before it.
        t = np.arange(T)
        use_fwd = np.zeros((len(objects), T), bool)
        for i, fs in enumerate(prompted):
            f = np.asarray(fs)
            before = np.where(f[None] <= t[:, None], t[:, None] - f[None], np.inf).min(1)
            after = np.where(f[None] >= t[:, None], f[None] - t[:, None], np.inf).min(1)
            use_fwd[i] = before <= after
        masks = np.zeros((len(objects), T, H, W), bool)
        scores = np.zeros((len(objects), T), np.float32)
        first, last = min(min(fs) for fs in prompted), max(max(fs) for fs in prompted)
        for out in self.model.propagate_in_video_iterator(session, start_frame_idx=first):
            keep = use_fwd[:, out.frame_idx]
            m, sc = self._masks(out, (H, W))
            masks[keep, out.frame_idx], scores[keep, out.frame_idx] = m[keep], sc[keep]
        if last > 0:
            for out in self.model.propagate_in_video_iterator(session, start_frame_idx=last, reverse=True):
                keep = ~use_fwd[:, out.frame_idx]
                m, sc = self._masks(out, (H, W))
                masks[keep, out.frame_idx], scores[keep, out.frame_idx] = m[keep], sc[keep]
        return [ObjectTrack(obj.name, masks[i], scores[i], obj, infos[i]) for i, obj in enumerate(objects)]


class _LazyFrames(dict):
    """Frame index -> processed pixels (3, S, S), made on first access; only the last `keep` are held.

    Stands in for the dict of preprocessed frames of a `Sam2VideoInferenceSession` (the model reads frames
    only through `session.get_frame(i)` and the clip length through `len`).
    """

    def __init__(self, frames: np.ndarray, processor, dtype: torch.dtype, keep: int = 4):
        super().__init__()
        self._frames, self._processor, self._dtype, self._keep = frames, processor, dtype, keep

    def __len__(self) -> int:
        return len(self._frames)

    def __missing__(self, idx: int) -> torch.Tensor:
        if not 0 <= int(idx) < len(self._frames):
            raise KeyError(idx)
        px = self._processor.video_processor(videos=[self._frames[idx:idx + 1]], return_tensors="pt")
        px = px.pixel_values_videos[0, 0].to(self._dtype)
        while dict.__len__(self) >= self._keep:
            dict.pop(self, next(iter(dict.keys(self))))
        dict.__setitem__(self, idx, px)
        return px
