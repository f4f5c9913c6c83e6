"""A fake raw-source tree made from the toy world: long videos with audio in MUSIC21-, Solos- and AVSBench-like
folders, their SMS metadata.csv, and a URMP-like ensemble piece (mixture video + one stem per player) with its
metadata.tsv. Small (64 px, 16 kHz) so the data tests stay fast. Ground truth masks are kept for the checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from saganet.data.metadata import SMSRow, URMPRow, write_sms_metadata, write_urmp_metadata
from saganet.io.audio import write_audio
from saganet.io.writers import write_video
from saganet.toyworld.world import WorldConfig, render_scene, sample_multi_different, sample_solo

FPS, SR, SIZE, LONG = 25, 16000, 64, 4.0


@dataclass
class FakeWorld:
    root: Path
    sources: dict[str, Path]
    sms_metadata: Path
    urmp_source: Path
    urmp_metadata: Path
    truth: dict[str, np.ndarray] = field(default_factory=dict)  # ytid -> (T, H, W) bool mask of the long video
    sms_rows: list[SMSRow] = field(default_factory=list)
    urmp_rows: list[URMPRow] = field(default_factory=list)
    missing_ytid: str = "MISSING0000"
    corrupt_ytid: str = "CORRUPT0000"


def _long_scene(seed: int, cls: str, cfg: WorldConfig):
    rng = np.random.default_rng(seed)
    return render_scene(sample_solo(rng, cfg, cls=cls), cfg, rng)


def build_fake_world(base: Path, n_per_subset: int = 2) -> FakeWorld:
    cfg = WorldConfig(frame_size=SIZE, fps=FPS, sample_rate=SR, duration=LONG)
    sources = {s: base / "raw" / d for s, d in (("music21", "MUSIC21"), ("solos", "Solos"),
                                                 ("avs-semantic", "AVSBench"))}
    world = FakeWorld(base, sources, base / "sms_metadata.csv", base / "raw" / "URMP", base / "urmp_metadata.tsv")
    classes = ["pluck", "bell", "reed", "drum", "whistle", "buzz"]
    k = 0
    for subset, folder in sources.items():
        for i in range(n_per_subset):
            cls = classes[k % len(classes)]
            ytid = f"yt{subset[:3]}{i:02d}"
            scene = _long_scene(100 + k, cls, cfg)
            k += 1
            world.truth[ytid] = scene.masks[0]
            if subset == "avs-semantic":  # AVSBench ships clips already cut: `{filename}.mp4`
                name = f"{ytid}_1000_3000"
                s0, s1 = int(1.0 * FPS), int(3.0 * FPS)
                write_video(folder / cls / f"{name}.mp4", scene.video[s0:s1], FPS,
                            audio=scene.mix[int(1.0 * SR):int(3.0 * SR)], sample_rate=SR)
                world.sms_rows.append(SMSRow(subset, ytid, name, cls, 1000, 3000, "train"))
                continue
            write_video(folder / cls / f"{ytid}.mp4", scene.video, FPS, audio=scene.mix, sample_rate=SR)
            for w, (a, b) in enumerate(((0, 2000), (2000, 4000))):
                split = "val" if (i == 1 and w == 1) else "train"
                world.sms_rows.append(SMSRow(subset, ytid, f"{ytid}_{a}_{b}", cls, a, b, split))
    world.sms_rows.append(SMSRow("solos", world.missing_ytid, "", "bell", 0, 2000, "train"))
    corrupt = sources["music21"] / "reed" / f"{world.corrupt_ytid}.mp4"
    corrupt.parent.mkdir(parents=True, exist_ok=True)
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    world.sms_rows.append(SMSRow("music21", world.corrupt_ytid, "", "reed", 0, 2000, "train"))
    write_sms_metadata(world.sms_metadata, world.sms_rows)

    # URMP-like piece: two players of different classes, a mixture video and one separated stem per player
    rng = np.random.default_rng(7)
    objs = sample_multi_different(rng, cfg, n=2)
    scene = render_scene(objs, cfg, rng)
    piece = f"01_Toy_{scene.classes[0]}_{scene.classes[1]}"
    pdir = world.urmp_source / piece
    write_video(pdir / f"Vid_{piece}.mp4", scene.video, FPS, audio=scene.mix, sample_rate=SR)
    for p, cls in enumerate(scene.classes, start=1):
        write_audio(pdir / f"AuSep_{p}_{cls}_01_Toy.wav", scene.stems[p - 1], SR)
        world.truth[f"{piece}/{p}"] = scene.masks[p - 1]
    for a, b in ((0, 2000), (2000, 4000)):
        for p, cls in enumerate(scene.classes, start=1):
            world.urmp_rows.append(URMPRow(f"{piece}/Vid_{piece}_{a}_{b}", f"{piece}/AuSep_{p}_{cls}_01_Toy_{a}_{b}",
                                           f"{piece}/Masks_{p:02d}_{cls}_01_Toy_{a}_{b}", cls, a, b))
    write_urmp_metadata(world.urmp_metadata, world.urmp_rows)
    return world
