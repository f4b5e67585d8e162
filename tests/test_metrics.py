"""Y-channel PSNR/SSIM with border crop, checked against hand-computed values."""

import numpy as np
import pytest
from scipy import ndimage
from skimage import data

from gansr.metrics import (
    crop_border,
    detail_ratio,
    periodic_artifact,
    rgb_to_y,
    streak_excess,
    y_psnr,
    y_ssim,
)


def test_y_channel_matches_matlab_rgb2ycbcr() -> None:
    # MATLAB: rgb2ycbcr(uint8([0 0 0; 255 255 255; 255 0 0])) → Y = 16, 235, 81.
    pixels = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], np.uint8)
    np.testing.assert_allclose(rgb_to_y(pixels)[0], [16.0, 235.0, 81.481], atol=1e-3)


def test_psnr_of_a_known_error() -> None:
    hr = np.full((20, 20, 3), 100, np.uint8)
    sr = hr.copy()
    sr[..., :] += 10  # Y changes by 10 · (65.481 + 128.553 + 24.966) / 255
    dy = 10 * (65.481 + 128.553 + 24.966) / 255
    assert y_psnr(sr, hr, border=0) == pytest.approx(10 * np.log10(255**2 / dy**2))
    assert y_psnr(hr, hr, border=0) == float("inf")


def test_border_is_excluded() -> None:
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    sr = hr.copy()
    sr[:4] = 0  # damage only the 4-pixel border band
    assert y_psnr(sr, hr, border=4) == float("inf")
    assert y_psnr(sr, hr, border=0) < 30
    assert crop_border(hr, 4).shape == (24, 24, 3)


def test_ssim_is_one_for_identical_and_lower_for_noisy() -> None:
    rng = np.random.default_rng(0)
    ramp = np.linspace(40, 200, 48)
    hr = np.repeat((ramp[:, None] + ramp[None, :] * 0.2)[..., None], 3, axis=2).astype(np.uint8)
    noisy = np.clip(hr + rng.normal(0, 25, hr.shape), 0, 255).astype(np.uint8)
    assert y_ssim(hr, hr, border=4) == pytest.approx(1.0)
    assert y_ssim(noisy, hr, border=4) < 0.9


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        y_psnr(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8), 0)


def test_detail_ratio_is_one_for_hr_below_for_blur_above_for_added_noise() -> None:
    rng = np.random.default_rng(1)
    texture = rng.integers(60, 196, (40, 40, 3))
    blurred = ((texture[:-1, :-1] + texture[1:, 1:] + texture[:-1, 1:] + texture[1:, :-1]) // 4).astype(np.uint8)
    hr = texture[:-1, :-1].astype(np.uint8)
    noisy = np.clip(hr + rng.normal(0, 30, hr.shape), 0, 255).astype(np.uint8)
    assert detail_ratio(hr, hr, border=2) == pytest.approx(1.0)
    assert detail_ratio(blurred, hr, border=2) < 0.6
    assert detail_ratio(noisy, hr, border=2) > 1.1


@pytest.mark.parametrize("period", [2, 3, 4])
def test_periodic_artifact_finds_an_injected_grid_of_two_grey_levels(period: int) -> None:
    photo = data.astronaut()  # 512×512 RGB, with sharp edges and fine texture
    rng = np.random.default_rng(period)
    cell = rng.choice([-2.0, 2.0], (period, period))
    cell -= cell.mean()  # a grid, not a brightness change
    cell *= 2.0 / np.sqrt(np.mean(cell**2))
    grid = np.tile(cell, (512 // period + 1, 512 // period + 1))[:512, :512]
    # Y moves by (65.481 + 128.553 + 24.966) / 255 per RGB grey level.
    with_grid = np.clip(photo + (grid / (219.0 / 255.0))[..., None], 0, 255).round().astype(np.uint8)
    clean = periodic_artifact(photo, period, border=period)
    found = periodic_artifact(with_grid, period, border=period)
    assert clean < 0.1  # the photo's own detail averages out over the phases
    assert found == pytest.approx(2.0, abs=0.25)


@pytest.mark.parametrize("axis", [0, 1])
def test_streak_excess_finds_a_grating_of_two_grey_levels_and_not_the_photo_or_blur(axis: int) -> None:
    photo = data.astronaut()
    # ±2 grey levels of Y with a period of 3 pixels, across rows (axis 0) or across columns.
    wave = 2.0 * np.sign(np.sin(2 * np.pi * np.arange(512) / 3 + 0.3))
    grating = (wave[:, None] if axis == 0 else wave[None, :]) * np.ones((512, 512))
    streaked = np.clip(photo + (grating / (219.0 / 255.0))[..., None], 0, 255).round().astype(np.uint8)
    blurred = ndimage.gaussian_filter(photo.astype(float), (1, 1, 0)).round().astype(np.uint8)
    assert streak_excess(photo, photo, border=4) == 0.0
    assert streak_excess(streaked, photo, border=4) > 3.0
    assert streak_excess(blurred, photo, border=4) < -10.0
    with pytest.raises(ValueError, match="shapes differ"):
        streak_excess(photo[:100], photo, border=4)
