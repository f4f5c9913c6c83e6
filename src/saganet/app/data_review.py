"""The human review page of `saganet data verify --review` (Gradio): one clip at a time, with its mask outlined
and its audio; accept / reject / clear, or click on the instrument to re-segment it; per-class statistics.

The page only wires widgets to `ReviewSession`, whose methods hold the logic (decisions go into the verify
table through `saganet.data.review.ReviewTable`), so the behaviour is tested without a browser.
"""

import logging
import tempfile
from pathlib import Path

import numpy as np

from saganet.data.review import ReviewTable, preview_clip
from saganet.errors import InputError, SaganetError

log = logging.getLogger(__name__)


class ReviewSession:
    """State of one review page: the table, the current queue and where previews are cached."""

    def __init__(self, root: str | Path, segmenter: str = "sam2.1-tiny", palette: dict | None = None,
                 cache: str | Path | None = None) -> None:
        self.table = ReviewTable(root)
        self.root = Path(root)
        self.segmenter, self.palette = segmenter, palette
        self.cache = Path(cache) if cache is not None else Path(tempfile.mkdtemp(prefix="saganet_review_"))
        self._version: dict[str, int] = {}
        self.scale = 1  # enlargement of the frame shown for clicking

    def queue(self, queue: str = "pending", label: str | None = None) -> list[str]:
        return self.table.ids(queue, label or None)

    def info(self, clip_id: str) -> str:
        r = self.table.row(clip_id)
        failed = r.get("failed") or "none"
        vals = ", ".join(f"{k} {r[k]}" for k in ("grounding_score", "area", "stability", "drift", "rms_db")
                         if r.get(k))
        return (f"**{clip_id}** ({r['label']}, {r['split']}): decision **{r['decision']}** "
                f"(automatic: {r['auto']}; human: {r.get('review') or '-'}); failed checks: {failed}\n\n{vals}"
                + (f"\n\nnote: {r['note']}" if r.get("note") else ""))

    def preview(self, clip_id: str) -> Path:
        """The clip with its mask outlined (cached until the mask is re-segmented)."""
        v = self._version.get(clip_id, 0)
        dest = self.cache / f"{clip_id.replace('/', '__')}.v{v}.mp4"
        if not dest.exists():
            preview_clip(self.root, clip_id, dest)
        return dest

    def frame(self, clip_id: str, t: float) -> np.ndarray:
        """The frame at `t`, enlarged by a whole factor (nearest) to at least `MIN_SIDE` px so small clips can
        be clicked; `click_to_video` maps a click back."""
        from saganet.segment import frame_at_time, load_frames

        frames = load_frames(self.root / f"{clip_id}.mp4")
        f = frames.frames[frame_at_time(frames.times, max(0.0, float(t)))]
        self.scale = max(1, MIN_SIDE // max(f.shape[:2]))
        return np.repeat(np.repeat(f, self.scale, axis=0), self.scale, axis=1) if self.scale > 1 else f

    def duration(self, clip_id: str) -> float:
        from saganet.io.video import probe_video

        return probe_video(self.root / f"{clip_id}.mp4").duration

    def click_to_video(self, x: float, y: float) -> tuple[float, float]:
        """A click on the shown frame -> pixel coordinates of the video."""
        return x / self.scale, y / self.scale

    def decide(self, clip_id: str, decision: str, note: str | None = None) -> str:
        self.table.decide(clip_id, decision, note)
        return self.info(clip_id)

    def reclick(self, clip_id: str, x: float, y: float, t: float) -> str:
        self.table.reclick(clip_id, x, y, t, segmenter=self.segmenter, palette=self.palette)
        self._version[clip_id] = self._version.get(clip_id, 0) + 1
        return self.info(clip_id)

    def stats_rows(self) -> list[list]:
        return [[k, *v.values()] for k, v in self.table.class_stats().items()]


MIN_SIDE = 320  # frames smaller than this are shown enlarged (the toy world's are 64-112 px)
STATS_HEADERS = ["class", "clips", "auto accept", "auto reject", "reviewed", "accepted"]


def build_review_app(root: str | Path, segmenter: str = "sam2.1-tiny", palette: dict | None = None):
    """The Gradio Blocks of the review page (not launched)."""
    import gradio as gr

    s = ReviewSession(root, segmenter, palette)
    labels = sorted({r["label"] for r in s.table.rows.values()})

    def fail(e: BaseException):
        return gr.Error(str(e).splitlines()[0] if isinstance(e, SaganetError) else "internal error (see the log)")

    def on_queue(queue, label):
        ids = s.queue(queue, label)
        return gr.update(choices=ids, value=ids[0] if ids else None)

    def on_clip(cid):
        if not cid:
            return None, "queue is empty", None, gr.update(value=0)
        try:
            end = max(0.0, round(s.duration(cid) - 0.04, 2))
            return str(s.preview(cid)), s.info(cid), s.frame(cid, 0.0), gr.update(value=0, maximum=end)
        except SaganetError as e:
            raise fail(e) from e

    def on_decide(decision):
        def handler(cid, note):
            if not cid:
                raise gr.Error("pick a clip first")
            return s.decide(cid, decision, note or None), s.stats_rows()
        return handler

    def on_next(queue, label, cid):
        ids = s.queue(queue, label)
        nxt = next((i for i in ids if i > (cid or "")), ids[0] if ids else None)
        return gr.update(choices=ids, value=nxt)

    def on_time(cid, t):
        return s.frame(cid, t) if cid else None

    def on_click(cid, t, evt: gr.SelectData):
        if not cid:
            raise gr.Error("pick a clip first")
        try:
            x, y = s.click_to_video(float(evt.index[0]), float(evt.index[1]))
            info = s.reclick(cid, x, y, float(t))
        except SaganetError as e:
            raise fail(e) from e
        return str(s.preview(cid)), info, s.stats_rows()

    with gr.Blocks(title="saganet data review") as app:
        gr.Markdown(f"## Review `{Path(root).name}`: accept or reject each clip; click the instrument in the "
                    "frame to re-segment it")
        with gr.Row():
            queue = gr.Dropdown(["pending", "all", "rejected", "accepted"], value="pending", label="queue",
                                elem_id="queue")
            label = gr.Dropdown(["", *labels], value="", label="class", elem_id="label")
            first = s.queue("pending")
            clip = gr.Dropdown(first, value=first[0] if first else None, label="clip", elem_id="clip")
        with gr.Row():
            video = gr.Video(label="clip with mask outline (and its audio)", elem_id="video")
            with gr.Column():
                frame = gr.Image(label="click the sounding instrument to re-segment", interactive=False,
                                 elem_id="frame")
                t = gr.Slider(0, 10, value=0, step=0.04, label="time (s) of the frame", elem_id="time")
        info = gr.Markdown(elem_id="info")
        note = gr.Textbox(label="note", lines=1, elem_id="note")
        with gr.Row():
            acc, rej, clr, nxt = (gr.Button("accept", variant="primary", elem_id="accept"),
                                  gr.Button("reject", variant="stop", elem_id="reject"),
                                  gr.Button("clear decision", elem_id="clear"), gr.Button("next", elem_id="next"))
        stats = gr.Dataframe(s.stats_rows(), headers=STATS_HEADERS, label="per class", interactive=False,
                             elem_id="stats")
        for c in (queue, label):
            c.change(on_queue, [queue, label], clip)
        clip.change(on_clip, clip, [video, info, frame, t])
        acc.click(on_decide("accept"), [clip, note], [info, stats])
        rej.click(on_decide("reject"), [clip, note], [info, stats])
        clr.click(on_decide("clear"), [clip, note], [info, stats])
        nxt.click(on_next, [queue, label, clip], clip)
        t.release(on_time, [clip, t], frame)
        frame.select(on_click, [clip, t], [video, info, stats])
        app.load(on_clip, clip, [video, info, frame, t])
    return app


def launch_review(root: str | Path, segmenter: str = "sam2.1-tiny", palette: dict | None = None,
                  host: str = "127.0.0.1", port: int = 7861, prevent_thread_lock: bool = False):
    """Serve the review page on `host:port` (loopback unless told otherwise)."""
    if not Path(root).is_dir():
        raise InputError(f"dataset root not found: {root}")
    app = build_review_app(root, segmenter, palette)
    app.launch(server_name=host, server_port=port, prevent_thread_lock=prevent_thread_lock,
               quiet=prevent_thread_lock)
    return app
