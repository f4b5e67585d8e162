"""Running a Keras generator on whole images through TensorFlow, in tiles when they are large.

The tiling is :mod:`gansr.tiling`'s; this module describes a Keras
generator to it: its scale, styles, receptive radius (one pixel per 3×3
convolution at LR resolution on its path, ``2·blocks + 3`` for gansr's
super-resolution generator, the bicubic skip needing 2; more for the style
branch, whose layers say how far they reach, ``lr_reach``) and memory per
LR pixel. The light runtime (:mod:`gansr.lite`) runs the TFLite export instead.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from gansr.errors import GansrError
from gansr.imageio import to_uint8
from gansr.models.archive import import_layer_modules
from gansr.models.layers import style_names
from gansr.tiling import TiledUpscaler

PROBE_SIZE = 24  # LR pixels: a probe every supported scale and stride divides
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


class Upscaler(TiledUpscaler):
    """A Keras generator as a :class:`~gansr.tiling.TiledUpscaler`, run by TensorFlow.

    The style is an argument of the traced graph, so one trace serves every
    style and window size.
    """

    def __init__(self, model: keras.Model, tile: int | None = None, overlap: int | None = None,
                 style: int = 0, max_memory: int | None = None) -> None:
        super().__init__(model_scale(model), style_names(model), receptive_radius(model), bytes_per_lr_pixel(model),
                         tile, overlap, style, max_memory)
        self.model = model
        styled = len(model.inputs) > 1

        def forward(lr: tf.Tensor, style_index: tf.Tensor) -> tf.Tensor:
            x = tf.cast(lr, tf.float32) / 255.0
            inputs = [x, tf.fill(tf.shape(lr)[:1], style_index)] if styled else x
            return _quantise(model(inputs, training=False))

        self._forward = tf.function(forward, input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.uint8), tf.TensorSpec([], tf.int32)])

    def _run(self, lr: np.ndarray, style: int) -> np.ndarray:
        return self._forward(lr, tf.constant(style, tf.int32)).numpy()


def bicubic_upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """The baseline every generator is measured against: plain bicubic ×scale."""
    height, width = image.shape[:2]
    out = tf.image.resize(image[None].astype(np.float32) / 255.0, (height * scale, width * scale),
                          method="bicubic")
    return to_uint8(out[0].numpy())


def _quantise(sr: tf.Tensor) -> tf.Tensor:
    """[0, 1] floats → uint8, in float64 and half-to-even like :func:`gansr.imageio.to_uint8`.

    Done in the graph so no full-size float copy of the output reaches NumPy;
    the same arithmetic keeps every value identical to ``to_uint8``'s.
    """
    return tf.cast(tf.clip_by_value(tf.round(tf.cast(sr, tf.float64) * 255.0), 0.0, 255.0), tf.uint8)
