"""Cut `[start, end)` of a long video (video + audio) into a new mp4 with PyAV, and a window of a wav stem.

The reference cut with the ffmpeg command line (`-ss start -t duration`, re-encoding both streams); we use
PyAV's bindings to the same libraries so nothing depends on an ffmpeg binary. Video is resampled BY TIMESTAMP
to a constant frame rate (the source's, or `fps`): output frame k shows the source frame on screen at
`start + k / fps` (as `saganet.io.video` decodes), so variable-frame-rate sources give evenly timed clips.
Rotation metadata is applied (the clip is stored upright). Audio is cut on the same time axis (both streams
measured from the video stream's start), resampled to float planar at the source rate (mono stays mono,
more than two channels are downmixed to stereo), zero-padded where the source has no samples, and encoded
AAC. Writes go through `atomic_path`: a kill leaves at most a `.{stem}.XXXXXXXX.mp4` temporary.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf

from saganet.errors import InputError
from saganet.io.atomic import atomic_path
from saganet.io.audio import write_audio
from saganet.io.video import (
    DECODE_ERRORS,
    TIME_EPS,
    DisplayFrame,
    VideoReader,
    open_container,
    short_error,
    stream_start,
)

log = logging.getLogger(__name__)

AUDIO_FRAME = 1024  # AAC's native frame size
MAX_SHORTFALL = 0.5  # seconds the source may end before the window's end (padded with the last frame)


@dataclass(frozen=True)
class CutOptions:
    """Encoding of cut clips. `fps=None` keeps the source rate; `max_side` downscales larger frames."""

    fps: float | None = None
    max_side: int | None = None
    crf: int = 18
    preset: str = "veryfast"
    audio_bitrate: int = 192_000


def _even(v: int) -> int:
    return max(2, v - v % 2)


def _out_size(w: int, h: int, max_side: int | None) -> tuple[int, int]:
    if max_side and max(w, h) > max_side:
        s = max_side / max(w, h)
        w, h = round(w * s), round(h * s)
    return _even(w), _even(h)  # yuv420p needs even sizes


def _seek(container, stream, t0: float | None, start: float, p: Path) -> None:
    if start > 2.0 and stream.time_base:
        try:
            container.seek(int(((t0 or 0.0) + start - 1.0) / stream.time_base), stream=stream, backward=True)
        except DECODE_ERRORS as e:
            log.debug("seek failed in %s (%s); decoding from the beginning", p, short_error(e))
            container.seek(0)


def read_audio_window(src: str | os.PathLike, start: float, end: float, rate: int | None = None,
                      mono: bool = False) -> tuple[np.ndarray, int]:
    """Audio of `[start, end)` (seconds from the VIDEO stream's start, if any) as float32 `(C, L)`, C in {1, 2}.

    `L = round((end - start) * rate)`; missing samples (before the audio starts, after it ends) are zeros.
    `rate`: resample to this rate (PyAV's resampler, i.e. libswresample), default the source's; `mono`:
    downmix to one channel.
    """
    src = Path(src)
    container = open_container(src)
    try:
        if not container.streams.audio:
            raise InputError(f"{src} has no audio stream: a training clip needs its sound")
        astream = container.streams.audio[0]
        vt0 = stream_start(container.streams.video[0]) if container.streams.video else None
        t0 = vt0 if vt0 is not None else (stream_start(astream) or 0.0)
        rate = int(rate or astream.rate or astream.codec_context.sample_rate)
        channels = astream.codec_context.channels or 1
        layout = "mono" if channels == 1 or mono else "stereo"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        n = int(round((end - start) * rate))
        out = np.zeros((1 if layout == "mono" else 2, n), np.float32)
        _seek(container, astream, t0, start, src)
        pos = None  # time (relative) of the next resampled sample

        def place(a: np.ndarray, pos: float) -> float:
            """Write resampled samples `a (C, k)` at time `pos` into `out`; returns the time after them."""
            i0 = int(round((pos - start) * rate))
            lo, hi = max(i0, 0), min(i0 + a.shape[1], n)
            if hi > lo:
                out[:, lo:hi] = a[:, lo - i0:hi - i0]
            return pos + a.shape[1] / rate

        try:
            for frame in container.decode(astream):
                if pos is None or frame.time is not None and abs(frame.time - t0 - pos) > 0.1:
                    pos = (frame.time - t0) if frame.time is not None else 0.0  # (re)anchor after gaps
                for rf in resampler.resample(frame):
                    pos = place(rf.to_ndarray(), pos)
                if pos is not None and pos >= end:
                    break
            if pos is not None:  # samples the resampler still holds
                for rf in resampler.resample(None):
                    pos = place(rf.to_ndarray(), pos)
        except DECODE_ERRORS as e:
            if pos is None:
                raise InputError(f"cannot decode the audio of {src} ({short_error(e)}): the file is corrupt") from e
            log.warning("audio of %s stops early (%s); the rest of the window is silent", src, short_error(e))
        if pos is None:
            raise InputError(f"{src} has an audio stream without decodable samples: the file is corrupt")
        return out, rate
    finally:
        container.close()


def cut_clip(src: str | os.PathLike, dest: str | os.PathLike, start: float, end: float,
             opts: CutOptions = CutOptions()) -> dict:
    """Cut `[start, end)` seconds of `src` (video + audio) into the mp4 `dest`, atomically.

    Returns facts of the clip (frames, fps, size, audio rate). Raises `InputError` for an unreadable source,
    one without audio or video, or a window that lies beyond the source's end.
    """
    src, dest = Path(src), Path(dest)
    if not src.is_file():
        raise InputError(f"source video not found: {src}")
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
        raise InputError(f"bad window [{start}, {end}) s for {src}: need 0 <= start < end")
    audio, sr = read_audio_window(src, start, end)
    video = VideoReader(src, threads=True)
    try:
        src_rate = video.rate or Fraction(25)
        fps = Fraction(opts.fps).limit_denominator(1001) if opts.fps else Fraction(src_rate).limit_denominator(1001)
        n_out = int(math.floor((end - start) * fps + 1e-6))
        _seek(video.container, video.stream, video.start, start, src)
        with atomic_path(dest) as tmp:
            info = _encode(video, tmp, start, end, fps, n_out, audio, sr, opts)
    except DECODE_ERRORS as e:
        raise InputError(f"cannot cut {src} ({short_error(e)}): the file is corrupt") from e
    finally:
        video.close()
    return info


def _encode(video: VideoReader, tmp: Path, start: float, end: float, fps: Fraction, n_out: int,
            audio: np.ndarray, sr: int, opts: CutOptions) -> dict:
    src = video.path
    out = av.open(str(tmp), mode="w", format="mp4")
    try:
        vs = out.add_stream("libx264", rate=fps)
        vs.pix_fmt = "yuv420p"
        vs.time_base = Fraction(1) / fps
        vs.options = {"crf": str(int(opts.crf)), "preset": opts.preset}
        as_ = out.add_stream("aac", rate=sr)
        as_.layout = "mono" if audio.shape[0] == 1 else "stereo"
        as_.bit_rate = opts.audio_bitrate
        k, prev, size, last_t = 0, None, None, None

        def emit(frame: DisplayFrame) -> None:
            nonlocal k, size
            if size is None:
                h, w = frame.display_size
                size = _out_size(w, h, opts.max_side)
                vs.width, vs.height = size
            # reformat to the output size before rotating (swscale is fast); rotation swaps the axes
            tw, th = (size[1], size[0]) if frame.rotation in (90, 270) else size
            rgb = frame.to_array(format="rgb24", width=tw, height=th)
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            vf.pts = k
            out.mux(vs.encode(vf))
            k += 1

        for frame in video.frames(start, end):
            rel = frame.time
            # targets before this frame's time show the previous frame (the first one if none yet)
            while k < n_out and start + k / fps < rel - TIME_EPS and (prev is not None or rel > start):
                emit(prev if prev is not None else frame)
            prev, last_t = frame, rel
            if k >= n_out:
                break
        if prev is None or last_t is None:
            raise InputError(f"{src} has no video frames after {start:.2f} s: the window lies beyond the video")
        frame_dur = 1.0 / float(video.rate or 25)
        if last_t + frame_dur < end - MAX_SHORTFALL and k + 1 < n_out:
            raise InputError(f"{src} ends at {last_t + frame_dur:.2f} s, before the window's end {end:.2f} s: "
                             "the metadata does not match this video")
        while k < n_out:
            emit(prev)
        out.mux(vs.encode(None))
        for s in range(0, audio.shape[1], AUDIO_FRAME):
            chunk = np.ascontiguousarray(audio[:, s:s + AUDIO_FRAME])
            af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=as_.layout.name)
            af.sample_rate, af.pts = sr, s
            out.mux(as_.encode(af))
        out.mux(as_.encode(None))
    finally:
        out.close()
    return {"frames": n_out, "fps": float(fps), "size": list(size or (0, 0)), "sample_rate": sr,
            "channels": int(audio.shape[0]), "duration": n_out / float(fps)}


def copy_clip(src: str | os.PathLike, dest: str | os.PathLike) -> dict:
    """An already-cut clip (the reference's `{filename}.mp4` case): copied byte for byte, atomically."""
    src, dest = Path(src), Path(dest)
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
    return {"copied": True}


def cut_audio(src: str | os.PathLike, dest: str | os.PathLike, start: float, end: float) -> dict:
    """Cut `[start, end)` seconds of an audio file (a URMP `AuSep_*` stem) to wav/flac `dest`, atomically.

    Samples past the file's end are zeros; a window starting past the end is an error.
    """
    src, dest = Path(src), Path(dest)
    try:
        info = sf.info(str(src))
        sr = int(info.samplerate)
        i0, n = int(round(start * sr)), int(round((end - start) * sr))
        if i0 >= info.frames:
            raise InputError(f"{src} is {info.frames / sr:.2f} s long; the window starts at {start:.2f} s")
        a, _ = sf.read(str(src), start=i0, frames=n, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError) as e:
        raise InputError(f"cannot read audio {src} ({short_error(e)}): the file is corrupt") from e
    if a.shape[0] < n:
        a = np.pad(a, ((0, n - a.shape[0]), (0, 0)))
    write_audio(dest, a.T, sr)
    return {"sample_rate": sr, "samples": n, "channels": int(a.shape[1])}
