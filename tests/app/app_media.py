"""Helpers of the app tests. Small inputs: a toy-world scene (64 frames, 96x96, 25 fps) with one mask video per object,
a faststart copy that can be truncated, and a PNG renamed `.mp4`."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from saganet.io.writers import write_mask_video, write_video
from saganet.toyworld.dataset import SPLITS, make_scene
from saganet.toyworld.world import WorldConfig

TOY = ("--variant", "toy", "--steps", "2", "-q")


def write_faststart(path: Path, frames: np.ndarray, fps: int) -> None:
    """An H.264 mp4 with its index (moov) first, as downloads usually are: cut short, it still opens."""
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=fps)
        s.height, s.width = frames.shape[1:3]
        s.pix_fmt = "yuv420p"
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            c.mux(s.encode(vf))
        c.mux(s.encode(None))


@pytest.fixture(scope="session")
def toy_media(tmp_path_factory) -> dict:
    """scene.mp4 + mask_<k>.mp4 per object, the objects' click points (x, y) at t=0, and broken variants."""
    d = tmp_path_factory.mktemp("toy_media")
    scene = make_scene("multi_diff", SPLITS["test_diff"][1], 0)
    fps = WorldConfig().fps
    write_video(d / "scene.mp4", scene.video, fps)
    points, masks = [], []
    for k in range(len(scene.classes)):
        write_mask_video(d / f"mask_{k}.mp4", scene.masks[k], fps)
        masks.append(d / f"mask_{k}.mp4")
        ys, xs = np.nonzero(scene.masks[k][0])
        i = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))  # a pixel of the object near its centre
        points.append((int(xs[i]), int(ys[i])))
    write_faststart(d / "faststart.mp4", scene.video, fps)
    data = (d / "faststart.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) * 3 // 4])
    Image.fromarray(scene.video[0]).save(d / "still.png")
    ids = d / "ids"  # an instance-id PNG folder: object k has gray id 60 * (k + 1), background 0
    ids.mkdir()
    for t in range(scene.video.shape[0]):
        frame = np.zeros(scene.video.shape[1:3], np.uint8)
        for k in range(len(scene.classes)):
            frame[scene.masks[k][t]] = 60 * (k + 1)
        Image.fromarray(frame).save(ids / f"{t:04d}.png")
    shutil.copy(d / "still.png", d / "picture.mp4")
    return {"dir": d, "video": d / "scene.mp4", "masks": masks, "points": points, "scene": scene,
            "truncated": d / "truncated.mp4", "picture": d / "picture.mp4", "ids": ids}
