"""NIQE: a no-reference score that ranks a clean photo above its blurred and noisy upscales."""

import numpy as np
import pytest
import skimage.data
from PIL import Image

from gansr.niqe import PATCH, PristineModel, fit_pristine, niqe


@pytest.fixture(scope="module")
def pristine() -> PristineModel:
    """Fitted on five built-in photos; the photos scored below are others."""
    return fit_pristine([skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee(),
                         skimage.data.rocket(), skimage.data.immunohistochemistry()])


def upscaled(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))


@pytest.mark.parametrize("name", ["retina", "motorcycle"])
def test_the_clean_photo_scores_best_then_bicubic_then_noisy_bicubic(pristine: PristineModel, name: str) -> None:
    hr = {"retina": skimage.data.retina()[100:500, 100:500],
          "motorcycle": skimage.data.stereo_motorcycle()[0][:400, :600]}[name]
    size = (hr.shape[1], hr.shape[0])
    lr = np.asarray(Image.fromarray(hr).resize((size[0] // 4, size[1] // 4), Image.Resampling.BICUBIC))
    noisy = np.clip(lr + np.random.default_rng(0).normal(0, 15, lr.shape), 0, 255).astype(np.uint8)
    scores = [niqe(image, pristine) for image in (hr, upscaled(lr, size), upscaled(noisy, size))]
    assert scores == sorted(scores) and scores[2] > scores[0] + 1  # positive control first, negative last


def test_the_score_needs_enough_pixels_and_patches(pristine: PristineModel) -> None:
    with pytest.raises(ValueError, match="at least 48×96 pixels"):
        niqe(np.zeros((PATCH, PATCH, 3), np.uint8), pristine)
    flat = np.full((2 * PATCH, 2 * PATCH, 3), 128, np.uint8)
    with pytest.raises(ValueError, match="more sharp 48² patches than its 36 features, got 4"):
        fit_pristine([flat])
