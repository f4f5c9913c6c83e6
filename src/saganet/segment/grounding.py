"""Text grounding: boxes for a phrase on key frames, with Grounding DINO from transformers.

`Grounder.detect(frames, text, key_frames)` returns `Detection`s (frame, box in display pixels, score) above
`min_score`, after non-maximum suppression per frame. `choose_detections` keeps the key frame whose best
score is highest and up to `max_objects` of its boxes (one object per match); the data tools (issue 14) can
call `detect` themselves to apply their own rule (consistency across key frames, size, ...).

The hub model is `IDEA-Research/grounding-dino-tiny` (172 M parameters, Swin-T + BERT-base), resolved through
saganet.weights (a local folder, the hub cache or a download; offline, a one-line error naming the command).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from saganet import weights
from saganet.errors import CheckpointError
from saganet.weights import HubModel, resolve_hub

log = logging.getLogger(__name__)

__all__ = ["GROUNDING_DINO", "Detection", "Grounder", "choose_detections", "default_key_frames"]

GROUNDING_DINO = HubModel("grounding-dino-tiny", "IDEA-Research/grounding-dino-tiny")


@dataclass(frozen=True)
class Detection:
    frame: int
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in display pixels
    score: float
    label: str

    def to_dict(self) -> dict:
        return {"frame": self.frame, "box": [round(v, 2) for v in self.box], "score": round(self.score, 4),
                "label": self.label}


def default_key_frames(n_frames: int, count: int = 3) -> list[int]:
    """`count` frames spread over the clip (first, middle, ... last quarter), distinct."""
    if n_frames <= 0:
        return []
    return sorted({int(round(q * (n_frames - 1))) for q in np.linspace(0.0, 0.75, count)})


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box `a` (4,) with boxes `b` (N, 4)."""
    x0, y0 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    x1, y1 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return inter / np.maximum(area, 1e-9)


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    order = list(np.argsort(-scores))
    keep: list[int] = []
    while order:
        i = order.pop(0)
        keep.append(int(i))
        if order:
            ious = _iou(boxes[i], boxes[order])
            order = [j for j, v in zip(order, ious) if v <= iou]
    return keep


class Grounder:
    """Grounding DINO (transformers `GroundingDinoForObjectDetection` + `GroundingDinoProcessor`)."""

    def __init__(self, model, processor, device: str | torch.device = "cpu", model_id: str = "?"):
        self.model = model.eval().to(device)
        self.processor = processor
        self.device = torch.device(device)
        self.model_id = model_id

    @classmethod
    def from_hub(cls, device: str | torch.device = "cpu", offline: bool | None = None,
                 model_dirs: dict | None = None) -> Grounder:
        """Load Grounding DINO tiny through saganet.weights (local folder, hub cache or download)."""
        from transformers import GroundingDinoForObjectDetection, GroundingDinoProcessor

        try:
            hub = weights.hub_model(GROUNDING_DINO.key)
        except CheckpointError:
            hub = GROUNDING_DINO
        try:
            path = resolve_hub(hub, offline=offline, model_dirs=model_dirs)
        except CheckpointError as e:
            raise CheckpointError(f"text prompts need {hub.repo_id}: {str(e).splitlines()[0]} (or click on the "
                                  "object instead of naming it)") from e
        try:
            model = GroundingDinoForObjectDetection.from_pretrained(path)
            processor = GroundingDinoProcessor.from_pretrained(path)
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise CheckpointError(f"cannot load {hub.repo_id} from {path} ({str(e).splitlines()[0][:200]}): "
                                  "expected a copy of the hub repository (config.json, model.safetensors, "
                                  "tokenizer and processor files)") from e
        return cls(model, processor, device, hub.repo_id)

    @torch.inference_mode()
    def detect(self, frames: np.ndarray, text: str, key_frames: list[int], min_score: float = 0.3,
               text_threshold: float | None = None, nms_iou: float = 0.7) -> list[Detection]:
        """Boxes for `text` on each key frame of `frames` (T, H, W, 3) uint8, best first per frame."""
        phrase = text.strip().lower()
        if not phrase.endswith("."):
            phrase += "."  # Grounding DINO's prompt format: phrases end with a period
        H, W = frames.shape[1:3]
        out: list[Detection] = []
        for f in key_frames:
            inputs = self.processor(images=frames[f], text=phrase, return_tensors="pt").to(self.device)
            outputs = self.model(**inputs)
            res = self.processor.post_process_grounded_object_detection(
                outputs, inputs["input_ids"], threshold=min_score,
                text_threshold=min_score if text_threshold is None else text_threshold, target_sizes=[(H, W)])[0]
            boxes = res["boxes"].float().cpu().numpy().reshape(-1, 4)
            scores = res["scores"].float().cpu().numpy().reshape(-1)
            labels = res["text_labels"] if "text_labels" in res else [phrase] * len(scores)
            if not len(scores):
                continue
            boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, W)
            boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, H)
            ok = ((boxes[:, 2] - boxes[:, 0]) >= 1) & ((boxes[:, 3] - boxes[:, 1]) >= 1)
            for i in _nms(boxes, scores, nms_iou):
                if ok[i] and scores[i] >= min_score:
                    label = str(labels[i]).replace("[SEP]", "").strip(" .") if i < len(labels) else text
                    out.append(Detection(int(f), tuple(float(v) for v in boxes[i]), float(scores[i]), label))
        return out


def choose_detections(dets: list[Detection], max_objects: int) -> list[Detection]:
    """The key frame with the highest top score; its boxes, best first, at most `max_objects`."""
    if not dets:
        return []
    best = max(dets, key=lambda d: d.score).frame
    return sorted((d for d in dets if d.frame == best), key=lambda d: -d.score)[:max_objects]
