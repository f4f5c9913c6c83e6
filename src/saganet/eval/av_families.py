"""The paper's metric families (av-benchmark definitions) and the segmentation-aware score.

| family | metrics | needs |
|---|---|---|
| `panns` | FD_PANNs (2048-d, unpaired), KL_PANNs (paired, softmax; `_sigmoid` too), IS_PANNs (mean, std) | refs for FD/KL |
| `passt` | FD_PaSST (768-d), KL_PaSST (paired, softmax), IS_PaSST | refs for FD/KL |
| `vggish` | FD_VGGish (per-0.96 s example embeddings of all files, unpaired) | refs |
| `desync` | DeSync (s): Synchformer offset of generated audio vs its video; `DeSync_focal` on the object's focal crop when a mask is known | videos |
| `imagebind` | IB_score: cosine of ImageBind audio (3 x 2 s clips) and vision (0.5 fps, 3 crops) embeddings; IB_focal on the object's focal crop | videos (+ masks) |
| `clap` | CLAP score: cosine of the audio and its prompt's text embedding (LAION-CLAP HTSAT-base) | prompts |
| `target_distractor` | accuracy and margin of PANNs-embedding cosine similarity of each generated stem to its own true stem vs the other objects' true stems | scenes with >= 2 objects and refs |

Set sizes: FD needs >= 2 files per side; IS uses av-benchmark's 10 shuffled splits (fewer files than
splits -> fewer, non-empty splits).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from saganet.errors import InputError
from saganet.eval import maths
from saganet.eval.families import EvalItem, FamilyResult, register_family

log = logging.getLogger(__name__)

__all__ = ["PannsFamily", "PaSSTFamily", "ClapFamily", "IBFamily", "VGGishFamily", "DeSyncFamily", "TargetDistractorFamily"]


def _progress(items, ctx, desc):
    from tqdm import tqdm

    return tqdm(items, desc=desc, disable=not ctx.opts.progress, leave=False)


class _ClassifierFamily:
    """FD on the embedding (unpaired), paired KL and IS on the logits of one AudioSet classifier."""

    model = ""
    label = ""

    @property
    def needs(self) -> tuple[str, ...]:
        return (self.model,)

    def compute(self, items: list[EvalItem], ctx) -> FamilyResult:
        res = FamilyResult()
        L = self.label
        gen, ref, gl, rl, paired_gl = [], [], [], [], []
        for it in _progress(items, ctx, L):
            g = ctx.embed(self.model, it.gen)
            gen.append(g["embedding"])
            gl.append(g["logits"])
            if it.ref is not None:
                r = ctx.embed(self.model, it.ref)
                ref.append(r["embedding"])
                rl.append(r["logits"])
                paired_gl.append(g["logits"])
                cos = float(np.dot(g["embedding"], r["embedding"]) /
                            max(np.linalg.norm(g["embedding"]) * np.linalg.norm(r["embedding"]), 1e-12))
                res.rows[it.name] = {f"KL_{L}": maths.kl_paired(g["logits"][None], r["logits"][None]),
                                     f"cos_{L}": cos}
        if len(ref) >= 2 and len(gen) >= 2:
            res.metrics[f"FD_{L}"] = maths.frechet_distance(np.stack(gen), np.stack(ref))
        elif ref:
            res.notes.append(f"FD_{L} needs at least 2 files per side")
        if rl:
            res.metrics[f"KL_{L}"] = maths.kl_paired(np.stack(paired_gl), np.stack(rl))
            res.metrics[f"KL_{L}_sigmoid"] = maths.kl_paired(np.stack(paired_gl), np.stack(rl), "sigmoid")
        mean, std = maths.inception_score(np.stack(gl))
        res.metrics[f"IS_{L}"], res.metrics[f"IS_{L}_std"] = mean, std
        return res


class PannsFamily(_ClassifierFamily):
    name = model = "panns"
    label = "PANNs"
    description = "PANNs CNN14 (16 kHz): FD on the 2048-d embedding, paired KL and IS on the 527 logits"


class PaSSTFamily(_ClassifierFamily):
    name = model = "passt"
    label = "PaSST"
    description = "PaSST-S (32 kHz, 10 s): FD on the 768-d embedding, paired KL and IS on the 527 logits"


class VGGishFamily:
    name = "vggish"
    needs = ("vggish",)
    description = "VGGish (16 kHz, 0.96 s examples): FD on the 128-d example embeddings"

    def compute(self, items: list[EvalItem], ctx) -> FamilyResult:
        res = FamilyResult()
        gen, ref = [], []
        for it in _progress(items, ctx, "VGGish"):
            g = ctx.embed("vggish", it.gen)["frames"]
            if len(g) == 0:
                res.skipped[it.name] = "shorter than one 0.96 s VGGish example"
                continue
            gen.append(g)
            if it.ref is not None:
                r = ctx.embed("vggish", it.ref)["frames"]
                if len(r):
                    ref.append(r)
        if gen and ref and sum(map(len, gen)) >= 2 and sum(map(len, ref)) >= 2:
            res.metrics["FD_VGGish"] = maths.frechet_distance(np.concatenate(gen), np.concatenate(ref))
        else:
            res.notes.append("FD_VGGish needs references and at least 2 examples per side")
        return res


class DeSyncFamily:
    name = "desync"
    needs = ("synchformer",)
    description = ("Synchformer offset (s) between each generated file and its video (first and last 14 "
                   "segments, av-benchmark); on the focal crop of the object's mask when known")

    def _video_features(self, ctx, it: EvalItem, emb, focal: bool) -> np.ndarray:
        from saganet.io.video import decode_video

        dur, size = ctx.opts.duration, emb.frame_size
        if not focal:
            # av-benchmark: shorter side resized to 224 (bicubic), centre crop, [-1, 1]
            v = decode_video(it.video, duration=dur, clip_size=32, sync_size=size, sync_geometry="center_crop",
                             quiet=True)
            return emb.embed_video(v.sync_frames)
        from saganet.focal import focal_crop
        from saganet.io.masks import MaskSpec, load_masks

        # the object's focal crop as SAGANet makes it: whole frame squashed to 224, cropped around the mask
        v = decode_video(it.video, duration=dur, clip_size=32, sync_size=size, quiet=True)
        m = load_masks([MaskSpec(it.mask)], v, pad=True)[0].masks  # (T, 1, S, S)
        frames, _, _ = focal_crop(v.sync_frames[None], m[None].float(), out_size=(size, size))
        return emb.embed_video(frames[0])

    def compute(self, items: list[EvalItem], ctx) -> FamilyResult:
        res = FamilyResult()
        emb = ctx.embedder("synchformer")
        full, focal = [], []
        for it in _progress(items, ctx, "DeSync"):
            if it.video is None:
                res.skipped[it.name] = "no video"
                continue
            try:
                a = ctx.embed("synchformer", it.gen)["segments"]
                vf = ctx.cached(f"{emb.id}-video", it.video,
                                lambda it=it: {"v": self._video_features(ctx, it, emb, focal=False)})["v"]
                n = emb.av.cfg.max_segments
                if len(a) < n or len(vf) < n:
                    res.skipped[it.name] = f"shorter than {n} sync segments (4.48 s)"
                    continue
                logits = emb.offset_logits(vf, a)
                full.append(logits)
                res.rows[it.name] = {"DeSync": maths.desync(logits)}
                if it.mask is not None and it.mask.is_file():
                    vfoc = ctx.cached(f"{emb.id}-focal-{ctx.file_hash(it.video)[:16]}", it.mask,
                                      lambda it=it: {"v": self._video_features(ctx, it, emb, focal=True)})["v"]
                    lf = emb.offset_logits(vfoc, a)
                    focal.append(lf)
                    res.rows[it.name]["DeSync_focal"] = maths.desync(lf)
            except (InputError, ValueError) as e:
                res.skipped[it.name] = str(e).splitlines()[0]
        if full:
            res.metrics["DeSync"] = maths.desync(np.concatenate(full))
        else:
            res.notes.append("DeSync: no file had a usable video")
        if focal:
            res.metrics["DeSync_focal"] = maths.desync(np.concatenate(focal))
        return res


class ClapFamily:
    name = "clap"
    needs = ("clap",)
    description = "LAION-CLAP (HTSAT-base, 48 kHz): mean cosine of each file's audio and its prompt's text embedding"

    def compute(self, items: list[EvalItem], ctx) -> FamilyResult:
        res = FamilyResult()
        emb = ctx.embedder("clap")
        with_text = [it for it in items if it.prompt]
        for it in items:
            if not it.prompt:
                res.skipped[it.name] = "no text prompt"
        if not with_text:
            res.notes.append("CLAP score: no file has a text prompt (give --prompts, or a batch folder with prompts)")
            return res
        prompts = sorted({it.prompt for it in with_text})
        text = dict(zip(prompts, emb.embed_text(prompts)))
        scores = []
        for it in _progress(with_text, ctx, "CLAP"):
            a = ctx.embed("clap", it.gen)["audio"]
            s = float(np.dot(a, text[it.prompt]) / max(np.linalg.norm(a) * np.linalg.norm(text[it.prompt]), 1e-12))
            res.rows[it.name] = {"CLAP": s}
            scores.append(s)
        res.metrics["CLAP_score"] = float(np.mean(scores))
        return res


class IBFamily:
    name = "imagebind"
    needs = ("imagebind",)
    description = ("IB-score: cosine of ImageBind's audio embedding of each file and its video's vision embedding; "
                   "IB_focal on the object's focal crop when a mask is known")

    @staticmethod
    def _focal_frames(ctx, it: EvalItem) -> torch.Tensor:
        """The object's focal crop (SAGANet's, 224², from the 25 fps squashed frames) at 0.5 fps, in [0, 1]."""
        from saganet.focal import focal_crop
        from saganet.io.masks import MaskSpec, load_masks
        from saganet.io.video import decode_video

        v = decode_video(it.video, duration=ctx.opts.duration, clip_size=32, sync_size=224, quiet=True)
        m = load_masks([MaskSpec(it.mask)], v, pad=True)[0].masks
        frames, _, _ = focal_crop(v.sync_frames[None], m[None].float(), out_size=(224, 224))
        return (frames[0, ::50] + 1) / 2  # 25 fps -> 0.5 fps

    def compute(self, items: list[EvalItem], ctx) -> FamilyResult:
        from saganet.eval.embedders.imagebind import read_frames_at

        res = FamilyResult()
        emb = ctx.embedder("imagebind")
        scores, focal = [], []

        def cos(a, b) -> float:
            return float(np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))

        for it in _progress(items, ctx, "ImageBind"):
            if it.video is None:
                res.skipped[it.name] = "no video"
                continue
            try:
                v = ctx.cached(f"{emb.id}-video", it.video, lambda it=it: {
                    "v": emb.embed_frames(read_frames_at(it.video, 0.5, ctx.opts.duration))})["v"]
                a = ctx.embed("imagebind", it.gen)["audio"]
                res.rows[it.name] = {"IB": cos(a, v)}
                scores.append(res.rows[it.name]["IB"])
                if it.mask is not None and it.mask.is_file():
                    vf = ctx.cached(f"{emb.id}-focal-{ctx.file_hash(it.video)[:16]}", it.mask,
                                    lambda it=it: {"v": emb.embed_frames(self._focal_frames(ctx, it))})["v"]
                    res.rows[it.name]["IB_focal"] = cos(a, vf)
                    focal.append(res.rows[it.name]["IB_focal"])
            except (InputError, ValueError) as e:
                res.skipped[it.name] = str(e).splitlines()[0]
                res.rows.pop(it.name, None)
        if scores:
            res.metrics["IB_score"] = float(np.mean(scores))
        else:
            res.notes.append("IB-score: no file had a usable video")
        if focal:
            res.metrics["IB_focal"] = float(np.mean(focal))
        return res


class TargetDistractorFamily:
    name = "target_distractor"
    needs = ("panns",)
    description = ("per multi-object scene: cosine similarity (PANNs embedding) of each generated stem to its "
                   "own true stem vs the other objects' true stems -> accuracy, margin")

    def compute(self, items: list[EvalItem], ctx) -> FamilyResult:
        res = FamilyResult()
        scenes: dict[str, list[EvalItem]] = {}
        for it in items:
            if it.scene is not None and it.ref is not None:
                scenes.setdefault(it.scene, []).append(it)
        accs, margins = [], []
        for its in _progress(list(scenes.values()), ctx, "target/distractor"):
            if len(its) < 2:
                for it in its:
                    res.skipped[it.name] = "scene has one object (no distractor)"
                continue
            g = torch.tensor(np.stack([ctx.embed("panns", it.gen)["embedding"] for it in its]))
            r = torch.tensor(np.stack([ctx.embed("panns", it.ref)["embedding"] for it in its]))
            sim = torch.nn.functional.cosine_similarity(g[:, None], r[None], dim=-1).numpy()
            own = np.diag(sim)
            for i, it in enumerate(its):
                other = np.delete(sim[i], i).max()
                res.rows[it.name] = {"td_correct": float(own[i] > other), "td_margin": float(own[i] - other)}
                accs.append(float(own[i] > other))
                margins.append(float(own[i] - other))
        if accs:
            res.metrics["TD_accuracy"] = float(np.mean(accs))
            res.metrics["TD_margin"] = float(np.mean(margins))
            res.metrics["TD_scenes"] = float(sum(len(v) >= 2 for v in scenes.values()))
        else:
            res.notes.append("target vs distractor: no scene with >= 2 objects and references")
        return res


register_family("panns", PannsFamily)
register_family("passt", PaSSTFamily)
register_family("vggish", VGGishFamily)
register_family("desync", DeSyncFamily)
register_family("clap", ClapFamily)
register_family("imagebind", IBFamily)
register_family("target_distractor", TargetDistractorFamily)
