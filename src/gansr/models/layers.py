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


class _Resize(_IntegerUpscale):
    """Interpolation by an integer factor, for inputs of any size.

    ``keras.layers.Resizing`` needs a fixed output size, and
    ``keras.layers.UpSampling2D`` cannot interpolate an input whose size is
    unknown when traced; these layers read the size at run time so the
    generator stays fully convolutional.
    """

    method = ""

    def call(self, x: tf.Tensor) -> tf.Tensor:
        size = tf.shape(x)[1:3] * self.scale
        return tf.cast(tf.image.resize(x, size, method=self.method), x.dtype)


@keras.saving.register_keras_serializable(package="gansr")
class BicubicUpsample(_Resize):
    """Bicubic upscaling by an integer factor (the generator's global skip)."""

    method = "bicubic"


@keras.saving.register_keras_serializable(package="gansr")
class BilinearUpsample(_Resize):
    """Bilinear upscaling by an integer factor: the resize in a resize-convolution."""

    method = "bilinear"


@keras.saving.register_keras_serializable(package="gansr")
class StyleModulation(keras.layers.Layer):
    """Per-style feature-wise scale and shift: x · (1 + γ_s) + β_s (FiLM, Perez et al. 2018).

    The conditional part of Dumoulin et al.'s (2017, "A learned representation
    for artistic style") multi-style network: shared filters, a few modulation
    parameters per style. There is no normalisation before it, because
    instance statistics would depend on the whole image and make tiled
    inference differ from untiled. Style 0 means "no style" and is the identity.
    """

    def __init__(self, styles: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.styles = styles

    def build(self, input_shape: list[tuple]) -> None:
        shape = (self.styles, input_shape[0][-1])
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
        return {**super().get_config(), "styles": self.styles}


@keras.saving.register_keras_serializable(package="gansr")
class StyleExemplars(keras.layers.Layer):
    """Each style image, tiled over the output image: the texture the style branch draws from.

    Holds a ``size``×``size`` crop of every style image (set after building,
    not trained). For an image of style s it returns the crop of style s
    mirrored into a 2·size tile, which repeats without a seam, tiled from the
    image's top-left corner, so the texture keeps the style image's own
    scale (mirroring rather than cross-fading copies, which would ghost and
    blur a texture). The tiling is anchored to the image's corner: an image
    upscaled in windows must start each window at a multiple of
    :attr:`period` HR pixels.
    """

    def __init__(self, styles: int, size: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.styles = styles
        self.size = size

    @property
    def period(self) -> int:
        """HR pixels after which the tiled texture repeats."""
        return 2 * self.size

    def build(self, input_shape: list[tuple]) -> None:
        self.textures = self.add_weight(shape=(self.styles, self.size, self.size, 3), initializer="zeros",
                                        trainable=False, name="textures")

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        image, style = inputs
        index = tf.maximum(tf.reshape(tf.cast(style, tf.int32), [-1]) - 1, 0)
        crops = tf.gather(tf.convert_to_tensor(self.textures), index)
        mirrored = tf.concat([crops, tf.reverse(crops, axis=[2])], axis=2)
        tile = tf.concat([mirrored, tf.reverse(mirrored, axis=[1])], axis=1)
        height, width = tf.shape(image)[1], tf.shape(image)[2]
        tiled = tf.tile(tile, [1, height // self.period + 1, width // self.period + 1, 1])
        return tf.cast(tiled[:, :height, :width], image.dtype)

    def compute_output_shape(self, input_shape: list[tuple]) -> tuple:
        return input_shape[0]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "styles": self.styles, "size": self.size}


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
