"""`saganet ui`: a Gradio web UI over the same generate path as `saganet generate`.

Upload a video, pick a frame with the slider, click on it to add positive / negative points to object 1,
2, ... (names optional), "preview masks" propagates them through the clip and shows the masks over the
video, "generate" gives the stems, the mix and the video with the masks outlined. Mask files can still be
uploaded instead of clicking. Each run writes into its own folder under the output root; a run that fails
leaves no folder behind. Uploads are capped (`--max-upload-mb`, default 500 MB) and error messages never
show server paths. Gradio is an optional dependency (`pip install saganet[web]`).
"""

import logging
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from saganet.app.generate import GenerateRequest, ModelCache, run_request
from saganet.errors import InputError, SaganetError
from saganet.io.masks import MaskSpec
from saganet.pipeline import GenerationOptions

log = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_MB = 500
MAX_OBJECTS = 6
# marker colours of objects 1..6 in the frame view (RGB)
OBJECT_COLOURS = ((230, 60, 60), (60, 140, 230), (60, 200, 90), (230, 170, 40), (170, 80, 220), (40, 210, 210))


# ------------------------------------------------------------------------------------------------ clicks
@dataclass
class Click:
    """A click on the displayed frame: object index (0-based), pixel (x, y), time (s), positive or negative."""

    obj: int
    x: float
    y: float
    t: float
    positive: bool = True


@dataclass
class ClickState:
    """Everything the user clicked so far, per object, in click order."""

    clicks: list[Click] = field(default_factory=list)

    def add(self, click: Click) -> "ClickState":
        return ClickState([*self.clicks, click])

    def objects(self) -> list[int]:
        """Object indices that have at least one positive click, in index order."""
        return sorted({c.obj for c in self.clicks if c.positive})

    def prompt_args(self, names: list[str]) -> list[tuple[str, str]]:
        """(kind, value) pairs as `saganet segment` takes them: `--object NAME --point X,Y@T ...` per object."""
        out: list[tuple[str, str]] = []
        for i, obj in enumerate(self.objects()):
            out.append(("object", names[i] if i < len(names) else f"object{obj + 1}"))
            for c in self.clicks:
                if c.obj == obj:
                    out.append(("point" if c.positive else "neg_point", f"{c.x:.1f},{c.y:.1f}@{c.t:.3f}"))
        return out


def parse_names(names: str | None) -> list[str]:
    return [n.strip() for n in (names or "").split(",") if n.strip()]


# ------------------------------------------------------------------------------------------------ frames
def read_frame(video: str, t: float) -> tuple[np.ndarray, float]:
    """The displayed frame at `t` seconds (rotation applied) and the clip's duration."""
    from saganet.segment import frame_at_time, load_frames

    frames = load_frames(video)
    i = frame_at_time(frames.times, max(0.0, float(t)))
    return frames.frames[i], frames.end


def draw_clicks(frame: np.ndarray, state: ClickState, t: float, tol: float = 0.02) -> np.ndarray:
    """`frame (H, W, 3)` with the clicks made at (about) time `t` drawn: a filled dot for a positive click,
    a ring for a negative one, in the object's colour."""
    img = frame.copy()
    h, w = img.shape[:2]
    r = max(3, round(min(h, w) / 40))
    yy, xx = np.mgrid[0:h, 0:w]
    for c in state.clicks:
        if abs(c.t - t) > tol:
            continue
        d2 = (xx - c.x) ** 2 + (yy - c.y) ** 2
        ring = (d2 <= r * r) if c.positive else ((d2 <= r * r) & (d2 >= (r - 2) ** 2))
        img[ring] = OBJECT_COLOURS[c.obj % len(OBJECT_COLOURS)]
    return img


# ------------------------------------------------------------------------------------------------ runs
def public_message(e: BaseException) -> str:
    """A one-line error message without server paths (file names only)."""
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    return re.sub(r"(/[^\s:'\"`,;()]+)+/([^\s:'\"`,;()/]+)", r"\2", msg)


class RunFolder:
    """A fresh folder under `root` for one request, removed again if the request fails."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __enter__(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=time.strftime("run_%Y%m%d_%H%M%S_"), dir=self.root))
        return self.path

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.path, ignore_errors=True)


def segment_clicks(video: str, state: ClickState, names: list[str], segmenter: str, out_dir: Path):
    """Propagate the clicked objects through the clip and write their masks (+ preview) into `out_dir`."""
    from saganet.app.commands.segment import toy_palette
    from saganet.segment import segment_video, write_segmentation

    if not state.objects():
        raise InputError("click on an object first (a positive point), or upload mask files")
    result = segment_video(video, state.prompt_args(names), segmenter, palette=toy_palette())
    paths = write_segmentation(result, out_dir)
    return result, paths


def preview_for_ui(video: str | None, state: ClickState, names: str, segmenter: str,
                   out_root: str | Path) -> tuple[str, list[str], str]:
    """Segment the clicks into a new run folder. Returns (preview mp4, mask files, status line)."""
    if not video:
        raise SaganetError("upload a video first")
    with RunFolder(out_root) as run:
        result, paths = segment_clicks(str(video), state, parse_names(names), segmenter, run / "masks")
        masks = [str(p) for k, p in paths.items() if k.endswith(":rle") or k.endswith(":mask")]
        areas = ", ".join(f"{o.name}: {int((o.areas > 0).sum())}/{len(result.times)} frames" for o in result.objects)
        return str(paths["preview"]), masks, f"masks of {len(result.objects)} object(s) ({areas}) in {run.name}"


def generate_for_ui(video: str | None, masks: list[str] | None, names: str, prompt: str, negative_prompt: str,
                    variant: str, cfg_strength: float, steps: int, seed: int, out_root: str | Path,
                    models: ModelCache | None = None, clicks: ClickState | None = None,
                    segmenter: str = "color") -> tuple[str, str, list[str], str]:
    """Run one generation into a fresh folder under `out_root`: clicked objects (segmented first) and/or
    uploaded mask files. Returns (mix path, muxed video path, stem paths, a one-line summary)."""
    if not video:
        raise SaganetError("upload a video first")
    try:
        seed_int, steps_int, cfg = int(seed), int(steps), float(cfg_strength)
    except (TypeError, ValueError, OverflowError) as e:
        raise SaganetError("seed and steps must be whole numbers, guidance a number") from e
    name_list = parse_names(names)
    options = GenerationOptions(prompt=prompt or "", negative_prompt=negative_prompt or "", cfg_strength=cfg,
                                steps=steps_int, seed=seed_int, progress=False)
    files = [str(m) for m in (masks or [])]
    state = clicks or ClickState()
    n_clicked = len(state.objects())
    if not files and not n_clicked:
        from saganet.registry import is_segaware

        if is_segaware(variant):
            raise InputError("click on an object (or upload a mask file per object) before generating")
    # validate the request before segmenting (segmentation is the slow part)
    probe = GenerateRequest(video=str(video), output="x", masks=[MaskSpec(Path("x"))], variant=variant,
                            options=options)
    probe.validate()
    with RunFolder(out_root) as run:
        specs = []
        if n_clicked:
            result, paths = segment_clicks(str(video), state, name_list, segmenter, run / "masks")
            specs += [MaskSpec(paths[f"{o.name}:rle"], name=o.name) for o in result.objects]
        offset = len(specs)
        specs += [MaskSpec(Path(m), name=name_list[offset + i] if offset + i < len(name_list) else None)
                  for i, m in enumerate(files)]
        req = GenerateRequest(video=str(video), output=run / "out", masks=specs, variant=variant, options=options,
                              overlay_masks=True, quiet=True)
        paths = run_request(req, models if models is not None else ModelCache())
        stems = [str(p) for k, p in paths.items() if k.startswith("stem:")]
        return str(paths["mix"]), str(paths.get("video", "")), stems, f"{len(stems)} stem(s) written to {run.name}"


# ------------------------------------------------------------------------------------------------ app
def build_app(out_root: str | Path, default_variant: str = "toy", default_segmenter: str | None = None):
    """The Gradio Blocks app (not launched)."""
    import gradio as gr

    from saganet.app.commands.segment import SEGMENTER_CHOICES
    from saganet.registry import variant_names

    models = ModelCache()
    Path(out_root).mkdir(parents=True, exist_ok=True)
    segmenter0 = default_segmenter or ("color" if default_variant.startswith("toy") else "sam2.1-tiny")

    def fail(e: BaseException):
        log.info("request failed: %s", e)
        return gr.Error(public_message(e))

    def on_video(video):
        if not video:
            return None, gr.update(value=0, maximum=1), ClickState(), ""
        try:
            frame, end = read_frame(video, 0.0)
        except SaganetError as e:
            raise fail(e) from e
        return frame, gr.update(value=0, maximum=max(0.0, round(end - 0.04, 2))), ClickState(), "click on an object"

    def on_time(video, t, state):
        if not video:
            return None
        frame, _ = read_frame(video, t)
        return draw_clicks(frame, state, t)

    def on_click(video, t, state, obj, polarity, evt: gr.SelectData):  # gradio fills `evt` from the annotation
        if not video:
            raise gr.Error("upload a video first")
        x, y = evt.index[0], evt.index[1]
        state = state.add(Click(int(obj.split()[-1]) - 1, float(x), float(y), float(t), polarity == "positive"))
        frame, _ = read_frame(video, t)
        n = len(state.clicks)
        return draw_clicks(frame, state, t), state, f"{n} click(s): last at ({x}, {y}) for {obj}"

    def on_clear(video, t):
        frame = read_frame(video, t)[0] if video else None
        return frame, ClickState(), "clicks cleared"

    def on_preview(video, state, names, segmenter):
        try:
            return preview_for_ui(video, state, names, segmenter, out_root)
        except SaganetError as e:
            raise fail(e) from e

    def on_generate(video, masks, names, prompt, negative, variant, cfg, steps, seed, state, segmenter):
        try:
            return generate_for_ui(video, masks, names, prompt, negative, variant, cfg, steps, seed, out_root, models,
                                   clicks=state, segmenter=segmenter)
        except SaganetError as e:
            raise fail(e) from e

    objects = [f"object {i + 1}" for i in range(MAX_OBJECTS)]
    with gr.Blocks(title="saganet") as app:
        gr.Markdown("# saganet\nClick an object in the video and hear that object.")
        clicks = gr.State(ClickState())
        with gr.Row():
            with gr.Column():
                video = gr.Video(label="video", elem_id="video_in", sources=["upload"])
                frame = gr.Image(label="frame (click to add points)", interactive=False, elem_id="frame",
                                 type="numpy", format="png")
                t = gr.Slider(0, 1, value=0, step=0.04, label="time (s)", elem_id="time")
                with gr.Row():
                    obj = gr.Radio(objects, value=objects[0], label="object", elem_id="object")
                    polarity = gr.Radio(["positive", "negative"], value="positive", label="click", elem_id="polarity")
                names = gr.Textbox(label="object names, comma-separated (optional)", elem_id="names")
                segmenter = gr.Dropdown(list(SEGMENTER_CHOICES), value=segmenter0, label="segmenter",
                                        elem_id="segmenter")
                with gr.Row():
                    clear = gr.Button("clear clicks", elem_id="clear")
                    preview = gr.Button("preview masks", elem_id="preview")
                masks = gr.File(label="or: object mask files (one per object)", file_count="multiple",
                                type="filepath", elem_id="mask_files")
                prompt = gr.Textbox(label="prompt (optional)", elem_id="prompt")
                negative = gr.Textbox(label="negative prompt (optional)")
                variant = gr.Dropdown(variant_names(), value=default_variant, label="model variant", elem_id="variant")
                cfg = gr.Slider(1.0, 10.0, value=4.5, step=0.5, label="guidance (CFG)")
                steps = gr.Slider(1, 50, value=25, step=1, label="steps", elem_id="steps")
                seed = gr.Number(value=42, precision=0, label="seed")
                run = gr.Button("generate", variant="primary", elem_id="generate")
            with gr.Column():
                status = gr.Textbox(label="status", elem_id="status")
                preview_video = gr.Video(label="mask preview", elem_id="preview_video")
                mask_out = gr.File(label="masks (download)", file_count="multiple", elem_id="mask_out")
                mix = gr.Audio(label="mix", type="filepath", elem_id="mix")
                muxed = gr.Video(label="video with new audio", elem_id="muxed")
                stems = gr.File(label="stems", file_count="multiple", elem_id="stems")
        video.change(on_video, [video], [frame, t, clicks, status])
        t.release(on_time, [video, t, clicks], [frame])
        frame.select(on_click, [video, t, clicks, obj, polarity], [frame, clicks, status])
        clear.click(on_clear, [video, t], [frame, clicks, status])
        preview.click(on_preview, [video, clicks, names, segmenter], [preview_video, mask_out, status])
        run.click(on_generate, [video, masks, names, prompt, negative, variant, cfg, steps, seed, clicks, segmenter],
                  [mix, muxed, stems, status])
    return app


def launch(out_root: str | Path, host: str = "127.0.0.1", port: int = 7860, variant: str = "toy",
           max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB, segmenter: str | None = None,
           prevent_thread_lock: bool = False):
    """Serve the app on `host:port` (loopback unless told otherwise) with uploads capped at `max_upload_mb`."""
    if not max_upload_mb > 0:
        raise InputError(f"upload cap must be > 0 MB, got {max_upload_mb}")
    app = build_app(out_root, variant, segmenter)
    app.launch(server_name=host, server_port=port, max_file_size=f"{max_upload_mb}mb",
               prevent_thread_lock=prevent_thread_lock, quiet=prevent_thread_lock)
    return app
