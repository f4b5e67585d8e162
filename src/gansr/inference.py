"""Running a generator on whole images, in tiles when they are large.

A large LR image is cut into ``tile``×``tile`` cores. Each core runs with
``overlap`` LR pixels of real image context on every side (a window), and
only the core's part of the window's output is kept. An output pixel depends
only on LR pixels within the generator's receptive radius: one pixel per 3×3
convolution at LR resolution on its path, ``2·blocks + 3`` for gansr's
super-resolution generator (the bicubic skip needs 2), more for the style
branch, whose layers say how far they reach (``lr_reach``).
With ``overlap`` at least that radius, the stitched image equals the untiled
one up to float rounding. By default the overlap is that radius
(:func:`receptive_radius`), at least 16; a smaller one is logged as a warning.

Without an explicit ``tile``, the largest tile whose window fits a quarter
of the RAM available now is used (:func:`auto_tile`); an image no larger
than one window runs in a single pass.
"""

from __future__ import annotations

import itertools
import logging
import math
import zipfile
from pathlib import Path

import keras
import numpy as np
import psutil
import tensorflow as tf

from gansr.errors import ConfigError, GansrError
from gansr.metrics import to_uint8
from gansr.models.archive import import_layer_modules
from gansr.models.layers import style_names

log = logging.getLogger("gansr")

DEFAULT_OVERLAP = 16  # LR pixels; ≥ 2·6 + 3, the receptive radius of the default 6-block generator
PROBE_SIZE = 24  # LR pixels: a probe every supported scale and stride divides
MEMORY_SHARE = 0.25  # of the RAM available when the Upscaler is made
# LR pixels: below 64 the overlap dominates the work; at 1024 it adds only 6% (1056² vs 1024²).
MIN_TILE, MAX_TILE = 64, 1024
# Float32 tensors as wide as the widest layer alive at once during a forward pass, TensorFlow's
# buffers included: bench/upscale.py measures ~6 (1140 B per LR pixel) for the default generator.
LIVE_TENSORS = 7
FLOAT32_BYTES = 4


def load_generator(path: str | Path) -> keras.Model:
    """Load a generator from a ``.keras`` file, with Keras safe mode on (registry URIs: ``tracking``)."""
    path = Path(path)
    if not path.is_file():
        raise GansrError(f"no generator at {path} (run `dvc repro` first, or pass --model)")
    if not zipfile.is_zipfile(path):  # Keras would call it "File not found"
        raise GansrError(f"{path}: not a Keras model archive (corrupt or truncated?)")
    try:
        import_layer_modules(path)
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a damaged archive
        raise GansrError(f"{path}: not a loadable Keras generator ({exc})") from exc


def with_precision(model: keras.Model, dtype: str) -> keras.Model:
    """``model`` computing in ``dtype`` (float32, float16 or bfloat16), as mixed precision trains it.

    The trunk runs in ``dtype`` with float32 weights (a ``mixed_*`` policy);
    the output side stays float32 as in training: the convolution(s) feeding
    the output and every layer after them (sub-pixel, bicubic skip, sum),
    found by walking back from the output to the nearest convolutions.
    """
    if dtype == "float32":
        return model
    producer = {id(layer.output): layer for layer in model.layers}
    output_side: set[str] = set()
    pending = [producer[id(tensor)] for tensor in model.outputs]
    while pending:
        layer = pending.pop()
        if layer.name in output_side or isinstance(layer, keras.layers.InputLayer):
            continue
        output_side.add(layer.name)
        if not isinstance(layer, keras.layers.Conv2D):
            pending += [producer[id(tensor)] for tensor in keras.tree.flatten(layer.input)]
    twin = keras.models.clone_model(model, clone_function=lambda layer: layer.__class__.from_config(
        {**layer.get_config(), "dtype": "float32" if layer.name in output_side else f"mixed_{dtype}"}))
    twin.set_weights(model.get_weights())
    return twin


def model_scale(model: keras.Model) -> int:
    """The generator's upscaling factor, read from its output shape for a small input."""
    probe = 8
    shapes = [(1, probe, probe, 3), *((1, *extra.shape[1:]) for extra in model.inputs[1:])]  # + style index
    return int(model.compute_output_shape(shapes if len(shapes) > 1 else shapes[0])[1]) // probe


def pixel_sizes(model: keras.Model) -> list[tuple[keras.layers.Conv2D, float, float]]:
    """Each convolution, with its input and output pixel sizes in LR pixels.

    1 at LR resolution, 1/scale at HR, 2 after a stride of 2 below LR; read
    from one forward pass of a small probe.
    """
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    if not convolutions:
        return []
    probe = keras.Model(model.inputs, [t for layer in convolutions for t in (layer.input, layer.output)])
    inputs = [np.zeros((1, PROBE_SIZE, PROBE_SIZE, 3), np.float32),
              *(np.zeros((1,), np.int32) for _ in model.inputs[1:])]  # + style index
    heights = [int(t.shape[1]) for t in probe(inputs)]
    return [(layer, PROBE_SIZE / heights[2 * i], PROBE_SIZE / heights[2 * i + 1])
            for i, layer in enumerate(convolutions)]


def receptive_radius(model: keras.Model) -> int:
    """LR pixels of context one output pixel can depend on: the layers' radii summed.

    A k×k convolution reaches (k − 1)/2 of its input pixels; a layer that
    looks around in its own way says how far in LR pixels (``lr_reach``).
    Exact for a chain like gansr's generator (``2·blocks + 3`` without
    styles), an upper bound when some layers run side by side.
    """
    radius = sum((layer.kernel_size[0] - 1) // 2 * layer.dilation_rate[0] * input_pixel
                 for layer, input_pixel, _ in pixel_sizes(model))
    radius += sum(getattr(layer, "lr_reach", 0) for layer in model.layers)
    return math.ceil(radius)


def bytes_per_lr_pixel(model: keras.Model) -> int:
    """Estimated peak activation memory of a forward pass, per LR input pixel."""
    scale = model_scale(model)
    # The HR output holds 3·scale² values per LR pixel, so it counts as a layer that wide;
    # a convolution's width counts once per pixel of its output (scale² times at HR).
    widest = max([3 * scale * scale] + [
        math.ceil(layer.filters / output_pixel**2) for layer, _, output_pixel in pixel_sizes(model)
    ])
    # A layer that holds more per LR pixel than its output (the style swap's match scores) says so.
    held = max([0] + [layer.lr_floats() for layer in model.layers if hasattr(layer, "lr_floats")])
    return FLOAT32_BYTES * (LIVE_TENSORS * widest + held)


def memory_budget() -> int:
    """Bytes one forward pass may use: :data:`MEMORY_SHARE` of the RAM available now."""
    return int(psutil.virtual_memory().available * MEMORY_SHARE)


def auto_tile(model: keras.Model, overlap: int = DEFAULT_OVERLAP, budget: int | None = None) -> int:
    """The largest tile side (LR pixels) whose window fits ``budget`` bytes, within [64, 1024]."""
    budget = memory_budget() if budget is None else budget
    window = math.isqrt(max(budget, 0) // bytes_per_lr_pixel(model))
    return min(max(window - 2 * overlap, MIN_TILE), MAX_TILE)


class Upscaler:
    """Upscale uint8 RGB images, one window at a time when they are larger than one window.

    One window per forward pass keeps peak memory proportional to the tile
    size. All windows of an image have the same shape (edge windows shift
    inwards rather than shrink), so the convolution kernels TensorFlow sets
    up for a shape are reused for every window. A style-conditioned generator
    runs in style ``style`` (0 = none); every style layer works on the
    pixels around it, so tiles stay seamless.
    """

    def __init__(self, model: keras.Model, tile: int | None = None, overlap: int | None = None,
                 style: int = 0) -> None:
        if tile is not None and tile <= 0:
            raise ConfigError(f"tile must be > 0 LR pixels, got {tile}")
        if overlap is not None and overlap < 0:
            raise ConfigError(f"overlap must be >= 0 LR pixels, got {overlap}")
        self.styles = len(style_names(model))
        self.style = self._checked_style(style)
        radius = receptive_radius(model)
        overlap = max(DEFAULT_OVERLAP, radius) if overlap is None else overlap
        if overlap < radius:
            log.warning("overlap %d is below the generator's receptive radius %d: tile seams may show",
                        overlap, radius)
        self.model = model
        self.scale = model_scale(model)
        self.overlap = overlap
        self.tile = tile or auto_tile(model, overlap)
        styled = len(model.inputs) > 1

        def forward(lr: tf.Tensor, style_index: tf.Tensor) -> tf.Tensor:
            x = tf.cast(lr, tf.float32) / 255.0
            inputs = [x, tf.fill(tf.shape(lr)[:1], style_index)] if styled else x
            return _quantise(model(inputs, training=False))

        # The style is an argument of the graph, so one trace serves every style and size.
        self._forward = tf.function(forward, input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.uint8), tf.TensorSpec([], tf.int32)])

    def _checked_style(self, style: int) -> int:
        if not 0 <= style <= self.styles:
            raise ConfigError(f"style must be 0 (none) to {self.styles} for this generator, got {style}")
        return style

    def __call__(self, image: np.ndarray, style: int | None = None) -> np.ndarray:
        """H×W×3 uint8 → (s·H)×(s·W)×3 uint8, in ``style`` (default: the one given at construction)."""
        style_index = tf.constant(self.style if style is None else self._checked_style(style), tf.int32)
        height, width = image.shape[:2]
        rows = _axis_windows(height, self.tile, self.overlap)
        cols = _axis_windows(width, self.tile, self.overlap)
        if len(rows) == len(cols) == 1:
            return self._run(image[None], style_index)[0]
        s = self.scale
        sr = np.empty((height * s, width * s, 3), np.uint8)
        for (y0, y1, wy, wy1), (x0, x1, wx, wx1) in itertools.product(rows, cols):
            out = self._run(image[None, wy:wy1, wx:wx1], style_index)[0]
            core = out[(y0 - wy) * s : (y1 - wy) * s, (x0 - wx) * s : (x1 - wx) * s]
            sr[y0 * s : y1 * s, x0 * s : x1 * s] = core
        return sr

    def _run(self, lr: np.ndarray, style_index: tf.Tensor) -> np.ndarray:
        """1×H×W×3 uint8 → 1×(s·H)×(s·W)×3 uint8 in one forward pass."""
        return self._forward(lr, style_index).numpy()


def bicubic_upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """The baseline every generator is measured against: plain bicubic ×scale."""
    height, width = image.shape[:2]
    out = tf.image.resize(image[None].astype(np.float32) / 255.0, (height * scale, width * scale),
                          method="bicubic")
    return to_uint8(out[0].numpy())


def _quantise(sr: tf.Tensor) -> tf.Tensor:
    """[0, 1] floats → uint8, in float64 and half-to-even like :func:`gansr.metrics.to_uint8`.

    Done in the graph so no full-size float copy of the output reaches NumPy;
    the same arithmetic keeps every value identical to ``to_uint8``'s.
    """
    return tf.cast(tf.clip_by_value(tf.round(tf.cast(sr, tf.float64) * 255.0), 0.0, 255.0), tf.uint8)


def _axis_windows(length: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
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
