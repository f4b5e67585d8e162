"""`gansr upscale` on video files: frames, size, frame rate and audio survive; bad input fails cleanly."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from gansr.cli import main
from gansr.inference import Upscaler, load_generator
from gansr.models.generator import build_generator
from gansr.video import frame_rate, upscale_video

FRAMES, WIDTH, HEIGHT, FPS = 8, 24, 16, 12


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "generator.keras"
    build_generator(scale=2, channels=4, blocks=1).save(path)
    return path


def gray_levels() -> list[int]:
    """One flat gray level per frame, far enough apart to survive lossy coding and tell frames apart."""
    return [30 + 25 * i for i in range(FRAMES)]


def make_video(path: Path, size: tuple[int, int] = (WIDTH, HEIGHT), pix_fmt: str = "yuv420p") -> Path:
    """A silent video of flat gray frames, ``gray_levels()`` in order."""
    writer = imageio_ffmpeg.write_frames(str(path), size, fps=FPS, pix_fmt_out=pix_fmt, macro_block_size=1,
                                         ffmpeg_log_level="error")
    writer.send(None)
    for level in gray_levels():
        writer.send(np.full((size[1], size[0], 3), level, np.uint8))
    writer.close()
    return path


def add_sine(video: Path, path: Path) -> Path:
    """``video`` with a 440 Hz sine as its audio track, made by the bundled ffmpeg."""
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(video), "-f", "lavfi",
                    "-i", f"sine=frequency=440:duration={FRAMES / FPS}", "-c:v", "copy", "-c:a", "aac",
                    "-shortest", str(path)], check=True)
    return path


def streams(path: Path) -> str:
    """The stream lines of ``ffmpeg -i path`` (ffprobe is not bundled)."""
    log = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                         capture_output=True, text=True).stderr
    return "\n".join(line for line in log.splitlines() if "Stream #" in line)


def read_video(path: Path) -> tuple[dict, list[np.ndarray]]:
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    return meta, [np.frombuffer(frame, np.uint8).reshape(height, width, 3) for frame in reader]


def exit_code(*args: str | Path) -> int:
    try:
        main(["upscale", *map(str, args)])
    except SystemExit as exit_info:
        return int(exit_info.code or 0)
    return 0


def test_a_video_is_upscaled_frame_by_frame_at_its_frame_rate(tmp_path: Path, model_path: Path,
                                                              capsys) -> None:
    clip = make_video(tmp_path / "clip.mp4")
    assert exit_code(clip, tmp_path / "out.mp4", "--model", model_path) == 0
    meta, frames = read_video(tmp_path / "out.mp4")
    assert (len(frames), meta["size"], meta["fps"]) == (FRAMES, (2 * WIDTH, 2 * HEIGHT), FPS)
    # An untrained generator is bicubic, so each flat frame stays flat at its level, in order.
    np.testing.assert_allclose([frame.mean() for frame in frames], gray_levels(), atol=3)
    assert "Audio:" not in streams(tmp_path / "out.mp4")
    assert f"out.mp4: {FRAMES} frames 24×16 → 48×32 at 12 fps" in capsys.readouterr().out
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clip.mp4", "out.mp4"]  # no temporaries left


@pytest.mark.parametrize(("suffix", "codecs"), [(".mp4", ("h264", "aac")), (".webm", ("vp9", "opus"))])
def test_the_audio_track_is_kept(tmp_path: Path, model_path: Path, suffix: str,
                                 codecs: tuple[str, str], capsys) -> None:
    clip = add_sine(make_video(tmp_path / "silent.mp4"), tmp_path / "clip.mov")
    assert "Audio:" in streams(clip)
    out = tmp_path / f"out{suffix}"
    assert exit_code(clip, out, "--model", model_path) == 0
    video, audio = streams(out).splitlines()
    assert f"Video: {codecs[0]}" in video and "yuv420p" in video and "48x32" in video
    assert f"Audio: {codecs[1]}" in audio
    assert len(read_video(out)[1]) == FRAMES
    assert "audio kept" in capsys.readouterr().out


def test_odd_sides_are_cropped_to_even_for_yuv420p(tmp_path: Path, capsys) -> None:
    build_generator(scale=3, channels=4, blocks=1).save(tmp_path / "x3.keras")
    clip = make_video(tmp_path / "odd.mkv", size=(7, 5), pix_fmt="yuv444p")  # ×3: 21×15
    assert exit_code(clip, tmp_path / "out.mkv", "--model", tmp_path / "x3.keras") == 0
    meta, frames = read_video(tmp_path / "out.mkv")
    assert (meta["size"], len(frames)) == ((20, 14), FRAMES)
    assert "cropped to 20×14" in capsys.readouterr().err


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "not a readable video"), (b"this is not a video" * 20, "Invalid data found"), (None, "file not found"),
])
def test_an_unreadable_video_is_one_line_and_exit_1(tmp_path: Path, model_path: Path, capsys,
                                                    content: bytes | None, expected: str) -> None:
    bad = tmp_path / "bad.mp4"
    if content is not None:
        bad.write_bytes(content)
    (tmp_path / "out.mp4").write_bytes(b"an earlier result")
    assert exit_code(bad, tmp_path / "out.mp4", "--model", model_path) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and expected in err
    assert (tmp_path / "out.mp4").read_bytes() == b"an earlier result"


def test_a_video_into_an_image_name_is_refused(tmp_path: Path, model_path: Path, capsys) -> None:
    clip = make_video(tmp_path / "clip.mp4")
    assert exit_code(clip, tmp_path / "out.png", "--model", model_path) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "out.png: not a video file name" in err
    assert not (tmp_path / "out.png").exists()


class InterruptAfter:
    """A real Upscaler whose user presses Ctrl-C after ``frames`` frames."""

    def __init__(self, upscaler: Upscaler, frames: int) -> None:
        self.upscaler, self.scale, self.left = upscaler, upscaler.scale, frames

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if not self.left:
            raise KeyboardInterrupt
        self.left -= 1
        return self.upscaler(image)


def test_an_interrupted_run_leaves_no_output(tmp_path: Path, model_path: Path) -> None:
    clip = make_video(tmp_path / "clip.mp4")
    upscaler = InterruptAfter(Upscaler(load_generator(model_path)), frames=3)
    with pytest.raises(KeyboardInterrupt):
        upscale_video(upscaler, clip, tmp_path / "out.mp4")  # type: ignore[arg-type]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["clip.mp4"]


def test_a_folder_mirrors_videos_beside_images(tmp_path: Path, model_path: Path, capsys) -> None:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    make_video(tmp_path / "in" / "sub" / "clip.mp4")
    Image.new("RGB", (5, 4), "red").save(tmp_path / "in" / "photo.jpg")
    assert exit_code(tmp_path / "in", tmp_path / "out", "--model", model_path) == 0
    assert sorted(path.relative_to(tmp_path / "out").as_posix() for path in (tmp_path / "out").rglob("*.*")) \
        == ["photo.png", "sub/clip.mp4"]
    assert read_video(tmp_path / "out" / "sub" / "clip.mp4")[0]["size"] == (48, 32)
    assert "2 of 2 files upscaled ×2" in capsys.readouterr().out


@pytest.mark.parametrize(("fps", "rate"), [(23.98, "24000/1001"), (29.97, "30000/1001"), (59.94, "60000/1001"),
                                           (24.0, "24"), (25.0, "25"), (12.5, "12.5")])
def test_ntsc_frame_rates_are_written_exactly(fps: float, rate: str) -> None:
    assert frame_rate(fps) == rate
