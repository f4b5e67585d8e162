"""Loading a generator and running it (and the bicubic baseline) on whole images, tiled or not."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pytest

from gansr import inference, tiling
from gansr.errors import ConfigError, GansrError
from gansr.inference import Upscaler, bicubic_upscale, load_generator, receptive_radius
from gansr.models.generator import build_generator
from gansr.tiling import axis_windows, fitted_tiles

NOT_AN_ARCHIVE = "not a Keras model archive (corrupt or truncated?)"


def test_a_missing_generator_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "models" / "gan" / "generator.keras"
    with pytest.raises(GansrError, match=re.escape(f"no generator at {missing}")):
        load_generator(missing)
    with pytest.raises(GansrError, match="no generator at"):
        load_generator(tmp_path)  # a folder is not a generator file


def test_a_corrupt_generator_file_names_the_path(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"this is not a zip archive")
    with pytest.raises(GansrError, match=re.escape(f"{garbage}: {NOT_AN_ARCHIVE}")):
        load_generator(garbage)


def test_a_truncated_generator_file_names_the_path(tmp_path: Path, random_generator) -> None:
    path = tmp_path / "generator.keras"
    random_generator().save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a copy cut short
    with pytest.raises(GansrError, match=re.escape(f"{path}: {NOT_AN_ARCHIVE}")):
        load_generator(path)


def test_a_zip_that_is_not_a_keras_model_says_so(tmp_path: Path) -> None:
    path = tmp_path / "generator.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "a zip, but no model inside")
    with pytest.raises(GansrError, match=re.escape(f"{path}: not a loadable Keras generator")):
        load_generator(path)


def test_a_generator_with_a_lambda_layer_is_refused(lambda_model_file: Path) -> None:
    # Safe mode: a Lambda layer would run code stored in the archive.
    refusal = re.escape(f"{lambda_model_file}: not a loadable Keras generator") + ".*Lambda"
    with pytest.raises(GansrError, match=refusal):
        load_generator(lambda_model_file)


def test_a_saved_generator_reloads_and_upscales_identically(tmp_path: Path, random_generator) -> None:
    model = random_generator(scale=4)
    model.save(tmp_path / "generator.keras")
    image = np.random.default_rng(1).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    reloaded = load_generator(str(tmp_path / "generator.keras"))  # str paths work too
    np.testing.assert_array_equal(Upscaler(reloaded)(image), Upscaler(model)(image))


def test_upscaler_returns_uint8_at_scale_for_any_size_with_one_trace() -> None:
    upscale = Upscaler(build_generator(4, channels=4, blocks=1))
    rng = np.random.default_rng(2)
    for height, width in [(5, 7), (8, 3)]:
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        sr = upscale(image)
        assert sr.shape == (height * 4, width * 4, 3) and sr.dtype == np.uint8
        # An untrained generator is exactly the baseline it must beat.
        np.testing.assert_array_equal(sr, bicubic_upscale(image, 4))
    assert upscale._forward.experimental_get_tracing_count() == 1


@pytest.mark.parametrize(("scale", "size"), [(2, (5, 7)), (3, (4, 4)), (4, (1, 9))])
def test_bicubic_upscale_shape_and_type(scale: int, size: tuple[int, int]) -> None:
    image = np.random.default_rng(scale).integers(0, 256, (*size, 3), dtype=np.uint8)
    out = bicubic_upscale(image, scale)
    assert out.shape == (size[0] * scale, size[1] * scale, 3) and out.dtype == np.uint8


def test_bicubic_upscale_keeps_a_flat_image_flat() -> None:
    flat = np.full((4, 6, 3), (10, 128, 250), dtype=np.uint8)
    np.testing.assert_array_equal(bicubic_upscale(flat, 4), np.full((16, 24, 3), (10, 128, 250), np.uint8))


@pytest.fixture(scope="module")
def seamless(random_generator: Callable[..., keras.Model]) -> tuple[keras.Model, np.ndarray, np.ndarray]:
    """A random-weight ×3 generator, an odd-sized image and its untiled upscale."""
    model = random_generator(seed=3, scale=3, channels=6, blocks=2)
    image = np.random.default_rng(3).integers(0, 256, (37, 51, 3), dtype=np.uint8)
    return model, image, Upscaler(model, tile=1000)(image)


def record_windows(upscale: Upscaler, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """The shapes of the inputs ``upscale`` runs its forward pass on, from now on."""
    shapes: list[tuple[int, ...]] = []
    run = upscale._run
    monkeypatch.setattr(upscale, "_run", lambda lr, style: shapes.append(lr.shape) or run(lr, style))
    return shapes


def test_receptive_radius_follows_the_documented_rule(random_generator: Callable[..., keras.Model]) -> None:
    for blocks in (1, 2, 6):
        assert receptive_radius(random_generator(blocks=blocks)) == 2 * blocks + 3


@pytest.mark.parametrize("tile", [4, 11, 16, 36])  # none divides 37 × 51; 4 is smaller than the overlap
def test_tiled_upscale_equals_untiled(seamless, tile: int) -> None:
    model, image, untiled = seamless
    tiled = Upscaler(model, tile=tile, overlap=receptive_radius(model))(image)
    assert tiled.shape == untiled.shape == (111, 153, 3)
    assert np.abs(tiled.astype(int) - untiled).max() <= 1  # within 1/255


def test_too_little_overlap_shows_seams_and_warns(seamless, caplog: pytest.LogCaptureFixture) -> None:
    model, image, untiled = seamless
    with caplog.at_level(logging.WARNING, logger="gansr"):
        tiled = Upscaler(model, tile=11, overlap=2)(image)
    assert np.abs(tiled.astype(int) - untiled).max() > 1  # so the equality above is no accident
    assert "below the generator's receptive radius 7" in caplog.text


def test_tiles_run_one_window_at_a_time(seamless, monkeypatch: pytest.MonkeyPatch) -> None:
    model, image, untiled = seamless
    upscale = Upscaler(model, tile=8, overlap=7)
    windows = record_windows(upscale, monkeypatch)
    assert np.abs(upscale(image).astype(int) - untiled).max() <= 1
    # ⌈37/8⌉ × ⌈51/8⌉ windows of (8 + 2·7)², memory bounded by the tile, not the image
    assert windows == [(1, 22, 22, 3)] * (5 * 7)


def test_fitted_tiles_take_the_fewest_pixels_of_windows_that_fit_the_budget() -> None:
    # 960×540 in windows of at most 240 k pixels: three full-height strips of 352 (1.1× the image's pixels),
    # where square 256 cores would run 4 × 3 windows of 288² (1.9×).
    assert fitted_tiles(540, 960, 16, 240_000) == (540, 320)
    assert fitted_tiles(1080, 1920, 16, 240_000) == (540, 384)  # 2 × 5 windows of 572 × 416
    assert fitted_tiles(540, 960, 16, 540 * 960) == (540, 960)  # fits: one pass
    # Nothing fits: the smallest cores of at least MIN_TILE (64), 540 = 8 rows of 68 by 960 = 15 columns of 64.
    assert fitted_tiles(540, 960, 16, 1000) == (68, tiling.MIN_TILE)


def test_the_memory_budget_sizes_the_windows(random_generator: Callable[..., keras.Model],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    model = random_generator(scale=4)
    per_pixel = inference.bytes_per_lr_pixel(model)
    upscale = Upscaler(model, max_memory=20)
    assert upscale.max_window == 20 * 2**20 // per_pixel
    windows = record_windows(upscale, monkeypatch)
    image = np.random.default_rng(1).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    assert np.abs(upscale(image).astype(int) - Upscaler(model, tile=1000)(image)).max() <= 1
    assert len(windows) > 1 and all(h * w <= upscale.max_window for _, h, w, _ in windows)
    monkeypatch.setattr(tiling.psutil, "virtual_memory", lambda: type("Memory", (), {"available": 2**40}))
    assert tiling.memory_budget() == tiling.DEFAULT_MAX_MEMORY_MIB * 2**20  # however much RAM is free
    monkeypatch.setattr(tiling.psutil, "virtual_memory", lambda: type("Memory", (), {"available": 2**30}))
    assert tiling.memory_budget() == 2**28  # a quarter of free RAM, if that is less


def test_a_budget_below_the_smallest_window_is_refused(random_generator: Callable[..., keras.Model]) -> None:
    model = random_generator(scale=4, blocks=6)
    with pytest.raises(ConfigError, match=r"max_memory 1 MiB is below the \d+ MiB this generator needs"):
        Upscaler(model, max_memory=1)
    with pytest.raises(ConfigError, match="max_memory must be > 0 MiB"):
        Upscaler(model, max_memory=0)


def test_an_image_that_fits_one_window_runs_in_one_pass(random_generator,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    upscale = Upscaler(random_generator(), tile=64, overlap=16)
    windows = record_windows(upscale, monkeypatch)
    upscale(np.zeros((96, 70, 3), np.uint8))  # 64 + 2·16 = 96: no tiling
    assert windows == [(1, 96, 70, 3)]


def test_bad_tile_or_overlap_is_a_config_error(random_generator) -> None:
    with pytest.raises(ConfigError, match="tile must be > 0"):
        Upscaler(random_generator(), tile=0)
    with pytest.raises(ConfigError, match="overlap must be >= 0"):
        Upscaler(random_generator(), overlap=-1)


def test_a_styled_generator_upscales_in_the_chosen_style_tile_by_tile(random_generator) -> None:
    model = random_generator(seed=5, styles=("ink", "oil"))
    plain_radius = receptive_radius(random_generator(seed=5))
    # The style branch adds the reach of its own layers: its convolutions and the style swap's neighbourhoods.
    assert receptive_radius(model) > plain_radius
    image = np.random.default_rng(5).integers(0, 256, (70, 75, 3), dtype=np.uint8)
    none, ink, oil = (Upscaler(model, tile=1000, style=style)(image) for style in (0, 1, 2))
    assert not np.array_equal(none, ink) and not np.array_equal(ink, oil)
    upscale = Upscaler(model, tile=8, style=2)  # the default overlap: the receptive radius, at least 16
    assert upscale.overlap == max(tiling.DEFAULT_OVERLAP, receptive_radius(model))
    assert upscale.tile + 2 * upscale.overlap < 70
    assert np.abs(upscale(image).astype(int) - oil).max() <= 1
    with pytest.raises(ConfigError, match=re.escape("style must be 0 (none) to 2 for this generator, got 3")):
        Upscaler(model, style=3)


def test_the_style_swap_holds_its_match_scores_in_the_memory_estimate(random_generator) -> None:
    plain, styled = random_generator(seed=6), random_generator(seed=6, styles=("ink",))
    swap = next(layer for layer in styled.layers if hasattr(layer, "lr_floats"))
    assert inference.bytes_per_lr_pixel(styled) >= inference.bytes_per_lr_pixel(plain) + 4 * swap.lr_floats()

def test_windows_keep_one_shape_shifted_inwards_at_the_edge() -> None:
    windows = axis_windows(100, 16, 5)
    assert [core for core, *_ in windows] == list(range(0, 100, 16))
    assert all(last - first == 26 for *_, first, last in windows)
    assert windows[-1] == (96, 100, 74, 100)
    assert axis_windows(20, 16, 5) == [(0, 20, 0, 20)]  # fits one window: one core


LOAD_IN_A_NEW_PROCESS = """
import sys
from gansr.inference import load_generator
assert not any(name.startswith("gansr.style") for name in sys.modules)  # the loader knows no style code
print(load_generator(sys.argv[1]).get_layer("style_or_sr").names)
"""


@pytest.mark.slow  # a second process importing TensorFlow
def test_the_loader_reads_a_styled_generator_importing_the_modules_its_file_names(random_generator,
                                                                                    tmp_path: Path) -> None:
    path = tmp_path / "styled.keras"
    random_generator(seed=8, styles=("ink", "oil")).save(path)
    result = subprocess.run([sys.executable, "-c", LOAD_IN_A_NEW_PROCESS, str(path)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['ink', 'oil']"
