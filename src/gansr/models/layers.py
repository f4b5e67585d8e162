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
