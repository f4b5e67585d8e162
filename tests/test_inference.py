"""Loading a generator and running it (and the bicubic baseline) on whole images."""

from __future__ import annotations

import re
from pathlib import Path

import keras
import numpy as np
import pytest

from gansr.errors import GansrError
from gansr.inference import Upscaler, bicubic_upscale, load_generator
from gansr.models.generator import build_generator


def trained_looking_generator() -> keras.Model:
    """Random non-zero weights, so a weight that failed to reload would show in the output."""
    model = build_generator(4, channels=4, blocks=1)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.05, w.shape).astype("float32") for w in model.get_weights()])
    return model


def test_a_missing_generator_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "models" / "gan" / "generator.keras"
    with pytest.raises(GansrError, match=re.escape(f"no generator at {missing}")):
        load_generator(missing)
    with pytest.raises(GansrError, match="no generator at"):
        load_generator(tmp_path)  # a folder is not a generator file


def test_a_corrupt_generator_file_names_the_path(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.keras"
    garbage.write_bytes(b"this is not a zip archive")
    with pytest.raises(GansrError, match=re.escape(f"{garbage}: not a loadable Keras generator")):
        load_generator(garbage)


def test_a_truncated_generator_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "generator.keras"
    trained_looking_generator().save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a copy cut short
    with pytest.raises(GansrError, match=re.escape(f"{path}: not a loadable Keras generator")):
        load_generator(path)


def test_a_saved_generator_reloads_and_upscales_identically(tmp_path: Path) -> None:
    model = trained_looking_generator()
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
