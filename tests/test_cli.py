"""The `gansr` command: upscaling files and folders, input conversion notes, one-line errors, exit codes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from gansr import layout
from gansr.cli import main
from gansr.inference import with_precision
from gansr.models.generator import build_generator
from gansr.style.network import build_styled_generator, set_style_images
from gansr.tiling import DEFAULT_OVERLAP


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "generator.keras"
    build_generator(scale=3, channels=4, blocks=1).save(path)
    return path


def upscale(*args: str | Path) -> None:
    main(["upscale", *map(str, args)])


def exit_code(*args: str | Path) -> int:
    """Run `gansr upscale` with ``args``; its exit code (0 when it returns normally)."""
    try:
        upscale(*args)
    except SystemExit as exit_info:
        return int(exit_info.code or 0)
    return 0


def photo_folder(folder: Path) -> Path:
    """Two photos (one in a subfolder) plus files that are not photos, in ``folder``."""
    (folder / "sub").mkdir(parents=True)
    Image.new("RGB", (5, 4), "red").save(folder / "a.png")
    Image.new("RGB", (6, 3), "blue").save(folder / "sub" / "b.jpg")
    (folder / "notes.txt").write_text("not an image, not a failure")
    (folder / ".thumbs").mkdir()
    Image.new("RGB", (2, 2)).save(folder / ".thumbs" / "a.png")  # hidden: skipped
    return folder


def written(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


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


def test_a_float_image_is_refused_not_written_black(tmp_path: Path, model_path: Path, capsys) -> None:
    floats = np.random.default_rng(0).random((6, 5), dtype=np.float32)  # 0..1: black once clipped to 0..255
    Image.fromarray(floats).save(tmp_path / "f.tiff")
    assert exit_code(tmp_path / "f.tiff", tmp_path / "out.png", "--model", model_path) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"gansr upscale: error: {tmp_path / 'f.tiff'}: mode F has no faithful 8-bit RGB "
                   "rendering; convert it to 8- or 16-bit RGB or grayscale first")
    assert not (tmp_path / "out.png").exists()


def test_an_image_past_the_pixel_warning_limit_gets_notes_not_a_python_warning(
        tmp_path: Path, model_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.new("RGB", (40, 40)).save(tmp_path / "large.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1 600 px: over the limit, under twice it
    upscale(tmp_path / "large.png", tmp_path / "out.png", "--model", model_path)
    notes = [line for line in capsys.readouterr().err.splitlines() if line]
    assert notes == [f"note: {tmp_path / 'large.png'}: large image: 0 Mpx",
                     f"note: {tmp_path / 'large.png'}: the output will be 120×120 (0 Mpx): "
                     "slow to make and huge"]


def test_a_model_with_a_lambda_layer_is_refused_in_one_line(tmp_path: Path, lambda_model_file: Path,
                                                            capsys) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "in.png")
    assert exit_code(tmp_path / "in.png", tmp_path / "out.png", "--model", lambda_model_file) == 1
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and str(lambda_model_file) in error and "Lambda" in error
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
    (tmp_path / "params.yaml").write_text("scale: 4\n")
    with pytest.raises(SystemExit):
        main(["summary", "--root", str(tmp_path)])
    assert "run `dvc repro` first" in capsys.readouterr().err


def test_summary_says_what_precision_each_phase_trained_in(tmp_path: Path, capsys) -> None:
    (tmp_path / "params.yaml").write_text("scale: 4\n")
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "eval.json").write_text('{"scale": 4, "bicubic": {"y_psnr": 29.5, "ssim": 0.79}}')
    for variant, precision in [("psnr", "float32"), ("gan", "float32"), ("style", "mixed_bfloat16")]:
        (tmp_path / "models" / variant).mkdir(parents=True)
        (tmp_path / "models" / variant / "training.json").write_text(f'{{"precision": "{precision}"}}')
    main(["summary", "--root", str(tmp_path)])
    assert "Trained in:        float32 (psnr, gan); mixed_bfloat16 (style); CPUs" in capsys.readouterr().out


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Path:
    """A trained project: params.yaml, an exported generator, a psnr and a real one, and a docs/ subfolder."""
    root = tmp_path_factory.mktemp("project")
    (root / "params.yaml").write_text("scale: 3\n")
    (root / "docs").mkdir()
    for folder in ("export", "psnr", "real"):
        (root / "models" / folder).mkdir(parents=True)
        (root / "models" / folder / "generator.keras").write_bytes(model_path.read_bytes())
    Image.new("RGB", (5, 4), "red").save(root / "docs" / "photo.png")
    return root


@pytest.mark.parametrize("model", [[], ["--model", "psnr"]])
def test_upscale_from_a_subfolder_uses_the_project_above(project: Path, model: list[str]) -> None:
    done = subprocess.run([str(Path(sys.executable).parent / "gansr"), "upscale", "photo.png", "big.png", *model],
                          cwd=project / "docs", capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with Image.open(project / "docs" / "big.png") as out:
        assert out.size == (15, 12)


def test_a_noisy_photo_is_told_of_the_real_model_unless_it_runs(project: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    grain = np.random.default_rng(0).normal(128, 15, (48, 64, 3))
    Image.fromarray(np.clip(grain, 0, 255).astype(np.uint8)).save(tmp_path / "noisy.png")
    Image.new("RGB", (64, 48), "red").save(tmp_path / "clean.png")
    monkeypatch.chdir(tmp_path)
    upscale("noisy.png", "default.png", "--root", project)
    hint = capsys.readouterr().err
    assert hint.count("\n") == 1 and "noisy.png" in hint and "noisy" in hint and "--model real" in hint
    upscale("noisy.png", "real.png", "--root", project, "--model", "real")
    upscale("clean.png", "clean-out.png", "--root", project)
    assert "--model real" not in capsys.readouterr().err
    # The hint changes nothing in the output.
    assert np.array_equal(np.asarray(Image.open("default.png")), np.asarray(Image.open("real.png")))


def test_upscale_outside_any_project_uses_the_installed_one_or_root(project: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     capsys) -> None:
    Image.new("RGB", (5, 4), "red").save(tmp_path / "photo.png")
    monkeypatch.chdir(tmp_path)
    upscale("photo.png", "by-root.png", "--root", project)
    monkeypatch.setattr(layout, "INSTALLED_FROM", project)
    upscale("photo.png", "installed.png", "--model", "psnr")
    assert (tmp_path / "by-root.png").is_file() and (tmp_path / "installed.png").is_file()
    monkeypatch.setattr(layout, "INSTALLED_FROM", tmp_path)  # a wheel install: no project to fall back on
    assert exit_code("photo.png", "none.png") == 1
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "no gansr project" in error and "pass --root" in error
    assert not (tmp_path / "none.png").exists()


def test_a_folder_is_mirrored_and_unreadable_files_are_skipped(tmp_path: Path, model_path: Path,
                                                                capsys) -> None:
    photos = photo_folder(tmp_path / "photos")
    broken = photos / "sub" / "broken.png"
    broken.write_bytes(b"this is not a picture")
    assert exit_code(photos, tmp_path / "out", "--model", model_path) == 1
    assert written(tmp_path / "out") == ["a.png", "sub/b.png"]
    with Image.open(tmp_path / "out" / "sub" / "b.png") as out:
        assert (out.format, out.size) == ("PNG", (18, 9))
    captured = capsys.readouterr()
    assert [line for line in captured.err.splitlines() if line.startswith(("skipped", "gansr"))] == [
        f"skipped {broken}: not a readable image",
        f"gansr upscale: error: 1 of 3 files in {photos} could not be read (listed above)",
    ]
    assert f"{tmp_path / 'out'}: 2 of 3 files upscaled ×3" in captured.out


def test_files_neither_images_nor_videos_are_named_in_one_note(tmp_path: Path, model_path: Path,
                                                              capsys) -> None:
    photos = photo_folder(tmp_path / "photos")
    Image.new("RGB", (4, 4), "green").save(photos / "sub" / "c.gif")
    (photos / "sub" / "c.heic").write_bytes(b"?")
    assert exit_code(photos, tmp_path / "out", "--model", model_path) == 0
    assert written(tmp_path / "out") == ["a.png", "sub/b.png", "sub/c.png"]
    captured = capsys.readouterr()
    assert [line for line in captured.err.splitlines() if line.startswith("note")] == [
        f"note: {photos}: 2 files skipped, not images or videos by extension: notes.txt, sub/c.heic",
        f"note: {photos / 'sub' / 'c.gif'}: P converted to RGB",
    ]
    assert "3 of 3 files upscaled" in captured.out


def test_an_output_folder_inside_the_input_is_not_upscaled_again(tmp_path: Path, model_path: Path,
                                                                   capsys) -> None:
    photos = photo_folder(tmp_path / "photos")
    for _ in range(2):
        assert exit_code(photos, photos / "x3", "--model", model_path) == 0
        assert "2 of 2 files upscaled" in capsys.readouterr().out
    assert written(photos / "x3") == ["a.png", "sub/b.png"]


def test_a_folder_without_images_or_into_a_file_is_one_line_exit_1(tmp_path: Path, model_path: Path,
                                                                   capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert exit_code(tmp_path / "empty", tmp_path / "out", "--model", model_path) == 1
    assert "has no images" in capsys.readouterr().err
    photos = photo_folder(tmp_path / "photos")
    (tmp_path / "file.png").write_bytes(b"")
    assert exit_code(photos, tmp_path / "file.png", "--model", model_path) == 1
    assert "must be a folder" in capsys.readouterr().err


def test_a_file_into_an_existing_folder_lands_inside_it(tmp_path: Path, model_path: Path) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "in.jpg")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("still here")
    upscale(tmp_path / "in.jpg", tmp_path / "out", "--model", model_path)
    assert written(tmp_path / "out") == ["in.png", "keep.txt"]


def test_tiles_give_the_same_picture(tmp_path: Path, model_path: Path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    upscale(tmp_path / "in.png", tmp_path / "whole.png", "--model", model_path)
    upscale(tmp_path / "in.png", tmp_path / "tiled.png", "--model", model_path,
            "--tile", "5", "--overlap", "6")
    with Image.open(tmp_path / "whole.png") as whole, Image.open(tmp_path / "tiled.png") as tiled:
        np.testing.assert_array_equal(np.asarray(tiled), np.asarray(whole))


def test_help_shows_the_library_default_overlap(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["upscale", "--help"])
    assert f"receptive radius, at least {DEFAULT_OVERLAP}" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("flags", [["--tile", "0"], ["--overlap", "-1"], ["--tile", "big"]])
def test_bad_tile_flags_exit_2(tmp_path: Path, flags: list[str], capsys) -> None:
    assert exit_code(tmp_path / "in.png", tmp_path / "out.png", *flags) == 2
    assert flags[0] in capsys.readouterr().err


@pytest.fixture(scope="module")
def styled_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("styled") / "styled.keras"
    model = build_styled_generator(2, 4, 1, ("ink", "oil"), style_channels=4, style_blocks=1, patches=16,
                                   shading=0.5)
    rng = np.random.default_rng(0)
    set_style_images(model, [rng.integers(0, 256, (12, 12, 3), dtype=np.uint8) for _ in range(2)])  # two styles
    head = model.get_layer("to_subpixels")
    head.set_weights([np.full(w.shape, 0.05, np.float32) for w in head.get_weights()])
    model.save(path)
    return path


def test_style_by_name_or_index_changes_the_output(tmp_path: Path, styled_model_path: Path) -> None:
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (9, 8, 3), dtype=np.uint8)).save(
        tmp_path / "in.png")
    outputs = {}
    for style in ("none", "oil", "2"):
        upscale(tmp_path / "in.png", tmp_path / f"{style}.png", "--model", styled_model_path, "--style", style)
        outputs[style] = np.asarray(Image.open(tmp_path / f"{style}.png"))
    assert outputs["none"].shape == (18, 16, 3)
    assert np.array_equal(outputs["oil"], outputs["2"])
    assert not np.array_equal(outputs["oil"], outputs["none"])


@pytest.mark.parametrize(("model", "style", "expected"),
                         [("styled", "watercolour", "knows ink, oil"), ("plain", "oil", "has no styles")])
def test_unknown_style_is_one_line_and_exit_1(tmp_path: Path, styled_model_path: Path, model_path: Path,
                                              capsys, model: str, style: str, expected: str) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "in.png")
    path = styled_model_path if model == "styled" else model_path
    with pytest.raises(SystemExit) as exit_info:
        upscale(tmp_path / "in.png", tmp_path / "out.png", "--model", path, "--style", style)
    assert exit_info.value.code == 1
    assert expected in capsys.readouterr().err


def test_device_cpu_upscales(tmp_path: Path, model_path: Path) -> None:
    """In a fresh process, as a user runs it: GPUs can only be hidden before TensorFlow starts."""
    Image.new("RGB", (6, 5), "green").save(tmp_path / "in.png")
    command = "from gansr.cli import main; main()"
    done = subprocess.run([sys.executable, "-c", command, "upscale", str(tmp_path / "in.png"),
                           str(tmp_path / "out.png"), "--model", str(model_path), "--device", "cpu"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with Image.open(tmp_path / "out.png") as out:
        assert out.size == (18, 15)


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="this machine has a GPU")
def test_device_gpu_without_a_gpu_is_one_line_and_exit_1(tmp_path: Path, model_path: Path, capsys) -> None:
    Image.new("RGB", (4, 4)).save(tmp_path / "in.png")
    assert exit_code(tmp_path / "in.png", tmp_path / "out.png", "--model", model_path, "--device", "gpu") == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--device gpu: TensorFlow sees no GPU" in err
    assert not (tmp_path / "out.png").exists()


@pytest.fixture(scope="module")
def random_model_path(tmp_path_factory: pytest.TempPathFactory, random_generator: Callable[..., keras.Model]
                      ) -> Path:
    """A generator whose trunk shapes the output, so its compute precision shows in the pixels."""
    path = tmp_path_factory.mktemp("random") / "generator.keras"
    random_generator(scale=2, channels=8, blocks=2).save(path)
    return path


def upscaled(tmp_path: Path, model: Path, precision: str) -> np.ndarray:
    """The random test photo upscaled by ``model`` at ``precision``, as floats in [0, 1]."""
    photo = tmp_path / "photo.png"
    if not photo.exists():
        Image.fromarray(np.random.default_rng(3).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(photo)
    upscale(photo, tmp_path / f"{precision}.png", "--model", model, "--precision", precision)
    return np.asarray(Image.open(tmp_path / f"{precision}.png"), np.float64) / 255.0


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_reduced_precision_is_close_to_float32_but_not_identical(tmp_path: Path, random_model_path: Path,
                                                                precision: str) -> None:
    exact = upscaled(tmp_path, random_model_path, "float32")
    reduced = upscaled(tmp_path, random_model_path, precision)
    assert reduced.shape == exact.shape == (40, 48, 3)
    assert not np.array_equal(reduced, exact)  # the trunk really ran in the lower precision
    assert np.abs(reduced - exact).max() < 0.05
    assert 10 * np.log10(1 / np.mean((reduced - exact) ** 2)) > 40  # PSNR in dB


def test_auto_precision_is_bfloat16_on_a_cpu_with_native_bf16_else_float32(tmp_path: Path,
                                                                          random_model_path: Path) -> None:
    from gansr.training.precision import cpu_has_native_bf16

    expected = "float16" if tf.config.get_visible_devices("GPU") else (
        "bfloat16" if cpu_has_native_bf16() else "float32")
    np.testing.assert_array_equal(upscaled(tmp_path, random_model_path, "auto"),
                                  upscaled(tmp_path, random_model_path, expected))


def test_with_precision_runs_the_trunk_in_the_dtype_and_the_output_side_in_float32(
        random_generator: Callable[..., keras.Model]) -> None:
    model = random_generator(styles=("ink",))
    dtypes = {layer.name: layer.compute_dtype for layer in with_precision(model, "bfloat16").layers}
    assert [dtypes[name] for name in ("head", "block0_conv1", "style_in", "style_in_film")] == ["bfloat16"] * 4
    output_side = ("to_subpixels", "subpixel", "bicubic", "sr", "style_maps", "style_swap", "style_image",
                   "style_or_sr")
    assert [dtypes[name] for name in output_side] == ["float32"] * len(output_side)
    assert with_precision(model, "float32") is model


@pytest.mark.parametrize("flags", [["--device", "tpu"], ["--precision", "fp8"], ["--precision", "mixed_float16"]])
def test_bad_device_or_precision_exit_2(tmp_path: Path, flags: list[str], capsys) -> None:
    assert exit_code(tmp_path / "in.png", tmp_path / "out.png", *flags) == 2
    assert f"argument {flags[0]}: invalid choice: '{flags[1]}'" in capsys.readouterr().err
