"""The light runtime: `gansr upscale` on LiteRT and the TFLite export, the same pixels without TensorFlow."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from gansr import tracking
from gansr.cli import main
from gansr.config import TrackingConfig
from gansr.errors import GansrError
from gansr.export import export_generator
from gansr.inference import Upscaler, load_generator
from gansr.layout import RUNTIME_INFO_FILE, Layout
from gansr.lite import LiteUpscaler

pytestmark = pytest.mark.slow

STYLES = ("gravel", "brick")
TFLITE = "generator_fp16.tflite"
REGISTERED, KERAS_ONLY = "gansr", "gansr-keras-only"


@pytest.fixture(scope="module")
def project(random_generator: Callable[..., keras.Model], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose export stage wrote a plain (gan) and a styled generator, keras and tflite."""
    root = tmp_path_factory.mktemp("project")
    (root / "params.yaml").write_text("scale: 2\n")
    layout = Layout.at(root)
    for name, model in {"gan": random_generator(7), "style": random_generator(8, styles=STYLES)}.items():
        export_generator(model, layout.export / name, ("keras", "tflite"))
        layout.generator(name).parent.mkdir(parents=True)
        model.save(layout.generator(name))  # as its training stage wrote it
    shutil.copy(layout.exported("gan", "keras"), layout.exported_generator)  # the default .keras model
    # Registered as the export stage does (with the TFLite files), and as versions before it did (without).
    (root / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    lite_files = [layout.exported("gan", "tflite"), layout.exported("gan", "tflite").with_name(RUNTIME_INFO_FILE)]
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.chdir(root)
        for name, lite in ((REGISTERED, lite_files), (KERAS_ONLY, [])):
            cfg = TrackingConfig(experiment="lite", registered_model=name)
            with tracking.start_run(root, cfg.experiment, run_name=name) as run:
                run_id = run.info.run_id
            tracking.register_generator(load_generator(layout.generator("gan")), run_id, {"y_psnr": 30.0}, cfg,
                                        root, lite)
    return root


def photo(height: int = 37, width: int = 53, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize(("variant", "style"), [("gan", 0), ("style", 0), ("style", 2)])
@pytest.mark.parametrize("tile", [None, 16])
def test_lite_gives_the_tensorflow_pixels_within_the_export_tolerance(project: Path, variant: str, style: int,
                                                                      tile: int | None) -> None:
    layout = Layout.at(project)
    lite = LiteUpscaler(layout.exported(variant, "tflite"), tile=tile, style=style)
    full = Upscaler(keras.saving.load_model(layout.generator(variant)), tile=tile, style=style)
    assert (lite.scale, lite.style_names, lite.overlap, lite.tile) == (
        full.scale, full.style_names, full.overlap, full.tile)
    assert lite.bytes_per_lr_pixel > 2 * full.bytes_per_lr_pixel  # LiteRT's arena holds more: smaller windows
    got, expected = lite(photo()), full(photo())
    assert got.shape == expected.shape == (74, 106, 3)
    difference = np.abs(got.astype(int) - expected.astype(int))
    assert 0 < difference.max() <= 2  # float16 weights: two grey levels at most, as the export check allows
    if style:
        assert not np.array_equal(got, lite(photo(), style=0))  # the style is fed to the model


def test_the_cli_on_lite_imports_no_tensorflow(project: Path, tmp_path: Path) -> None:
    Image.fromarray(photo()).save(tmp_path / "in.png")
    check = ("import sys; from gansr.cli import main; main(sys.argv[1:]); "
             "loaded = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
             "assert not loaded, f'imported {loaded}'")
    for args in ([], ["--model", "style", "--style", "brick"], ["--runtime", "lite"],
                 ["--model", f"models:/{REGISTERED}@champion"]):
        done = subprocess.run([sys.executable, "-c", check, "upscale", "in.png", "out.png", "--root", str(project),
                               *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        with Image.open(tmp_path / "out.png") as out:
            assert out.size == (106, 74)
    done = subprocess.run([sys.executable, "-c", check, "upscale", "in.png", "out.png", "--root", str(project),
                           "--runtime", "tf"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert "imported ['tensorflow', 'keras']" in done.stderr  # the control: the check sees TensorFlow


def test_a_registered_model_runs_on_lite_and_on_tensorflow(project: Path, tmp_path: Path) -> None:
    Image.fromarray(photo()).save(tmp_path / "in.png")
    outputs = {}
    for name, runtime in ((REGISTERED, "auto"), (REGISTERED, "tf"), (KERAS_ONLY, "auto")):
        output = tmp_path / f"{name}-{runtime}.png"
        main(["upscale", str(tmp_path / "in.png"), str(output), "--root", str(project),
              "--model", f"models:/{name}@champion", "--runtime", runtime])
        outputs[name, runtime] = np.asarray(Image.open(output)).astype(int)
    exported = LiteUpscaler(Layout.at(project).exported("gan", "tflite"))(photo())
    assert np.array_equal(outputs[REGISTERED, "auto"], exported)  # LiteRT on the registered TFLite file
    assert np.array_equal(outputs[REGISTERED, "tf"], outputs[KERAS_ONLY, "auto"])  # a Keras-only version: TF
    assert 0 < np.abs(outputs[REGISTERED, "auto"] - outputs[REGISTERED, "tf"]).max() <= 2


@pytest.mark.parametrize(("args", "message"), [
    (["--runtime", "lite", "--model", f"models:/{KERAS_ONLY}@champion"],
     "--runtime lite: this --model has no TFLite export"),
    (["--runtime", "lite", "--model", "{keras}"], "--runtime lite: this --model has no TFLite export"),
    (["--runtime", "lite", "--precision", "float16"], "--runtime lite computes in float32 on the CPU"),
    (["--runtime", "tf", "--model", "{tflite}"], "a TFLite file runs on --runtime lite, not tf"),
    (["--model", "style", "--style", "oil"], "--style oil: unknown; this generator knows gravel, brick"),
    (["--max-memory", "1"], "max_memory 1 MiB is below the 9 MiB this generator needs"),
    (["--tile", "64", "--max-memory", "100"], "--tile and --max-memory: give one"),
    (["--style", "missing.png"], "--style missing.png: no such image file"),
    (["--style", "{painting}", "--runtime", "lite"], "a style image runs on --runtime tf"),
    (["--style", "{painting}", "--model", "{tflite}"], "a style image needs a Keras generator"),
])
def test_runtime_and_style_mistakes_are_one_line_exit_1(project: Path, tmp_path: Path, capsys,
                                                         args: list[str], message: str) -> None:
    Image.fromarray(photo()).save(tmp_path / "in.png")
    layout = Layout.at(project)
    Image.fromarray(photo(seed=1)).save(tmp_path / "painting.png")
    args = [a.format(keras=layout.generator("gan"), tflite=layout.exported("gan", "tflite"),
                     painting=tmp_path / "painting.png") for a in args]
    with pytest.raises(SystemExit) as exit_info:
        main(["upscale", str(tmp_path / "in.png"), str(tmp_path / "out.png"), "--root", str(project), *args])
    assert exit_info.value.code == 1
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and message in error
    assert not (tmp_path / "out.png").exists()


def test_any_style_image_restyles_the_default_generator_on_tensorflow(project: Path, tmp_path: Path) -> None:
    Image.fromarray(photo()).save(tmp_path / "in.png")
    painting = np.zeros((64, 64, 3), np.uint8)
    painting[..., 0] = np.tile(np.arange(0, 256, 4, dtype=np.uint8), (64, 1))  # red strokes of every level
    Image.fromarray(painting).save(tmp_path / "reds.png")
    for name, style in (("plain", []), ("styled", ["--style", str(tmp_path / "reds.png")])):
        main(["upscale", str(tmp_path / "in.png"), str(tmp_path / f"{name}.png"), "--root", str(project), *style])
    with Image.open(tmp_path / "plain.png") as plain, Image.open(tmp_path / "styled.png") as styled:
        plain, styled = np.asarray(plain, float), np.asarray(styled, float)
    assert styled.shape == plain.shape == (74, 106, 3)
    red = styled[..., 0].mean() - styled[..., 1:].mean()
    assert red > 20 and red > (plain[..., 0].mean() - plain[..., 1:].mean()) + 20  # the painting's palette


def test_an_output_that_cannot_be_written_is_one_line_exit_1(project: Path, tmp_path: Path, capsys) -> None:
    Image.fromarray(photo()).save(tmp_path / "in.png")
    _write_clip(tmp_path / "in.mp4")
    blocked = tmp_path / "a file"
    blocked.write_text("in the way of a folder")
    for source, output in ((tmp_path / "in.png", blocked / "out.png"), (tmp_path / "in.mp4", blocked / "out.mp4")):
        with pytest.raises(SystemExit) as exit_info:
            main(["upscale", str(source), str(output), "--root", str(project)])
        assert exit_info.value.code == 1
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert error == f"gansr upscale: error: {output}: cannot write there (File exists: {blocked})"


def _write_clip(path: Path) -> None:
    """A 4-frame video of the test photo."""
    import imageio_ffmpeg

    writer = imageio_ffmpeg.write_frames(str(path), (52, 36), fps=4)
    writer.send(None)
    for _ in range(4):
        writer.send(np.ascontiguousarray(photo(36, 52)).tobytes())
    writer.close()


def test_a_damaged_export_is_named_in_one_line(project: Path, tmp_path: Path) -> None:
    folder = tmp_path / "gan"
    folder.mkdir()
    source = Layout.at(project).exported("gan", "tflite")
    (folder / TFLITE).write_bytes(source.read_bytes()[:1000])
    (folder / RUNTIME_INFO_FILE).write_bytes(source.with_name(RUNTIME_INFO_FILE).read_bytes())
    with pytest.raises(GansrError, match=f"{folder / TFLITE}: not a loadable TFLite model"):
        LiteUpscaler(folder / TFLITE)
    (folder / RUNTIME_INFO_FILE).unlink()
    with pytest.raises(GansrError, match=f"no {RUNTIME_INFO_FILE} beside the TFLite generator in {folder}"):
        LiteUpscaler(folder / TFLITE)
