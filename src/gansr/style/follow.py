"""Does a style follow the photo? Measures on the style residual that a fixed overlay fails.

The style residual of an output is what the style adds at fine scale:
styled − unstyled, minus its Gaussian blur of σ = :data:`BLUR_SIGMA` HR
pixels. A style drawn from the photo moves with it; a style layer laid over
the photo at fixed places (a tiled or blended style image, a double
exposure) stays where it is. Three measures tell them apart:

- shift: upscale an LR image and the same image shifted by ``d`` LR pixels.
  The second residual should correlate with the first shifted along
  (:data:`MIN_ALONG`) and not with the first left in place
  (:data:`MAX_IN_PLACE`);
- two photos: the residuals of two different photos should not correlate
  at the same positions (:data:`MAX_FIXED`);
- a pan: on frames panning ``step`` LR pixels each, the residual should move
  by ``step·scale`` HR pixels (phase correlation) and the styled frames
  should change, after the pan is undone, no more than the unstyled ones.

A border of :data:`MARGIN` LR pixels is left out of every comparison: there
a network sees its padding rather than the photo.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter
from skimage.registration import phase_cross_correlation

BLUR_SIGMA = 3.0  # HR pixels: the residual's coarser part, removed before comparing
MARGIN = 8  # LR pixels left out at every edge
MIN_ALONG = 0.8  # correlation with the first residual shifted along
MAX_IN_PLACE = 0.2  # correlation with the first residual left in place
MAX_FIXED = 0.1  # correlation between two photos' residuals at the same positions
EVEN_SHIFT, ODD_SHIFT = 16, 13  # LR pixels: a multiple of 4 HR pixels that no period of the output divides; an odd one
PAN_STEP, PAN_FRAMES = 2, 6  # LR pixels per frame, frames
MAX_PAN_ERROR = 0.5  # HR pixels between the residual's measured and true motion
MAX_EXTRA_FLICKER = 0.5  # grey levels of frame-to-frame change the style may add to the unstyled output's

# (LR image) -> its upscaled image: the unstyled generator, or one style (of the generator or a control).
Render = Callable[[np.ndarray], np.ndarray]


def fine_residual(styled: np.ndarray, unstyled: np.ndarray) -> np.ndarray:
    """What the style adds at fine scale: styled − unstyled minus its Gaussian blur (σ = BLUR_SIGMA), float64."""
    residual = styled.astype(np.float64) - unstyled.astype(np.float64)
    return residual - gaussian_filter(residual, (BLUR_SIGMA, BLUR_SIGMA, 0))


def correlation(a: np.ndarray, b: np.ndarray, margin: int) -> float:
    """Pearson correlation of two same-shaped arrays, ``margin`` pixels in from every edge; 0 if either is flat."""
    inner = (slice(margin, -margin or None), slice(margin, -margin or None))
    a, b = a[inner] - a[inner].mean(), b[inner] - b[inner].mean()
    norm = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / norm) if norm > 0 else 0.0


@dataclass(frozen=True)
class Shift:
    """A shift test's two correlations (see the module docstring)."""

    along: float
    in_place: float

    @property
    def follows(self) -> bool:
        """Whether the residual moved with the photo and did not stay where it was."""
        return self.along >= MIN_ALONG and self.in_place <= MAX_IN_PLACE


def shift_test(style: Render, unstyled: Render, lr: np.ndarray, shift: int, scale: int) -> Shift:
    """Upscale ``lr`` without its last ``shift`` columns and without its first: compare their residuals."""
    first, second = lr[:, :-shift], lr[:, shift:]
    residuals = [fine_residual(style(image), unstyled(image)) for image in (first, second)]
    moved = shift * scale  # the second image's column x shows the first's column x + moved
    margin = MARGIN * scale
    return Shift(correlation(residuals[0][:, moved:], residuals[1][:, :-moved], margin),
                 correlation(residuals[0], residuals[1], margin))


def fixed_pattern(residuals: list[np.ndarray], scale: int) -> float:
    """The largest correlation between two photos' residuals at the same positions (their common top-left part)."""
    height = min(r.shape[0] for r in residuals)
    width = min(r.shape[1] for r in residuals)
    crops = [r[:height, :width] for r in residuals]
    pairs = [(a, b) for i, a in enumerate(crops) for b in crops[i + 1 :]]
    return max((correlation(a, b, MARGIN * scale) for a, b in pairs), default=0.0)


@dataclass(frozen=True)
class Pan:
    """A pan test: how far the residual's measured motion is from the pan's, and the frame-to-frame change."""

    motion_error: float  # HR pixels, the largest over consecutive frames
    flicker: float  # grey levels, mean |frame − previous frame moved along|, styled
    flicker_unstyled: float

    @property
    def follows(self) -> bool:
        """Whether the style moved with the scene and flickered no more than the unstyled output."""
        return (self.motion_error <= MAX_PAN_ERROR
                and self.flicker <= self.flicker_unstyled + MAX_EXTRA_FLICKER)


def pan_test(style: Render, unstyled: Render, lr: np.ndarray, scale: int, step: int = PAN_STEP,
             frames: int = PAN_FRAMES) -> Pan:
    """Frames of ``lr`` panning ``step`` LR pixels to the right each: does the style move with them?"""
    width = lr.shape[1] - step * (frames - 1)
    clips = [lr[:, i * step : i * step + width] for i in range(frames)]
    plain = [unstyled(frame) for frame in clips]
    styled = [style(frame) for frame in clips]
    moved = step * scale
    errors, changes, plain_changes = [], [], []
    margin = MARGIN * scale
    inner = (slice(margin, -margin), slice(margin, -margin))
    for i in range(1, frames):
        before, after = (fine_residual(styled[j], plain[j]).mean(axis=-1)[margin:-margin, margin:-margin]
                         for j in (i - 1, i))
        if before.any() and after.any():  # else no style is drawn (the unstyled control): nothing could lag
            offset = phase_cross_correlation(before, after, upsample_factor=10)[0]
            errors.append(float(np.hypot(offset[0], offset[1] - moved)))
        for frames_of, out in ((styled, changes), (plain, plain_changes)):
            previous, current = (f.astype(np.float64) for f in (frames_of[i - 1], frames_of[i]))
            out.append(np.abs(current[:, :-moved][inner] - previous[:, moved:][inner]).mean())
    return Pan(max(errors, default=0.0), float(np.mean(changes)), float(np.mean(plain_changes)))
