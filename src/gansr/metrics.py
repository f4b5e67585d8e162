"""Image-quality metrics with the SR literature's protocol.

PSNR and SSIM are measured on the luma (Y) channel of ITU-R BT.601 as
MATLAB's ``rgb2ycbcr`` defines it, after cropping ``scale`` pixels from each
border, on images quantised to 8 bits, as in EDSR, ESRGAN and BasicSR's tables.
PSNR rewards blur over misplaced detail, so :func:`detail_ratio` measures
how much fine detail an output has at all, relative to the HR image,
:func:`periodic_artifact` how strong a grid at the sub-pixel period it
carries, and :func:`streak_excess` how much finer periodic detail along
rows or columns it has than the HR image.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from scipy.ndimage import uniform_filter

# Bands of fine detail for streak_excess: 0.25 to 0.5 cycle/pixel (periods of 2 to 4 pixels), 1/64 wide.
STREAK_BANDS = np.linspace(0.25, 0.5, 17)
# BT.601 luma for RGB in [0, 1], giving Y in [16, 235] (MATLAB rgb2ycbcr).
Y_WEIGHTS = np.array([65.481, 128.553, 24.966])
Y_OFFSET = 16.0


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """Y channel (float64, [16, 235]) of an H×W×3 uint8 RGB image."""
    return image.astype(np.float64) @ (Y_WEIGHTS / 255.0) + Y_OFFSET


def crop_border(image: np.ndarray, border: int) -> np.ndarray:
    """Drop ``border`` pixels on every side (the literature crops ``scale``)."""
    return image[border:-border, border:-border] if border else image


def y_psnr(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    """PSNR in dB between the Y channels of two uint8 RGB images."""
    _check_pair(sr, hr)
    mse = np.mean((crop_border(rgb_to_y(sr), border) - crop_border(rgb_to_y(hr), border)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def y_ssim(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    """SSIM (11×11 Gaussian window, σ = 1.5; Wang et al. 2004) on the Y channel."""
    _check_pair(sr, hr)
    y_sr = crop_border(rgb_to_y(sr), border)[None, ..., None]
    y_hr = crop_border(rgb_to_y(hr), border)[None, ..., None]
    return float(tf.image.ssim(tf.constant(y_sr), tf.constant(y_hr), max_val=255.0)[0])


def detail_ratio(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    """RMS of the Y channel's Laplacian in ``sr`` over that in ``hr``: 1 = as much fine detail as HR.

    Blurry outputs (bicubic, L1-trained) score well below 1; outputs that
    invent texture score near or above it, right or wrong: read it next to PSNR.
    """
    _check_pair(sr, hr)
    return _laplacian_rms(crop_border(rgb_to_y(sr), border)) / _laplacian_rms(crop_border(rgb_to_y(hr), border))


def _laplacian_rms(y: np.ndarray) -> float:
    laplacian = (y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:]) - 4 * y[1:-1, 1:-1]
    return float(np.sqrt(np.mean(laplacian**2)))


def periodic_artifact(image: np.ndarray, period: int, border: int = 0) -> float:
    """RMS, in grey levels of Y, of the pattern that repeats every ``period`` pixels in both axes.

    Sub-pixel upsampling by ``s`` draws each of the s×s output phases with
    its own filter, so an uneven generator lays a grid of period ``s`` over
    the whole image (the checkerboard artefact, Odena et al. 2016). Removing
    a ``period``×``period`` box average keeps any such pattern intact (the
    box averages it to its mean) while it removes the image's smooth content;
    averaging what is left over every pixel of the same phase then cancels
    the image's own detail and leaves the grid. Natural images score a few
    hundredths; a ±2 grey-level grid scores 2.
    """
    y = crop_border(rgb_to_y(image), border)
    height, width = (n // period * period for n in y.shape)
    y = y[:height, :width]
    residual = y - uniform_filter(y, size=period, mode="reflect")
    phases = residual.reshape(height // period, period, width // period, period).mean(axis=(0, 2))
    return float(np.sqrt(np.mean((phases - phases.mean()) ** 2)))


def streak_excess(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    """dB by which ``sr``'s strongest band of fine detail across rows or across columns exceeds ``hr``'s.

    A generator that draws streaks, a fine grating along one direction at a
    period other than the sub-pixel one :func:`periodic_artifact` checks,
    puts its energy into a narrow band of the spectrum across them. For each
    direction the Y channel's power spectrum across the lines (Hann window,
    averaged over the lines) is summed in the :data:`STREAK_BANDS`, and each
    band is compared with HR's; the largest ratio is returned. HR itself
    scores 0 dB and blur well below; an output with more energy than HR in
    any one band, as a grating or noise gives, scores above 0.
    """
    _check_pair(sr, hr)
    y_sr, y_hr = (crop_border(rgb_to_y(image), border) for image in (sr, hr))
    excess = [10 * np.log10((_band_power(y_sr, axis) + 1e-9) / (_band_power(y_hr, axis) + 1e-9)) for axis in (0, 1)]
    return float(np.max(excess))


def _band_power(y: np.ndarray, axis: int) -> np.ndarray:
    """Power of ``y``'s variation along ``axis`` in each of the :data:`STREAK_BANDS`."""
    lines = np.moveaxis(y, axis, -1)
    lines = (lines - lines.mean(axis=-1, keepdims=True)) * np.hanning(lines.shape[-1])
    power = np.mean(np.abs(np.fft.rfft(lines, axis=-1)) ** 2, axis=0)
    band = np.digitize(np.fft.rfftfreq(lines.shape[-1]), STREAK_BANDS) - 1
    return np.array([power[band == b].sum() for b in range(len(STREAK_BANDS) - 1)])


def _check_pair(sr: np.ndarray, hr: np.ndarray) -> None:
    if sr.shape != hr.shape:
        raise ValueError(f"image shapes differ: {sr.shape} vs {hr.shape}")
