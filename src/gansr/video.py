"""Upscaling a video file frame by frame, keeping its audio.

Frames are decoded and encoded by the ffmpeg binary that ships with
imageio-ffmpeg, so no system ffmpeg is needed. Every frame goes through the
same upscaler (:class:`~gansr.tiling.TiledUpscaler`) as a still image. The output keeps the
input's frame rate and audio track: H.264 + AAC, or VP9 + Opus for WebM
(which allows no other codecs), in yuv420p so every player shows it. It is
written beside the output and renamed into place only once complete.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import imageio_ffmpeg
import numpy as np

from gansr.atomic import atomic_path
from gansr.errors import DataError

if TYPE_CHECKING:
    from gansr.tiling import TiledUpscaler

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v"})


class Encoding(NamedTuple):
    """The ffmpeg encoders (and video quality options) for one output container."""

    video_codec: str
    video_options: list[str]
    audio_codec: str


# CRF 18 is visually lossless for H.264; CRF 31 with no bitrate cap is VP9's equivalent.
H264_AAC = Encoding("libx264", ["-crf", "18"], "aac")
VP9_OPUS = Encoding("libvpx-vp9", ["-crf", "31", "-b:v", "0"], "libopus")
ENCODINGS = {".webm": VP9_OPUS}


def is_video(path: Path) -> bool:
    """True if ``path`` is named like a video file (decided by its extension)."""
    return path.suffix.lower() in VIDEO_SUFFIXES


def upscale_video(upscaler: TiledUpscaler, source: Path, target: Path, say: Callable[..., None] = print) -> str:
    """Upscale every frame of ``source`` into the video ``target``; notes go to ``say`` on stderr.

    A yuv420p frame needs even sides: an odd upscaled side loses its last
    pixel row or column (noted). Returns a one-line summary.
    """
    if not is_video(target):
        raise DataError(f"{target}: not a video file name; write a video as one of "
                        f"{', '.join(sorted(VIDEO_SUFFIXES))}")
    if not source.is_file():
        raise DataError(f"{source}: file not found")
    with closing(imageio_ffmpeg.read_frames(str(source))) as reader:
        meta = _metadata(reader, source)
        width, height = meta["size"]
        fps = meta["fps"]
        out_w, out_h = (side * upscaler.scale // 2 * 2 for side in (width, height))
        if (out_w, out_h) != (width * upscaler.scale, height * upscaler.scale):
            say(f"note: {source}: cropped to {out_w}×{out_h} (yuv420p needs even sides)", file=sys.stderr)
        has_audio = "audio_codec" in meta
        encoding = ENCODINGS.get(target.suffix.lower(), H264_AAC)
        from tqdm import tqdm  # here, not at import: a photo's upscale needs no progress bar

        progress = tqdm(_frames(reader, source, width, height), total=round(meta["duration"] * fps) or None,
                        desc=source.name, unit="frame", leave=False)
        with atomic_path(target) as staged, progress as frames:
            writer = imageio_ffmpeg.write_frames(
                str(staged), (out_w, out_h), fps=fps, codec=encoding.video_codec, quality=None,
                macro_block_size=2,  # sides are even: never rescaled
                ffmpeg_log_level="error", input_params=["-r", frame_rate(fps)],
                output_params=list(encoding.video_options), audio_path=str(source) if has_audio else None,
                audio_codec=encoding.audio_codec)
            count = 0
            with closing(writer):
                writer.send(None)
                for frame in frames:
                    upscaled = np.ascontiguousarray(upscaler(frame)[:out_h, :out_w])
                    try:
                        writer.send(upscaled)
                    except OSError as exc:
                        reason = str(exc).splitlines()[0]  # ffmpeg has printed its own reason above
                        raise DataError(f"{target}: ffmpeg could not write the video ({reason})") from exc
                    count += 1
            if not count:
                raise DataError(f"{source}: no video frames")
            _check_written(staged, target)
    audio = ", audio kept" if has_audio else ""
    return f"{target}: {count} frames {width}×{height} → {out_w}×{out_h} at {fps:g} fps{audio}"


def frame_rate(fps: float) -> str:
    """``fps`` as an exact ffmpeg frame rate.

    ffmpeg prints the NTSC rates rounded (23.98, 29.97, 59.94); written back
    as n·1000/1001 they keep a long video in step with its audio.
    """
    ntsc = round(fps * 1.001)
    return f"{ntsc * 1000}/1001" if abs(ntsc / 1.001 - fps) < 0.006 else f"{fps:g}"


def _metadata(reader: Iterator[Any], path: Path) -> dict[str, Any]:
    """The metadata read_frames yields first; a :class:`DataError` naming ``path`` if unreadable."""
    try:
        meta = next(reader)
    except (OSError, RuntimeError, ValueError, IndexError, StopIteration) as exc:
        raise DataError(f"{path}: not a readable video ({_last_line(exc)})") from exc
    if not meta.get("fps"):
        raise DataError(f"{path}: not a readable video (no frame rate)")
    return meta


def _check_written(staged: Path, target: Path) -> None:
    """Raise if ffmpeg left no readable video: it can fail after taking the last frame (encoder, muxer, disk)."""
    try:
        with closing(imageio_ffmpeg.read_frames(str(staged))) as written:
            _metadata(written, staged)
    except DataError as exc:
        raise DataError(f"{target}: ffmpeg could not write the video (its messages are above)") from exc


def _frames(reader: Iterator[bytes], source: Path, width: int, height: int) -> Iterator[np.ndarray]:
    """The remaining frames of ``reader`` as H×W×3 uint8 arrays."""
    try:
        for frame in reader:
            yield np.frombuffer(frame, np.uint8).reshape(height, width, 3)
    except RuntimeError as exc:
        raise DataError(f"{source}: cannot read video ({_last_line(exc)})") from exc


def _last_line(exc: BaseException) -> str:
    """The last non-empty line of an error: ffmpeg's own reason comes last in its log."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
