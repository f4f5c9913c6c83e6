"""`saganet demo`: a multi-object toy scene in, one click per object, one generated stem per object out.

It renders a test scene of the synthetic world and writes it as a user would have it (an mp4 with the
mixture audio). Then it does what a user of `saganet generate --point` does: one click on each object at
t = 0, the colour segmenter propagates each click into a mask over the whole clip (written as mask files,
scored against the world's true masks), and the real pipeline runs on the video and those masks with the
shipped SAGANet-tiny. It writes stems, mix and an mp4 with the masks outlined, and scores each stem
against the object's true sound.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from saganet.app.commands.segment import toy_palette
from saganet.app.outputs import check_output_dir, output_paths, write_outputs
from saganet.io.audio import write_audio
from saganet.io.masks import MaskSpec, load_masks
from saganet.io.writers import write_video
from saganet.pipeline import GenerationOptions, SAGANetPipeline
from saganet.toyworld.dataset import SPLITS, make_scene
from saganet.toyworld.metrics import build_class_templates, classify, evaluate_target
from saganet.toyworld.world import WorldConfig

log = logging.getLogger(__name__)


def run_demo(out_dir: str | Path, seed: int = 0, overwrite: bool = False, quiet: bool = False,
             variant: str = "toy") -> str:
    out = Path(out_dir)
    scene = make_scene("multi_diff", SPLITS["test_diff"][1], seed)
    names = [f"{c}{i}" if scene.classes.count(c) > 1 else c for i, c in enumerate(scene.classes)]
    inputs = out / "inputs"
    video_path = inputs / "scene.mp4"
    planned = list(output_paths(out, video_path, names, "flac").values())
    check_output_dir(out, planned, [], overwrite)
    world = WorldConfig()
    write_video(video_path, scene.video, world.fps, audio=scene.mix, sample_rate=world.sample_rate)
    for k, name in enumerate(names):
        write_audio(inputs / f"true_{name}.wav", scene.stems[k], world.sample_rate)
    # one click per object, propagated into masks by the colour segmenter (no download)
    from saganet.segment import segment_video, write_segmentation

    clicks = click_points(scene.masks[:, 0])
    prompts = [pair for name, (x, y) in zip(names, clicks) for pair in (("object", name), ("point", f"{x},{y}"))]
    seg = segment_video(video_path, prompts, "color", palette=toy_palette())
    seg_paths = write_segmentation(seg, inputs / "masks", overwrite=overwrite)
    specs = [MaskSpec(seg_paths[f"{name}:rle"], name=name) for name in names]
    ious = [mask_iou(o.masks, scene.masks[k]) for k, o in enumerate(seg.objects)]

    pipe = SAGANetPipeline.from_variant(variant)
    video = pipe.load_video(video_path, quiet=quiet)
    masks = load_masks(specs, video, keep_raw=True)  # raw masks are kept for the outline overlay
    opt = GenerationOptions(progress=not quiet)
    result = pipe.generate(video, masks, opt)
    paths = write_outputs(result, video_path, out, masks=masks, overlay_masks=True,
                          run_info={"variant": pipe.variant, "options": opt.to_dict(), "demo_scene": seed})

    templates = build_class_templates()
    lines = [f"scene: {len(names)} objects ({', '.join(scene.classes)}), {world.duration:.2f} s, "
             f"variant {pipe.variant}",
             "clicks at t=0: " + ", ".join(f"{n} ({x}, {y})" for n, (x, y) in zip(names, clicks)),
             "masks from the clicks (colour segmenter), IoU with the true masks: "
             + ", ".join(f"{n} {v:.2f}" for n, v in zip(names, ious)), "",
             "| object | generated class | onset F1 (target) ↑ | onset F1 (other objects) ↓ | log-mel dist ↓ |",
             "|---|---|---|---|---|"]
    L = scene.stems.shape[1]
    for k, name in enumerate(names):
        wav = result.stems[k].numpy()[:L]
        others = [scene.onsets[j] for j in range(len(names)) if j != k]
        r = evaluate_target(wav, scene.stems[k], scene.onsets[k], others, scene.classes[k], templates)
        lines.append(f"| {name} | {classify(wav, templates)} | {r['onset_f1']:.2f} | {r['distractor_f1']:.2f} | "
                     f"{r['logmel_dist']:.2f} |")
    lines += ["", "wrote:"] + [f"  {p}" for p in paths.values()]
    return "\n".join(lines)


def click_points(masks: np.ndarray) -> list[tuple[int, int]]:
    """One click per object: `masks (K, H, W)` bool -> the (x, y) of each mask's pixel nearest its centroid."""
    out = []
    for m in masks:
        ys, xs = np.nonzero(m)
        if not len(xs):
            raise ValueError("an object is not visible in the first frame")
        i = int(np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2))
        out.append((int(xs[i]), int(ys[i])))
    return out


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean mask stacks of the same shape (over all frames)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0
