"""NIQE, a no-reference image quality score (Mittal, Soundararajan & Bovik 2013): lower is more natural.

A photo's local statistics are regular: its mean-subtracted, contrast-
normalised luminance (MSCN) follows a generalised Gaussian, and products of
neighbouring MSCN values follow asymmetric ones, whatever the content.
Noise, blur, JPEG blocks and generated artefacts all bend those shapes.
NIQE fits them per patch (18 features at each of two scales), models the
features of pristine photos as a multivariate Gaussian, and scores an image
by the distance between its own features' Gaussian and the pristine one.

The pristine model is fitted here on clean photos of the user's own data
(the evaluate stage uses the training split's HR images), where the
original fits 125 photos it ships. No maintained package installs here
without PyTorch or a compiler (piq and pyiqa need PyTorch; brisque needs
libsvm built from source and OpenCV), so the score is written out with
NumPy and SciPy, following the paper: a 7×7 Gaussian window of σ 7/6,
moment-matching fits, two scales. Where the paper keeps the pristine
patches of at least 75 % of the sharpest one's contrast, over many large
photos, this keeps those of at least 40 %, so that a few small photos still
give more patches than features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from scipy.special import gamma

from gansr.metrics import rgb_to_y

PATCH = 48  # pixels: the side of a patch whose statistics make one feature vector
SHARPNESS_SHARE = 0.4  # pristine patches kept: those at least this share of the sharpest one's contrast
WINDOW_SIGMA = 7 / 6  # the paper's Gaussian window: σ 7/6, 7×7 pixels (radius 3)
WINDOW_RADIUS = 3
SHAPES = np.arange(0.2, 10.0, 0.001)  # candidate generalised-Gaussian shapes for the moment-matching fits
# Ratio (E|x|)² / E[x²] of a generalised Gaussian of each shape: the fits look the shape up in it.
_RATIOS = gamma(2 / SHAPES) ** 2 / (gamma(1 / SHAPES) * gamma(3 / SHAPES))


@dataclass(frozen=True)
class PristineModel:
    """The multivariate Gaussian of pristine photos' patch features."""

    mean: np.ndarray
    covariance: np.ndarray
    patches: int


def fit_pristine(images: list[np.ndarray]) -> PristineModel:
    """The pristine model of RGB uint8 ``images``: the features of their sharp patches.

    A patch is sharp when its luminance contrast (standard deviation) is at
    least :data:`SHARPNESS_SHARE` of the image's sharpest patch's; flat sky
    and out-of-focus background are left out.
    Raises ValueError if there are no more sharp patches than features,
    too few to estimate their covariance.
    """
    kept = []
    for image in images:
        y = _whole_patches(rgb_to_y(image))
        contrast = np.array([patch.std() for patch in _patches(y, PATCH)])
        if contrast.size:
            kept.append(_features(y)[contrast >= SHARPNESS_SHARE * contrast.max()])
    features = np.concatenate(kept) if kept else np.empty((0, 36))
    if len(features) <= features.shape[1]:
        raise ValueError(f"NIQE needs more sharp {PATCH}² patches than its {features.shape[1]} features, got "
                         f"{len(features)}: use more or larger pristine images")
    return PristineModel(features.mean(axis=0), np.cov(features, rowvar=False), len(features))


def niqe(image: np.ndarray, pristine: PristineModel) -> float:
    """NIQE of an RGB uint8 ``image`` against ``pristine``: 0 for pristine statistics, higher for less natural."""
    features = _features(_whole_patches(rgb_to_y(image)))
    if len(features) < 2:
        raise ValueError(f"NIQE needs an image of at least {PATCH}×{2 * PATCH} pixels, got {image.shape[:2]}")
    difference = features.mean(axis=0) - pristine.mean
    pooled = (pristine.covariance + np.cov(features, rowvar=False)) / 2
    return float(np.sqrt(difference @ np.linalg.pinv(pooled) @ difference))


def _whole_patches(y: np.ndarray) -> np.ndarray:
    """``y`` cropped to whole patches, so that its half-resolution patches lie on the same grid."""
    return y[: y.shape[0] // PATCH * PATCH, : y.shape[1] // PATCH * PATCH]


def _features(y: np.ndarray) -> np.ndarray:
    """[patches, 36] of a luminance image cropped to whole patches: 18 features at full resolution, 18 at half."""
    half = np.asarray(Image.fromarray(y.astype(np.float32)).resize(
        (y.shape[1] // 2, y.shape[0] // 2), Image.Resampling.BICUBIC), np.float64)
    full = [_patch_features(p) for p in _patches(_mscn(y), PATCH)]
    coarse = [_patch_features(p) for p in _patches(_mscn(half), PATCH // 2)]
    return np.array([np.concatenate(pair) for pair in zip(full, coarse, strict=True)]).reshape(len(full), -1)


def _mscn(y: np.ndarray) -> np.ndarray:
    """Mean-subtracted, contrast-normalised luminance."""
    window = {"sigma": WINDOW_SIGMA, "radius": WINDOW_RADIUS, "mode": "nearest"}
    mean = gaussian_filter(y, **window)
    deviation = np.sqrt(np.abs(gaussian_filter(y * y, **window) - mean**2))
    return (y - mean) / (deviation + 1.0)


def _patches(image: np.ndarray, size: int) -> list[np.ndarray]:
    """The whole ``size``² blocks of ``image``, row by row."""
    rows, cols = image.shape[0] // size, image.shape[1] // size
    return [image[r * size:(r + 1) * size, c * size:(c + 1) * size] for r in range(rows) for c in range(cols)]


def _patch_features(mscn: np.ndarray) -> np.ndarray:
    """18 features of one MSCN patch.

    The GGD fit of its values (shape, variance), then, for the horizontal,
    vertical and both diagonal neighbours, the AGGD fit of the products of
    neighbouring values (shape, mean, left and right variance).
    """
    products = (mscn[:, :-1] * mscn[:, 1:], mscn[:-1, :] * mscn[1:, :],
                mscn[:-1, :-1] * mscn[1:, 1:], mscn[:-1, 1:] * mscn[1:, :-1])
    return np.array([*_fit_ggd(mscn.ravel()), *(v for p in products for v in _fit_aggd(p.ravel()))])


def _fit_ggd(values: np.ndarray) -> tuple[float, float]:
    """Moment-matching fit of a zero-mean generalised Gaussian: (shape, variance)."""
    variance = float(np.mean(values**2))
    ratio = np.mean(np.abs(values)) ** 2 / variance if variance > 0 else 0.0
    return float(SHAPES[np.argmin(np.abs(_RATIOS - ratio))]), variance


def _fit_aggd(values: np.ndarray) -> tuple[float, float, float, float]:
    """Moment-matching fit of an asymmetric generalised Gaussian: (shape, mean, left and right variance)."""
    left, right = values[values < 0], values[values >= 0]
    left_sigma = np.sqrt(np.mean(left**2)) if left.size else 0.0
    right_sigma = np.sqrt(np.mean(right**2)) if right.size else 0.0
    if left_sigma == 0 or right_sigma == 0:
        return 2.0, 0.0, float(left_sigma**2), float(right_sigma**2)
    asymmetry = left_sigma / right_sigma
    r_hat = np.mean(np.abs(values)) ** 2 / np.mean(values**2)
    r_normalised = r_hat * (asymmetry**3 + 1) * (asymmetry + 1) / (asymmetry**2 + 1) ** 2
    shape = float(SHAPES[np.argmin(np.abs(_RATIOS - r_normalised))])
    scale = np.sqrt(gamma(1 / shape) / gamma(3 / shape))
    mean = (right_sigma - left_sigma) * (gamma(2 / shape) / gamma(1 / shape)) / scale
    return shape, float(mean), float(left_sigma**2), float(right_sigma**2)
