"""Upscaling whole images one window at a time, whatever runs the generator (TensorFlow or LiteRT).

A large LR image is cut into ``tile``×``tile`` cores. Each core runs with
``overlap`` LR pixels of real image context on every side (a window), and
only the core's part of the window's output is kept. An output pixel depends
only on LR pixels within the generator's receptive radius, so with
``overlap`` at least that radius the stitched image equals the untiled one
up to float rounding. By default the overlap is that radius, at least
:data:`DEFAULT_OVERLAP`; a smaller one is logged as a warning.

Without an explicit ``tile``, the largest tile whose window fits a quarter
of the RAM available now is used (:func:`auto_tile`); an image no larger
than one window runs in a single pass. NumPy only: the light runtime's
``gansr upscale`` imports no TensorFlow.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence

import numpy as np
import psutil

from gansr.errors import ConfigError

log = logging.getLogger("gansr")

DEFAULT_OVERLAP = 16  # LR pixels; ≥ 2·6 + 3, the receptive radius of the default 6-block generator
MEMORY_SHARE = 0.25  # of the RAM available when the upscaler is made
# LR pixels: below 64 the overlap dominates the work; at 1024 it adds only 6% (1056² vs 1024²).
MIN_TILE, MAX_TILE = 64, 1024


def memory_budget() -> int:
    """Bytes one forward pass may use: :data:`MEMORY_SHARE` of the RAM available now."""
    return int(psutil.virtual_memory().available * MEMORY_SHARE)


def auto_tile(bytes_per_lr_pixel: int, overlap: int = DEFAULT_OVERLAP, budget: int | None = None) -> int:
    """The largest tile side (LR pixels) whose window fits ``budget`` bytes, within [64, 1024]."""
    budget = memory_budget() if budget is None else budget
    window = math.isqrt(max(budget, 0) // bytes_per_lr_pixel)
    return min(max(window - 2 * overlap, MIN_TILE), MAX_TILE)


class TiledUpscaler:
    """Upscale uint8 RGB images, one window at a time when they are larger than one window.

    A runtime supplies :meth:`_run`, one forward pass of 1×h×w×3 uint8 to
    1×(s·h)×(s·w)×3 uint8, and describes its generator: ``scale``, the names
    of its styles (none for a plain generator), its receptive radius and its
    peak memory per LR pixel. All windows of an image have the same shape
    (edge windows shift inwards rather than shrink), so whatever a runtime
    sets up for a shape serves every window. A styled generator runs in
    style ``style`` (0 = none).
    """

    def __init__(self, scale: int, style_names: Sequence[str], radius: int, bytes_per_lr_pixel: int,
                 tile: int | None = None, overlap: int | None = None, style: int = 0) -> None:
        if tile is not None and tile <= 0:
            raise ConfigError(f"tile must be > 0 LR pixels, got {tile}")
        if overlap is not None and overlap < 0:
            raise ConfigError(f"overlap must be >= 0 LR pixels, got {overlap}")
        self.scale = scale
        self.style_names = list(style_names)
        self.styles = len(self.style_names)
        self.style = self._checked_style(style)
        overlap = max(DEFAULT_OVERLAP, radius) if overlap is None else overlap
        if overlap < radius:
            log.warning("overlap %d is below the generator's receptive radius %d: tile seams may show",
                        overlap, radius)
        self.overlap = overlap
        self.bytes_per_lr_pixel = bytes_per_lr_pixel
        self.tile = tile or auto_tile(bytes_per_lr_pixel, overlap)

    def style_index(self, style: str | int) -> int:
        """A style given by name or number (1..N) as the generator's style index; 0/""/"none" = no style."""
        names, style = self.style_names, str(style)
        if style in ("", "none", "0"):
            return 0
        if not names:
            raise ConfigError(f"style {style}: this generator has no styles (use the style generator)")
        if style.isdigit() and 1 <= int(style) <= len(names):
            return int(style)
        if style in names:
            return names.index(style) + 1
        raise ConfigError(f"style {style}: unknown; this generator knows {', '.join(names)} (or 1-{len(names)})")

    def _checked_style(self, style: int) -> int:
        if not 0 <= style <= self.styles:
            raise ConfigError(f"style must be 0 (none) to {self.styles} for this generator, got {style}")
        return style

    def __call__(self, image: np.ndarray, style: int | None = None) -> np.ndarray:
        """H×W×3 uint8 → (s·H)×(s·W)×3 uint8, in ``style`` (default: the one given at construction)."""
        style = self.style if style is None else self._checked_style(style)
        height, width = image.shape[:2]
        rows = axis_windows(height, self.tile, self.overlap)
        cols = axis_windows(width, self.tile, self.overlap)
        if len(rows) == len(cols) == 1:
            return self._run(image[None], style)[0]
        s = self.scale
        sr = np.empty((height * s, width * s, 3), np.uint8)
        for (y0, y1, wy, wy1), (x0, x1, wx, wx1) in itertools.product(rows, cols):
            out = self._run(np.ascontiguousarray(image[None, wy:wy1, wx:wx1]), style)[0]
            sr[y0 * s : y1 * s, x0 * s : x1 * s] = out[(y0 - wy) * s : (y1 - wy) * s, (x0 - wx) * s : (x1 - wx) * s]
        return sr

    def _run(self, lr: np.ndarray, style: int) -> np.ndarray:
        """1×H×W×3 uint8 → 1×(s·H)×(s·W)×3 uint8 in one forward pass of the generator."""
        raise NotImplementedError


def axis_windows(length: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(core start, core end, window start, window end) along one axis.

    Every window is ``tile + 2·overlap`` long: a window is clamped inside the
    image instead of cut at its edge, so the windows keep one shape and a
    core near the edge gets more context, not less. A length that fits one
    window is one core: splitting it would only repeat work.
    """
    window = tile + 2 * overlap
    if length <= window:
        return [(0, length, 0, length)]
    windows = []
    for start in range(0, length, tile):
        first = min(max(start - overlap, 0), length - window)
        windows.append((start, min(start + tile, length), first, first + window))
    return windows
