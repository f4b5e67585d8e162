"""Cheap estimates of an input photo's noise and JPEG blocking, for ``gansr upscale``'s model hint.

The default generators learned from clean bicubic downscales and sharpen
what they see, noise and JPEG blocks included; the ``real`` generator cleans
them. Two estimates on the luma of the photo's centre decide whether to say so:

- **Noise** (Immerkær, "Fast noise variance estimation", CVIU 1996): the mean
  absolute response to a mask that cancels every plane and edge to second
  order, scaled to a Gaussian σ, over the flattest half of the pixels (by
  Sobel gradient), where the image's own detail adds least. Picking the
  flattest half also picks where the noise happened to be weak, so a σ of
  10 grey levels reads about 7; the threshold is set on that scale.
- **Blocking**: the mean step across JPEG's 8-pixel block borders over the
  mean step elsewhere, in rows and columns. About 1 for an unblocked photo;
  JPEG quality 50 reads 1.2 to 1.5, quality 30 1.3 to 1.8.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

NOISE_MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
FLAT_SHARE = 0.5  # the flattest share of pixels the noise is measured on
BLOCK = 8  # JPEG's block side
MEASURED_SIDE = 1024  # the centre crop measured, so a 12 Mpx photo costs what a 1 Mpx one does
NOISY_SIGMA = 6.0  # estimated σ (grey levels) from which an input counts as noisy: a true σ of about 9
BLOCKY = 1.3  # blocking from which an input counts as JPEG-blocked: quality 50 and below, mostly
LUMA = np.array([0.299, 0.587, 0.114])


def noise_sigma(image: np.ndarray) -> float:
    """The noise σ (grey levels, on a 0–255 scale) of an H×W×3 ``uint8`` image's flat areas."""
    y = _luma(image)
    if min(y.shape) < 3:
        return 0.0
    response = np.abs(ndimage.convolve(y, NOISE_MASK, mode="reflect"))[1:-1, 1:-1]
    gradient = np.hypot(ndimage.sobel(y, 0), ndimage.sobel(y, 1))[1:-1, 1:-1]
    flat = gradient <= np.quantile(gradient, FLAT_SHARE)
    return float(math.sqrt(math.pi / 2) / 6 * response[flat].mean())


def blocking(image: np.ndarray) -> float:
    """How much larger the steps across 8-pixel block borders are than elsewhere (1: no blocking)."""
    y = _luma(image)
    ratios = []
    for rows in (y, y.T):
        steps = np.abs(np.diff(rows, axis=1)).mean(axis=0)
        border = np.arange(steps.size) % BLOCK == BLOCK - 1
        if border.any() and (~border).any() and steps[~border].mean() > 0:
            ratios.append(steps[border].mean() / steps[~border].mean())
    return float(np.mean(ratios)) if ratios else 1.0


def real_photo_hint(image: np.ndarray) -> str | None:
    """One line saying that ``--model real`` suits ``image``, if it looks noisy or JPEG-blocked; else None."""
    found = []
    if (sigma := noise_sigma(image)) >= NOISY_SIGMA:
        found.append(f"noisy (flat-area noise σ ≈ {sigma:.0f} grey levels)")
    if (blocks := blocking(image)) >= BLOCKY:
        found.append(f"JPEG-blocked (block-border steps {blocks:.2f}× the others)")
    if not found:
        return None
    return f"looks {' and '.join(found)}: --model real cleans such photos instead of sharpening what it sees"


def _luma(image: np.ndarray) -> np.ndarray:
    """BT.601 luma of the image's centre crop, at most MEASURED_SIDE square; the crop starts on a block border."""
    height, width = image.shape[:2]
    top = max(0, (height - MEASURED_SIDE) // 2 // BLOCK * BLOCK)
    left = max(0, (width - MEASURED_SIDE) // 2 // BLOCK * BLOCK)
    crop = image[top:top + MEASURED_SIDE, left:left + MEASURED_SIDE, :3]
    return crop.astype(np.float64) @ LUMA
