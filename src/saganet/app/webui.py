"""`saganet ui`: a small Gradio web UI over the same generation path as `saganet generate`.

Upload a video and one mask file per object (mask video, COCO RLE .json), name the objects, type an
optional prompt; get the mix, the muxed video with masks outlined, and one stem file per object.
Gradio is an optional dependency (`pip install saganet[web]`).
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from saganet.app.generate import GenerateRequest, ModelCache, run_request
from saganet.errors import SaganetError
from saganet.io.masks import MaskSpec
from saganet.pipeline import GenerationOptions

log = logging.getLogger(__name__)


def generate_for_ui(video: str | None, masks: list[str] | None, names: str, prompt: str, negative_prompt: str,
                    variant: str, cfg_strength: float, steps: int, seed: int, out_root: str | Path,
                    models: ModelCache | None = None) -> tuple[str, str, list[str], str]:
    """Run one generation into a fresh folder under `out_root`.

    Returns (mix path, muxed video path, stem paths, a one-line summary). Raises `SaganetError` on bad input.
    """
    if not video:
        raise SaganetError("upload a video first")
    masks = [str(m) for m in (masks or [])]
    name_list = [n.strip() for n in (names or "").split(",") if n.strip()]
    specs = [MaskSpec(Path(m), name=name_list[i] if i < len(name_list) else None) for i, m in enumerate(masks)]
    try:
        seed_int, steps_int = int(seed), int(steps)
    except (TypeError, ValueError, OverflowError) as e:
        raise SaganetError("seed and steps must be whole numbers") from e
    options = GenerationOptions(prompt=prompt or "", negative_prompt=negative_prompt or "",
                                cfg_strength=float(cfg_strength), steps=steps_int, seed=seed_int, progress=False)
    Path(out_root).mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix=time.strftime("run_%Y%m%d_%H%M%S_"), dir=Path(out_root)))
    req = GenerateRequest(video=str(video), output=out, masks=specs, variant=variant, options=options,
                          overlay_masks=True, overwrite=True, quiet=True)
    paths = run_request(req, models if models is not None else ModelCache())
    stems = [str(p) for k, p in paths.items() if k.startswith("stem:")]
    summary = f"{len(stems)} stem(s) written to {out}"
    return str(paths["mix"]), str(paths.get("video", "")), stems, summary


def build_app(out_root: str | Path, default_variant: str = "toy"):
    """The Gradio Blocks app (not launched)."""
    import gradio as gr

    from saganet.registry import variant_names

    models = ModelCache()
    Path(out_root).mkdir(parents=True, exist_ok=True)

    def handler(video, masks, names, prompt, negative, variant, cfg, steps, seed):
        try:
            return generate_for_ui(video, masks, names, prompt, negative, variant, cfg, steps, seed, out_root, models)
        except SaganetError as e:
            raise gr.Error(str(e).splitlines()[0]) from e

    with gr.Blocks(title="saganet") as app:
        gr.Markdown("# saganet\nThe sound of one object in a video, chosen by its mask.")
        with gr.Row():
            with gr.Column():
                video = gr.Video(label="video")
                masks = gr.File(label="object masks (one file per object)", file_count="multiple", type="filepath")
                names = gr.Textbox(label="object names, comma-separated (optional)")
                prompt = gr.Textbox(label="prompt (optional)")
                negative = gr.Textbox(label="negative prompt (optional)")
                variant = gr.Dropdown(variant_names(), value=default_variant, label="model variant")
                cfg = gr.Slider(1.0, 10.0, value=4.5, step=0.5, label="guidance (CFG)")
                steps = gr.Slider(1, 50, value=25, step=1, label="steps")
                seed = gr.Number(value=42, precision=0, label="seed")
                run = gr.Button("generate", variant="primary")
            with gr.Column():
                mix = gr.Audio(label="mix", type="filepath")
                muxed = gr.Video(label="video with new audio")
                stems = gr.File(label="stems", file_count="multiple")
                status = gr.Textbox(label="status")
        run.click(handler, [video, masks, names, prompt, negative, variant, cfg, steps, seed], [mix, muxed, stems, status])
    return app


def launch(out_root: str | Path, host: str = "127.0.0.1", port: int = 7860, variant: str = "toy") -> None:
    build_app(out_root, variant).launch(server_name=host, server_port=port)
