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
Memory: the processor keeps every frame at 1024² (12 MB each in float32): ~1.5 GB for 5 s at 25 fps.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from saganet.errors import CheckpointError, InputError
from saganet.segment.frames import VideoFrames
from saganet.segment.grounding import Grounder, choose_detections, default_key_frames
from saganet.segment.prompts import Box, ObjectPrompt
from saganet.segment.result import ObjectTrack
from saganet.weights import HubModel, resolve_hub

log = logging.getLogger(__name__)

__all__ = ["Sam2Segmenter", "hub_model"]


def hub_model(key: str) -> HubModel:
    from saganet.segment.api import SAM2_MODELS

    return HubModel(key, SAM2_MODELS[key])


class Sam2Segmenter:
    """SAM 2 video segmenter around a `Sam2VideoModel` and its `Sam2VideoProcessor`."""

    def __init__(self, model, processor, name: str = "sam2", model_id: str = "?",
                 device: str | torch.device = "cpu", grounder: Grounder | None = None,
                 offline: bool | None = None, key_frames: int = 3):
        self.model = model.eval().to(device)
        self.processor = processor
        self.name, self.model_id = name, model_id
        self.device = torch.device(device)
        self.dtype = next(model.parameters()).dtype
        self._grounder = grounder
        self.offline = offline
        self.key_frames = key_frames

    @classmethod
    def from_hub(cls, key: str, device: str | torch.device | None = None, offline: bool | None = None
                 ) -> Sam2Segmenter:
        """Load `facebook/sam2.1-hiera-*` from the hub cache (download unless offline)."""
        from transformers import Sam2VideoModel, Sam2VideoProcessor

        hub = hub_model(key)
        try:
            path = resolve_hub(hub, offline=offline)
        except CheckpointError as e:
            raise CheckpointError(f"segmenter {key} needs {hub.repo_id}, which is not available: fetch it with "
                                  f"`hf download {hub.repo_id}` (internet access), or use --segmenter color on "
                                  f"flat-coloured scenes ({str(e).split(':')[0]})") from e
        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        model = Sam2VideoModel.from_pretrained(path)
        seg = cls(model, Sam2VideoProcessor.from_pretrained(path), key, hub.repo_id, dev, offline=offline)
        return seg

    @property
    def grounder(self) -> Grounder:
        if self._grounder is None:
            self._grounder = Grounder.from_hub(self.device, self.offline)
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

    @torch.inference_mode()
    def segment(self, frames: VideoFrames, objects: list[ObjectPrompt], max_objects: int = 5,
                min_score: float = 0.3) -> list[ObjectTrack]:
        objects, infos = self._expand_text(frames, objects, max_objects, min_score)
        T, (H, W) = len(frames), frames.size
        session = self.processor.init_video_session(video=list(frames.frames), inference_device=self.device,
                                                    video_storage_device="cpu", dtype=self.dtype)
        prompted = [o.frames for o in objects]
        for i, (obj, fs) in enumerate(zip(objects, prompted)):
            for f in fs:
                self._add_prompts(session, i + 1, obj, f)
                self.model(inference_session=session, frame_idx=f)  # conditioning output on this frame
        n = len(objects)
        fwd = np.zeros((n, T, H, W), bool)
        fwd_s = np.zeros((n, T), np.float32)
        rev = np.zeros((n, T, H, W), bool)
        rev_s = np.zeros((n, T), np.float32)
        first, last = min(min(fs) for fs in prompted), max(max(fs) for fs in prompted)
        for out in self.model.propagate_in_video_iterator(session, start_frame_idx=first):
            fwd[:, out.frame_idx], fwd_s[:, out.frame_idx] = self._masks(out, (H, W))
        if last > 0:
            for out in self.model.propagate_in_video_iterator(session, start_frame_idx=last, reverse=True):
                rev[:, out.frame_idx], rev_s[:, out.frame_idx] = self._masks(out, (H, W))
        tracks = []
        t = np.arange(T)
        for i, (obj, fs) in enumerate(zip(objects, prompted)):
            f = np.asarray(fs)
            before = np.where(f[None] <= t[:, None], t[:, None] - f[None], np.inf).min(1)
            after = np.where(f[None] >= t[:, None], f[None] - t[:, None], np.inf).min(1)
            use_fwd = before <= after  # the nearest prompt is at or before t
            masks = np.where(use_fwd[:, None, None], fwd[i], rev[i])
            scores = np.where(use_fwd, fwd_s[i], rev_s[i]).astype(np.float32)
            tracks.append(ObjectTrack(obj.name, masks, scores, obj, infos[i]))
        return tracks
