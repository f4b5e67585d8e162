"""The noise and JPEG-blocking estimates behind `gansr upscale`'s hint, each with its controls."""

from __future__ import annotations

import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from gansr.input_quality import BLOCKY, NOISY_SIGMA, blocking, noise_sigma, real_photo_hint


def photo(name: str) -> np.ndarray:
    """A built-in photo at a quarter of its size, as a downscaled phone photo looks: detail, no noise."""
    image = Image.fromarray(getattr(skimage.data, name)())
    return np.asarray(image.resize((image.width // 4, image.height // 4), Image.Resampling.BICUBIC))


def noisy(image: np.ndarray, sigma: float) -> np.ndarray:
    noise = np.random.default_rng(0).normal(0, sigma, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


PHOTOS = ["astronaut", "coffee", "chelsea", "rocket"]


@pytest.mark.parametrize("name", PHOTOS)
def test_a_clean_photo_gets_no_hint(name: str) -> None:
    image = photo(name)
    assert noise_sigma(image) < NOISY_SIGMA / 2
    assert blocking(image) < 1.1
    assert real_photo_hint(image) is None


@pytest.mark.parametrize("name", PHOTOS)
def test_noise_is_measured_and_named(name: str) -> None:
    image = photo(name)
    estimates = [noise_sigma(noisy(image, sigma)) for sigma in (0, 5, 10, 20)]
    assert estimates == sorted(estimates) and estimates[-1] > 1.5 * estimates[1]
    assert estimates[2] >= NOISY_SIGMA  # σ 10 counts as noisy; σ 5 need not
    hint = real_photo_hint(noisy(image, 12))
    assert hint is not None and "noisy" in hint and "--model real" in hint


@pytest.mark.parametrize("name", PHOTOS)
def test_jpeg_blocking_is_measured_and_named(name: str) -> None:
    image = photo(name)
    readings = [blocking(jpeg(image, quality)) for quality in (95, 50, 30)]
    assert readings == sorted(readings) and readings[0] < 1.25
    assert readings[2] >= BLOCKY
    hint = real_photo_hint(jpeg(image, 30))
    assert hint is not None and "JPEG" in hint


def test_blocks_are_counted_on_the_jpeg_grid_only() -> None:
    """The same compressed photo moved by 4 pixels puts its block borders inside the counted blocks."""
    image = jpeg(photo("coffee"), 30)
    assert blocking(image[4:, 4:]) < 1.1 < BLOCKY <= blocking(image)


@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 9, 3), (8, 8, 3)])
def test_tiny_and_flat_images_give_no_hint(shape: tuple[int, int, int]) -> None:
    assert real_photo_hint(np.full(shape, 90, np.uint8)) is None
