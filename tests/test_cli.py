"""The `gansr` command: upscaling, input conversion notes, one-line errors, exit codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gansr.cli import main
from gansr.models.generator import build_generator


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "generator.keras"
    build_generator(scale=3, channels=4, blocks=1).save(path)
    return path


def upscale(*args: str | Path) -> None:
    main(["upscale", *map(str, args)])


def test_output_is_scale_times_input_rgb_png(tmp_path: Path, model_path: Path, capsys) -> None:
    Image.fromarray(np.full((7, 11), 128, np.uint8), "L").save(tmp_path / "gray.png")
    upscale(tmp_path / "gray.png", tmp_path / "out.png", "--model", model_path)
    with Image.open(tmp_path / "out.png") as out:
        assert (out.format, out.mode, out.size) == ("PNG", "RGB", (33, 21))
    captured = capsys.readouterr()
    assert "grayscale" in captured.err.lower()  # the conversion is noted
    assert "11×7 → 33×21" in captured.out


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"", "empty"), (b"this is not a picture", "not a readable image"),
     (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "cannot read image")],
)
def test_unreadable_input_is_one_line_and_exit_1(tmp_path: Path, model_path: Path, capsys,
                                                 content: bytes, expected: str) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(content)
    with pytest.raises(SystemExit) as exit_info:
        upscale(bad, tmp_path / "out.png", "--model", model_path)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and expected in err
    assert not (tmp_path / "out.png").exists()


def test_missing_model_is_one_line_and_exit_1(tmp_path: Path, capsys) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "in.png")
    with pytest.raises(SystemExit) as exit_info:
        upscale(tmp_path / "in.png", tmp_path / "out.png", "--model", tmp_path / "none.keras")
    assert exit_info.value.code == 1
    assert "none.keras" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["upscale"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "upscale" in capsys.readouterr().out


def test_summary_before_any_run_says_what_to_do(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["summary", "--root", str(tmp_path)])
    assert "run `dvc repro` first" in capsys.readouterr().err
