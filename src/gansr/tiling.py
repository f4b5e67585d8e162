"""Upscaling whole images one window at a time, whatever runs the generator (TensorFlow or LiteRT).

A large LR image is cut into cores. Each core runs with ``overlap`` LR
pixels of real image context on every side (a window), and only the core's
part of the window's output is kept. An output pixel depends only on LR
pixels within the generator's receptive radius, so with ``overlap`` at least
that radius the stitched image equals the untiled one up to float rounding.
By default the overlap is that radius, at least :data:`DEFAULT_OVERLAP`; a
smaller one is logged as a warning.

Without an explicit square ``tile``, each image gets the cores whose windows
fit the memory budget with the least work (:func:`fitted_tiles`): a
960×540 image under the default budget runs in three windows of 352×540,
not twelve square ones that overlap and spill past its edges. The budget is
``max_memory`` MiB, by default the smaller of :data:`DEFAULT_MAX_MEMORY_MIB`
and a quarter of the RAM available now; an image that fits one window runs
in a single pass. NumPy only: the light runtime's ``gansr upscale`` imports
no TensorFlow.
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
# A forward pass's memory by default: a 960×540 → 3840×2160 upscale on LiteRT then peaks under 1 GiB.
# (TensorFlow's runtime alone takes about 700 MiB more.)
DEFAULT_MAX_MEMORY_MIB = 768
MEMORY_SHARE = 0.25  # of the RAM available when the upscaler is made, if that is less
MIN_TILE = 64  # LR pixels: below this a core's overlap costs more work than the core itself


def memory_budget(max_memory_mib: int | None = None) -> int:
    """Bytes one forward pass may use: ``max_memory_mib``, else the default or a quarter of free RAM if less."""
    if max_memory_mib is not None:
        return max_memory_mib * 2**20
    return min(DEFAULT_MAX_MEMORY_MIB * 2**20, int(psutil.virtual_memory().available * MEMORY_SHARE))


def fitted_tiles(height: int, width: int, overlap: int, max_window: int) -> tuple[int, int]:
    """Core height and width (LR pixels) for an image: windows of at most ``max_window`` pixels, least work.

    Tries every number of rows, each with the fewest columns whose windows
    fit, cores balanced so the last is not a sliver; the work is the total
    area of the windows (ties: fewer windows). Cores are at least
    :data:`MIN_TILE` on a side: where no such window fits, the smallest one.
    """
    best: tuple[int, int, int, int, int] | None = None  # (excess, work, windows, core height, core width)
    for rows in range(1, max(1, height // MIN_TILE) + 1):
        core_height = math.ceil(height / rows)
        window_height = min(height, core_height + 2 * overlap)
        if rows > 1 and window_height == height:
            continue  # one window holds every row already
        widest = max_window // window_height
        columns = 1 if widest >= width else math.ceil(width / max(widest - 2 * overlap, MIN_TILE))
        core_width = math.ceil(width / columns)
        window_width = min(width, core_width + 2 * overlap)
        windows = len(axis_windows(height, core_height, overlap)) * len(axis_windows(width, core_width, overlap))
        area = window_height * window_width
        candidate = (max(0, area - max_window), windows * area, windows, core_height, core_width)
        best = candidate if best is None else min(best, candidate)
    assert best is not None
    return best[3], best[4]


class TiledUpscaler:
    """Upscale uint8 RGB images, one window at a time when they are larger than one window.

    A runtime supplies :meth:`_run`, one forward pass of 1×h×w×3 uint8 to
    1×(s·h)×(s·w)×3 uint8, and describes its generator: ``scale``, the names
    of its styles (none for a plain generator), its receptive radius and its
    peak memory per LR pixel. Without an explicit ``tile``, the cores are
    fitted to each image under a budget of ``max_memory`` MiB
    (:func:`memory_budget`). All windows of an image have the same shape
    (edge windows shift inwards rather than shrink), so whatever a runtime
    sets up for a shape serves every window. A styled generator runs in
    style ``style`` (0 = none).
    """

    def __init__(self, scale: int, style_names: Sequence[str], radius: int, bytes_per_lr_pixel: int,
                 tile: int | None = None, overlap: int | None = None, style: int = 0,
                 max_memory: int | None = None) -> None:
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
        self.tile = tile
        self.max_window = self._window_budget(max_memory)

    def _window_budget(self, max_memory: int | None) -> int:
        """The most LR pixels one window may hold under ``max_memory`` MiB (default: :func:`memory_budget`)."""
        if max_memory is not None and max_memory <= 0:
            raise ConfigError(f"max_memory must be > 0 MiB, got {max_memory}")
        budget = memory_budget(max_memory)
        smallest = (MIN_TILE + 2 * self.overlap) ** 2
        if budget < smallest * self.bytes_per_lr_pixel:
            needed = math.ceil(smallest * self.bytes_per_lr_pixel / 2**20)
            if max_memory is not None:
                raise ConfigError(f"max_memory {max_memory} MiB is below the {needed} MiB this generator needs "
                                  f"for one window of {MIN_TILE} LR pixels and its overlap")
            log.warning("only %d MiB of RAM free for upscaling: the smallest windows need %d MiB",
                        budget // 2**20, needed)
        return budget // self.bytes_per_lr_pixel

    def tiles(self, height: int, width: int) -> tuple[int, int]:
        """Core height and width (LR pixels) for an image: ``tile`` if given, else :func:`fitted_tiles`."""
        if self.tile:
            return self.tile, self.tile
        return fitted_tiles(height, width, self.overlap, self.max_window)

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
        core_height, core_width = self.tiles(height, width)
        rows = axis_windows(height, core_height, self.overlap)
        cols = axis_windows(width, core_width, self.overlap)
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
