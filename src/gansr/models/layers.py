"""Custom Keras layers the generator needs and Keras lacks, and the switch of a generator with a style input.

Registered as serializable so a saved ``.keras`` file reloads with
``safe_mode=True`` (no ``Lambda`` layers anywhere).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


class _IntegerUpscale(keras.layers.Layer):
    """Base of layers that multiply height and width by an integer ``scale``."""

    def __init__(self, scale: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = scale

    def output_channels(self, channels: int) -> int:
        return channels

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        batch, height, width, channels = input_shape
        s = self.scale
        return (
            batch,
            None if height is None else height * s,
            None if width is None else width * s,
            self.output_channels(channels),
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="gansr")
class DepthToSpace(_IntegerUpscale):
    """Sub-pixel rearrangement: (H, W, C·s²) → (H·s, W·s, C) (Shi et al., 2016)."""

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.depth_to_space(x, self.scale)

    def output_channels(self, channels: int) -> int:
        return channels // (self.scale * self.scale)


@keras.saving.register_keras_serializable(package="gansr")
class EqualSubpixelGain(keras.constraints.Constraint):
    """Keep a sub-pixel convolution free of checkerboard artefacts on flat input.

    The convolution before a depth-to-space by ``s`` holds s² kernels, one per
    output phase. If their sums (their gain for a constant input) differ, a
    flat region comes out with a grid of period ``s``, the classic artefact of
    sub-pixel upsampling (Odena et al. 2016). Sugawara et al. (2019) show the
    grid is absent exactly when every phase has the same gain. Applied after
    each optimizer step (a Keras constraint), this projects the kernel onto
    that condition: each phase's tap sum is replaced by the mean over phases,
    and each phase's bias by the mean bias. It holds for the zero
    initialisation and for any average of such kernels (the EMA weights).
    """

    def __init__(self, scale: int) -> None:
        self.scale = scale

    def __call__(self, weights: Any) -> Any:
        ops, phases = keras.ops, self.scale * self.scale
        if len(weights.shape) == 1:  # the bias: one value per phase and colour
            per_phase = ops.reshape(weights, (phases, -1))
            shared = ops.mean(per_phase, axis=0, keepdims=True)
            return ops.reshape(ops.broadcast_to(shared, per_phase.shape), weights.shape)
        height, width, channels_in, channels_out = weights.shape
        per_phase = ops.reshape(weights, (height, width, channels_in, phases, channels_out // phases))
        gain = ops.sum(per_phase, axis=(0, 1), keepdims=True)
        shared = ops.mean(gain, axis=3, keepdims=True)
        return ops.reshape(per_phase + (shared - gain) / (height * width), weights.shape)

    def get_config(self) -> dict[str, Any]:
        return {"scale": self.scale}


@keras.saving.register_keras_serializable(package="gansr")
class BicubicUpsample(_IntegerUpscale):
    """Bicubic upscaling by an integer factor (the generator's global skip).

    ``keras.layers.Resizing`` needs a fixed output size, and
    ``keras.layers.UpSampling2D`` cannot interpolate an input whose size is
    unknown when traced; this layer reads the size at run time so the
    generator stays fully convolutional.
    """

    def call(self, x: tf.Tensor) -> tf.Tensor:
        size = tf.shape(x)[1:3] * self.scale
        return tf.cast(tf.image.resize(x, size, method="bicubic"), x.dtype)


@keras.saving.register_keras_serializable(package="gansr")
class StyleSwitch(keras.layers.Layer):
    """A style generator's output: the super-resolved image at style 0, the styled one otherwise.

    A selection, not a blend, so style 0 is the super-resolution generator's
    output bit for bit. ``names`` lists styles 1..N so the saved model knows them.
    """

    def __init__(self, names: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.names = list(names)

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        sr, styled, style = inputs
        chosen = tf.reshape(tf.cast(style, tf.int32), [-1, 1, 1, 1]) > 0
        return tf.where(chosen, tf.cast(styled, sr.dtype), sr)

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        return input_shape[0]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "names": self.names}


def style_switch(generator: keras.Model) -> StyleSwitch | None:
    """The generator's :class:`StyleSwitch`, or None for a plain generator."""
    return next((layer for layer in generator.layers if isinstance(layer, StyleSwitch)), None)


def style_names(generator: keras.Model) -> list[str]:
    """The styles a generator knows (index 1, 2, …), or [] for a plain generator."""
    switch = style_switch(generator)
    return switch.names if switch else []
