"""SAM 2 and Grounding DINO plumbing with tiny random configs of the real transformers classes (no download):
prompt coordinates through rotation and resize, time -> frame, propagation in both directions and the
per-frame choice between them, several objects, text -> boxes -> SAM with score thresholds, the written masks
read back, loading from a local checkpoint, the offline error, and the released tiny checkpoint's layout."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from segment_tiny_models import SAM_SIZE, tiny_grounding_dino, tiny_sam2

from saganet.errors import CheckpointError, InputError
from saganet.io.masks import MaskSpec, read_mask
from saganet.segment import segment_video, write_segmentation
from saganet.segment.grounding import Grounder, choose_detections, default_key_frames
from saganet.segment.sam2 import Sam2Segmenter

DATA = Path(__file__).parent / "data"
H, W, FPS = 48, 80, 10.0


@pytest.fixture(scope="module")
def sam():
    model, proc = tiny_sam2()
    return Sam2Segmenter(model, proc, "sam2-test", "tiny-random")


def frames(n=12, h=H, w=W, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (n, h, w, 3), dtype=np.uint8)


class Spy:
    """Records the session after prompts are added, and every (frame, reverse) the model runs on."""

    def __init__(self, seg, monkeypatch):
        self.calls, self.session = [], None
        orig_add = seg.processor.add_inputs_to_inference_session

        def add(inference_session, **kw):
            self.session = inference_session
            return orig_add(inference_session=inference_session, **kw)

        monkeypatch.setattr(seg.processor, "add_inputs_to_inference_session", add)
        self.handle = seg.model.register_forward_pre_hook(self.pre, with_kwargs=True)

    def pre(self, module, args, kwargs):
        self.calls.append((kwargs.get("frame_idx"), bool(kwargs.get("reverse", False))))

    def close(self):
        self.handle.remove()


def test_points_and_boxes_are_scaled_to_the_model_input(sam, monkeypatch):
    spy = Spy(sam, monkeypatch)
    try:
        res = segment_video(frames(), [("object", "a"), ("point", "20,12@0.5"), ("neg_point", "60,40@0.5"),
                                       ("object", "b"), ("box", "8,4,40,36@0.3"), ("point", "10,10@0.3")],
                            sam, fps=FPS)
    finally:
        spy.close()
    s = spy.session
    a = s.point_inputs_per_obj[s.obj_id_to_idx(1)][5]  # 0.5 s at 10 fps -> frame 5
    assert torch.allclose(a["point_coords"][0, 0], torch.tensor([[20 * SAM_SIZE / W, 12 * SAM_SIZE / H],
                                                                  [60 * SAM_SIZE / W, 40 * SAM_SIZE / H]]))
    assert a["point_labels"][0, 0].tolist() == [1, 0]
    b = s.point_inputs_per_obj[s.obj_id_to_idx(2)][3]  # box corners are points with labels 2, 3, then clicks
    assert torch.allclose(b["point_coords"][0, 0], torch.tensor(
        [[8 * SAM_SIZE / W, 4 * SAM_SIZE / H], [40 * SAM_SIZE / W, 36 * SAM_SIZE / H],
         [10 * SAM_SIZE / W, 10 * SAM_SIZE / H]]))
    assert b["point_labels"][0, 0].tolist() == [2, 3, 1]
    assert set(s.output_dict_per_obj[0]["cond_frame_outputs"]) == {5}
    assert set(s.output_dict_per_obj[1]["cond_frame_outputs"]) == {3}
    assert res.names == ["a", "b"] and res.size == (H, W)
    for o in res.objects:
        assert o.masks.shape == (12, H, W) and o.masks.dtype == bool and o.scores.shape == (12,)
        assert ((o.scores > 0) & (o.scores < 1)).all()


def test_propagation_runs_both_ways_and_each_frame_follows_its_nearest_prompt(sam, monkeypatch):
    spy = Spy(sam, monkeypatch)
    calls = []

    def fake_masks(out, size):  # mask k marks the k-th output: decodes which pass produced a frame
        calls.append((int(out.frame_idx), len(calls)))
        m = np.zeros((len(out.object_ids), *size), bool)
        m[:, 0, : len(calls)] = True
        return m, np.full(len(out.object_ids), 0.5, np.float32)

    monkeypatch.setattr(sam, "_masks", fake_masks)
    try:
        res = segment_video(frames(), [("object", "a"), ("point", "5,5@0.2"), ("point", "6,6@0.8"),
                                       ("object", "b"), ("point", "30,30@0.5")], sam, fps=FPS)
    finally:
        spy.close()
    fwd = [f for f, r in spy.calls if not r and f is not None]
    rev = [f for f, r in spy.calls if r]
    # prompt frames 2, 8 (a) and 5 (b): conditioning runs, then forward 2..11 and reverse 8..0
    assert fwd[:3] == [2, 8, 5] and fwd[3:] == list(range(2, 12))
    assert rev == list(range(8, -1, -1))
    n_fwd = len(range(2, 12))
    source = {}
    for frame, k in calls:
        source.setdefault(frame, {})["fwd" if k < n_fwd else "rev"] = k + 1
    got = {o.name: [int(o.masks[t, 0].sum()) for t in range(12)] for o in res.objects}
    want_a = ["rev", "rev", "fwd", "fwd", "fwd", "fwd", "rev", "rev", "fwd", "fwd", "fwd", "fwd"]
    want_b = ["rev"] * 5 + ["fwd"] * 7  # b's only prompt is frame 5
    assert got["a"] == [source[t][d] for t, d in enumerate(want_a)]
    assert got["b"] == [source[t][d] for t, d in enumerate(want_b)]


def test_rotated_file_uses_display_coordinates(sam, monkeypatch, tmp_path):
    import av

    stored = frames(n=8, h=32, w=48)
    stored[:, :8, :8] = (255, 0, 0)  # red top-left corner of the stored (unrotated) frames
    path = tmp_path / "rot.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 48, 32, "yuv420p"
        s.options = {"crf": "0"}
        s.set_display_rotation(90)  # displayed 32 wide, 48 high; the stored top-left ends bottom-left
        for fr in stored:
            for p in s.encode(av.VideoFrame.from_ndarray(fr, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    from saganet.segment import load_frames

    shown = load_frames(path)
    assert shown.size == (48, 32)
    assert shown.frames[0, 44, 3, 0] > 200 and shown.frames[0, 44, 3, 1] < 60  # the red corner, bottom-left
    spy = Spy(sam, monkeypatch)
    try:
        res = segment_video(path, [("point", "3,44")], sam)
        with pytest.raises(InputError, match="outside the frame"):
            segment_video(path, [("point", "40,10")], sam)  # inside the stored frame, outside the displayed one
    finally:
        spy.close()
    pc = spy.session.point_inputs_per_obj[0][0]["point_coords"][0, 0, 0]
    assert torch.allclose(pc, torch.tensor([3 * SAM_SIZE / 32, 44 * SAM_SIZE / 48]))
    assert res.objects[0].masks.shape == (8, 48, 32)


def test_sam_masks_round_trip_through_rle(sam, tmp_path):
    res = segment_video(frames(n=6), [("object", "v"), ("box", "10,10,50,40")], sam, fps=FPS)
    paths = write_segmentation(res, tmp_path / "m", frames=frames(n=6))
    back = read_mask(MaskSpec(paths["v:rle"]))
    assert (back.frames == res.objects[0].masks).all() and np.allclose(back.times, np.arange(6) / FPS)
    meta = json.loads(paths["meta"].read_text())
    assert meta["model"] == "tiny-random" and len(meta["objects"][0]["scores"]) == 6


def test_two_boxes_on_one_frame_is_an_input_error(sam):
    with pytest.raises(InputError, match="one box per object"):
        segment_video(frames(n=4), [("box", "1,1,10,10"), ("box", "20,20,30,30")], sam, fps=FPS)


# ------------------------------------------------------------------------------------------- grounding


class ControlledDino(torch.nn.Module):
    """The tiny real Grounding DINO, with query scores and boxes set per call (random weights score ~1)."""

    def __init__(self, model, per_call):
        super().__init__()
        self.m, self.per_call, self.n = model, per_call, 0

    def forward(self, **kw):
        out = self.m(**kw)
        logits = torch.full_like(out.logits, -20.0)
        boxes = out.pred_boxes.clone()
        for q, (score, box) in enumerate(self.per_call[min(self.n, len(self.per_call) - 1)]):
            logits[:, q, :2] = float(np.log(score / (1 - score)))
            boxes[:, q] = torch.tensor(box)
        self.n += 1
        out.logits, out.pred_boxes = logits, boxes
        return out


@pytest.fixture()
def dino(tmp_path):
    return tiny_grounding_dino(tmp_path)


def test_grounding_boxes_in_display_pixels_and_thresholds(dino):
    model, proc = dino
    calls = [[(0.9, (0.5, 0.5, 0.2, 0.4)), (0.5, (0.2, 0.3, 0.1, 0.2)), (0.2, (0.8, 0.8, 0.1, 0.1))],
             [(0.95, (0.3, 0.5, 0.2, 0.2))]]
    g = Grounder(ControlledDino(model, calls), proc)
    dets = g.detect(frames(n=4), "violin", [0, 3], min_score=0.3)
    assert [(d.frame, round(d.score, 3)) for d in dets] == [(0, 0.9), (0, 0.5), (3, 0.95)]
    assert np.allclose(dets[0].box, (32.0, 14.4, 48.0, 33.6), atol=1e-3)  # cx,cy,w,h -> x0,y0,x1,y1 pixels
    assert dets[0].label == "violin"
    assert choose_detections(dets, 5) == [dets[2]]  # the key frame with the best score
    g2 = Grounder(ControlledDino(model, calls[:1]), proc)
    assert len(g2.detect(frames(n=4), "violin", [0], min_score=0.6)) == 1
    assert default_key_frames(100) == [0, 37, 74] and default_key_frames(1) == [0]


def test_text_to_boxes_to_sam(sam, dino):
    model, proc = dino
    calls = [[(0.9, (0.3, 0.5, 0.3, 0.5)), (0.8, (0.75, 0.5, 0.3, 0.5)), (0.7, (0.5, 0.2, 0.1, 0.1))]]
    sam._grounder = Grounder(ControlledDino(model, calls), proc)
    try:
        res = segment_video(frames(), [("text", "violin@0.4")], sam, fps=FPS, max_objects=2, min_score=0.75)
        assert res.names == ["violin_1", "violin_2"]
        det = res.objects[0].info["detection"]
        assert det["frame"] == 4 and det["score"] == 0.9
        assert res.objects[0].prompt.boxes[0].frame == 4 and res.objects[0].masks.shape == (12, H, W)
        with pytest.raises(InputError, match="finds nothing"):
            segment_video(frames(), [("text", "cello")], sam, fps=FPS, min_score=0.95)
    finally:
        sam._grounder = None


# ------------------------------------------------------------------------------------------- weights


def test_loads_a_local_checkpoint_through_resolve_hub(tmp_path, monkeypatch):
    model, proc = tiny_sam2(seed=1)
    model.save_pretrained(tmp_path / "ckpt")
    proc.save_pretrained(tmp_path / "ckpt")
    seen = []

    def fake_resolve(hub, offline=None, **kw):
        seen.append(hub.repo_id)
        return tmp_path / "ckpt"

    monkeypatch.setattr("saganet.segment.sam2.resolve_hub", fake_resolve)
    seg = Sam2Segmenter.from_hub("sam2.1-tiny", device="cpu")
    assert seen == ["facebook/sam2.1-hiera-tiny"] and seg.model_id == "facebook/sam2.1-hiera-tiny"
    for k, v in model.state_dict().items():
        assert torch.equal(seg.model.state_dict()[k], v), k
    assert segment_video(frames(n=3), [("point", "4,4")], seg, fps=FPS).objects[0].masks.shape == (3, H, W)


def test_local_folder_through_model_dirs(tmp_path):
    """The weights module's local-folder route (`--model-dir sam2.1-tiny=PATH`) with a saved tiny model; a
    folder without the model is a one-line CheckpointError."""
    model, proc = tiny_sam2(seed=3)
    model.save_pretrained(tmp_path / "sam")
    proc.save_pretrained(tmp_path / "sam")
    res = segment_video(frames(n=3), [("point", "4,4")], "sam2.1-tiny", fps=FPS, device="cpu",
                        model_dirs={"sam2.1-tiny": str(tmp_path / "sam")})
    assert res.model == "facebook/sam2.1-hiera-tiny" and res.objects[0].masks.shape == (3, H, W)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("x")
    with pytest.raises(CheckpointError, match="cannot load facebook/sam2.1-hiera-tiny") as e:
        segment_video(frames(n=3), [("point", "4,4")], "sam2.1-tiny", fps=FPS,
                      model_dirs={"sam2.1-tiny": str(tmp_path / "junk")})
    assert "\n" not in str(e.value)


def test_offline_without_weights_names_the_download_command(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.delenv("SAGANET_MODEL_DIR_SAM2.1-SMALL", raising=False)
    with pytest.raises(CheckpointError, match="saganet weights download sam2.1-small") as e:
        segment_video(frames(n=2), [("point", "4,4")], "sam2.1-small", fps=FPS, offline=True)
    assert "\n" not in str(e.value)


def test_released_tiny_checkpoint_layout():
    """The key list and shapes of Sam2VideoModel built from the SAM 2.1 Hiera-T config (stored) must stay
    those of the manifest (what `facebook/sam2.1-hiera-tiny` is loaded into), and its size the published
    38.9 M parameters."""
    from transformers import Sam2VideoConfig, Sam2VideoModel

    cfg = Sam2VideoConfig.from_dict(json.loads((DATA / "sam2.1-hiera-tiny.config.json").read_text()))
    with torch.device("meta"):
        model = Sam2VideoModel(cfg)
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    want = json.loads((DATA / "sam2.1-hiera-tiny.keys.json").read_text())
    assert sorted(set(want) - set(got)) == [] and sorted(set(got) - set(want)) == []
    assert {k: v for k, v in got.items() if want[k] != v} == {}
    n = sum(p.numel() for p in model.parameters())
    assert abs(n - 38.9e6) / 38.9e6 < 0.005, n
    hiera = cfg.vision_config.backbone_config
    assert sum(hiera.blocks_per_stage) == 12 and hiera.global_attention_blocks == [5, 7, 9]


def test_lazy_frames_match_the_processors_whole_clip(sam):
    """Frames preprocessed one by one on demand equal the processor's whole-clip preprocessing, and so do
    the masks."""
    from saganet.segment import load_frames, validate_prompts
    from saganet.segment.prompts import parse_prompt_args

    fr = load_frames(frames(n=7), fps=FPS)
    eager = sam._session(fr, lazy=False)
    lazy = sam._session(fr, lazy=True)
    assert len(lazy.processed_frames) == eager.num_frames == 7
    for i in (6, 0, 3):
        assert torch.allclose(lazy.get_frame(i), eager.get_frame(i), atol=1e-5)
    assert dict.__len__(lazy.processed_frames) <= 4
    objs = validate_prompts(parse_prompt_args([("point", "20,20@0.3"), ("object", "b"), ("box", "30,5,70,40")]),
                            fr.size, fr.times, fr.end)
    a = sam.segment(fr, objs, lazy=True)
    b = sam.segment(fr, objs, lazy=False)
    for x, y in zip(a, b):
        assert (x.masks == y.masks).all() and np.allclose(x.scores, y.scores, atol=1e-5)


def test_cli_runs_sam_and_grounding_from_local_checkpoints(tmp_path, monkeypatch, capsys):
    """`saganet segment --segmenter sam2.1-tiny --text ...` loads both models through resolve_hub (here: local
    tiny checkpoints) and writes the masks."""
    import argparse

    from saganet.app.commands import segment as cmd
    from saganet.io.writers import write_video

    sam_model, sam_proc = tiny_sam2(seed=2)
    sam_model.save_pretrained(tmp_path / "sam")
    sam_proc.save_pretrained(tmp_path / "sam")
    gd_model, gd_proc = tiny_grounding_dino(tmp_path)
    gd_model.save_pretrained(tmp_path / "gd")
    gd_proc.save_pretrained(tmp_path / "gd")
    dirs = {"facebook/sam2.1-hiera-tiny": tmp_path / "sam", "IDEA-Research/grounding-dino-tiny": tmp_path / "gd"}
    monkeypatch.setattr("saganet.segment.sam2.resolve_hub", lambda hub, offline=None, **kw: dirs[hub.repo_id])
    monkeypatch.setattr("saganet.segment.grounding.resolve_hub", lambda hub, offline=None, **kw: dirs[hub.repo_id])
    video = tmp_path / "clip.mp4"
    write_video(video, frames(n=6), FPS)
    parser = argparse.ArgumentParser(prog="saganet")
    cmd.register(parser.add_subparsers(dest="command"))
    out = tmp_path / "masks"
    args = parser.parse_args(["segment", str(video), "-o", str(out), "--segmenter", "sam2.1-tiny", "--device",
                              "cpu", "--object", "clicked", "--point", "10,10@0.2", "--object", "named", "--text",
                              "violin", "--max-objects", "1", "--min-score", "0.0"])
    assert args.func(args) == 0
    meta = json.loads((out / "masks.json").read_text())
    assert meta["model"] == "facebook/sam2.1-hiera-tiny" and [o["name"] for o in meta["objects"]] == [
        "clicked", "named"]
    assert meta["objects"][1]["info"]["grounding_model"] == "IDEA-Research/grounding-dino-tiny"
    assert read_mask(MaskSpec(out / "named_rle.json")).frames.shape == (6, H, W)
    assert "segmented 6 frames with sam2.1-tiny" in capsys.readouterr().out
