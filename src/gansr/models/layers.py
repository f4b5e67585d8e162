"""Custom Keras layers the generator needs and Keras lacks.

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
class BicubicUpsample(_IntegerUpscale):
    """Bicubic upscaling by an integer factor, for inputs of any size.

    ``keras.layers.Resizing`` needs a fixed output size; this layer reads the
    size at run time so the generator stays fully convolutional.
    """

    def call(self, x: tf.Tensor) -> tf.Tensor:
        size = tf.shape(x)[1:3] * self.scale
        return tf.cast(tf.image.resize(x, size, method="bicubic"), x.dtype)


@keras.saving.register_keras_serializable(package="gansr")
class StyleModulation(keras.layers.Layer):
    """Per-style feature-wise scale and shift: x · (1 + γ_s) + β_s (FiLM / conditional IN).

    Style transfer as in Dumoulin et al. (2017, "A learned representation for
    artistic style"): one network, a small set of modulation parameters per
    style. Style 0 means "no style" and is the identity by construction, so a
    styled generator at style 0 is exactly the super-resolution generator it
    was built from. ``names`` lists styles 1..N so the saved model knows them.
    """

    def __init__(self, names: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.names = list(names)

    def build(self, input_shape: list[tuple]) -> None:
        channels = input_shape[0][-1]
        shape = (len(self.names), channels)
        self.gamma = self.add_weight(shape=shape, initializer="zeros", name="gamma")
        self.beta = self.add_weight(shape=shape, initializer="zeros", name="beta")

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        x, style = inputs
        style = tf.reshape(tf.cast(style, tf.int32), [-1])
        styled = tf.cast(style > 0, x.dtype)[:, None, None, None]
        index = tf.maximum(style - 1, 0)
        gamma = tf.cast(tf.gather(self.gamma, index), x.dtype)[:, None, None, :]
        beta = tf.cast(tf.gather(self.beta, index), x.dtype)[:, None, None, :]
        return x + styled * (x * gamma + beta)

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        return input_shape[0]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "names": self.names}
