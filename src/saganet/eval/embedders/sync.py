"""Synchformer as a DeSync scorer: video `(Ts, 3, 224, 224)` at 25 fps in [-1, 1] -> segment features
`(S, 8, 768)` (MotionFormer, 16-frame segments, step 8); audio at 16 kHz -> `(S', 6, 768)`; sync head
-> logits for the first and the last 14 segments `(2, 21)`."""

from __future__ import annotations

import numpy as np
import torch

from saganet.eval.embedders.base import check_keys, load_state_dict_file, resolve_eval_weights
from saganet.eval.embedders.synchformer_av import SyncAVConfig, SynchformerAV, sync_audio_input
from saganet.models.motionformer import MotionFormer, MotionFormerConfig

__all__ = ["SyncEmbedder", "video_segments"]


def video_segments(frames: torch.Tensor, size: int = 16, step: int = 8) -> torch.Tensor:
    """`(T, C, H, W)` -> `(S, C, size, H, W)` with S = (T - size) // step + 1."""
    if frames.shape[0] < size:
        raise ValueError(f"video has {frames.shape[0]} sync frames; DeSync needs >= {size}")
    seg = frames.unfold(0, size, step)  # (S, C, H, W, size)
    return seg.permute(0, 1, 4, 2, 3).contiguous()


class SyncEmbedder:
    name = "synchformer"
    sample_rate = 16000

    def __init__(self, video: MotionFormer, av: SynchformerAV, weights: str):
        self.video, self.av, self.weights = video.eval(), av.eval(), weights

    @classmethod
    def build(cls, weights: str = "official", size: str = "full") -> SyncEmbedder:
        if size == "tiny":
            vcfg = MotionFormerConfig(embed_dim=32, depth=1, num_heads=2, cross_attn_heads=2, img_size=32)
            return cls(MotionFormer(vcfg), SynchformerAV(SyncAVConfig.tiny()), "random-tiny")
        emb = cls(MotionFormer(MotionFormerConfig.full()), SynchformerAV(), "random-full")
        if weights != "random":
            path = resolve_eval_weights("synchformer_state_dict.pth") if weights == "official" else weights
            emb.load(path)
            emb.weights = "synchformer_state_dict"
        return emb

    def load(self, path) -> None:
        sd = load_state_dict_file(path)
        vis = {k[len("vfeat_extractor."):]: v for k, v in sd.items() if k.startswith("vfeat_extractor.")}
        rest = {k: v for k, v in sd.items() if not k.startswith("vfeat_extractor.")}
        check_keys(self.video, vis, "Synchformer visual branch")
        check_keys(self.av, rest, "Synchformer audio branch and sync head")
        self.video.load_state_dict(vis)
        self.av.load_state_dict(rest)

    @property
    def id(self) -> str:
        return f"synchformer/{self.weights}"

    @property
    def frame_size(self) -> int:
        return self.video.cfg.img_size

    @torch.no_grad()
    def embed(self, wav: np.ndarray) -> dict[str, np.ndarray]:
        """16 kHz audio -> {"segments": (S, 6, D)}."""
        spec = sync_audio_input(wav)
        return {"segments": self.av.extract_afeats(spec[None])[0].numpy()}

    @torch.no_grad()
    def embed_video(self, sync_frames: torch.Tensor, chunk: int = 4) -> np.ndarray:
        """`(Ts, 3, H, W)` in [-1, 1] at 25 fps -> `(S, 8, D)`."""
        seg = video_segments(sync_frames.float())
        out = [self.video(seg[i:i + chunk]) for i in range(0, len(seg), chunk)]
        return torch.cat(out).numpy()

    @torch.no_grad()
    def offset_logits(self, vfeat: np.ndarray, afeat: np.ndarray) -> np.ndarray:
        """`(S, 8, D)`, `(S', 6, D)` -> `(2, 21)` (first and last 14 segments)."""
        return self.av.desync_logits(torch.from_numpy(vfeat)[None], torch.from_numpy(afeat)[None])[0].numpy()
