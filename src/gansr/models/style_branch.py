"""The style branch: redraws the super-resolved image in a chosen style, at HR resolution.

A feed-forward style-transfer network (Johnson et al. 2016) that reads the
generator's HR output, so texture is drawn at its real scale rather than
through the sub-pixel shuffle of the LR trunk. Beside the image it reads the
style image itself, tiled over the output
(:class:`~gansr.models.layers.StyleExemplars`): like image analogies and
texture transfer (Hertzmann et al. 2001; Efros & Freeman 2001), it learns
how to lay the style's own texture and palette over the content, which a
few hundred training steps can teach, where inventing a texture from
nothing takes tens of thousands. Its shape follows Johnson's:
a wide-kernel convolution at HR, strided convolutions down to LR resolution
(the total stride equals the scale, so tiles cut on LR pixels stay aligned),
residual blocks there, bilinear upsampling followed by convolutions
(resize-convolution, which draws no checkerboard; Odena et al. 2016), and a
wide-kernel convolution back to RGB, added to the input image. That last
convolution also reads the image and the texture directly and starts as
their half-and-half blend (:class:`BlendInit`).

One network serves every style: each convolution is followed by a per-style
scale and shift (:class:`~gansr.models.layers.StyleModulation`), trained
jointly over the styles (Dumoulin et al. 2017). All its layers are named
``style_*`` so training can freeze everything else.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from gansr.models.layers import BilinearUpsample, StyleExemplars, StyleModulation

PREFIX = "style_"
# Strides from HR down to LR resolution for each supported scale.
DOWNSAMPLING = {2: (2,), 3: (3,), 4: (2, 2)}
WIDE_KERNEL = 9  # Johnson et al.'s first and last kernels: room for a texture's grain


def style_branch(sr: keras.KerasTensor, style: keras.KerasTensor, styles: int, scale: int,
                 channels: int, blocks: int, exemplar_size: int) -> keras.KerasTensor:
    """The styled HR image: ``sr`` plus a residual drawn for style index ``style``.

    ``channels`` is the width at LR resolution; each level above it has half
    the width of the one below, so every level costs about the same.
    ``exemplar_size`` is the side of the style-image crops the branch tiles.
    """
    strides = DOWNSAMPLING[scale]
    widths = [max(channels >> (len(strides) - level), 4) for level in range(len(strides) + 1)]

    def conv(x: keras.KerasTensor, filters: int, kernel: int, name: str, strides: int = 1,
             relu: bool = True) -> keras.KerasTensor:
        x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", name=f"{PREFIX}{name}")(x)
        x = StyleModulation(styles, name=f"{PREFIX}{name}_film")([x, style])
        return keras.layers.ReLU(name=f"{PREFIX}{name}_relu")(x) if relu else x

    texture = StyleExemplars(styles, exemplar_size, name=f"{PREFIX}exemplars")([sr, style])
    inputs = keras.layers.Concatenate(name=f"{PREFIX}inputs")([sr, texture])
    inputs = keras.layers.Rescaling(2.0, offset=-1.0, name=f"{PREFIX}centre")(inputs)
    x = conv(inputs, widths[0], WIDE_KERNEL, "in")
    for level, stride in enumerate(strides, start=1):
        x = conv(x, widths[level], 3, f"down{level}", strides=stride)
    for i in range(blocks):
        y = conv(x, channels, 3, f"block{i}_conv1")
        y = conv(y, channels, 3, f"block{i}_conv2", relu=False)
        x = keras.layers.Add(name=f"{PREFIX}block{i}_add")([x, y])
    for level, stride in reversed(list(enumerate(strides))):
        x = BilinearUpsample(stride, name=f"{PREFIX}up{level}")(x)
        x = conv(x, widths[level], 3, f"up{level}_conv")
    # The image and the texture also reach the last layer directly, which starts as a half-and-half
    # blend of the two: training begins from the style's own texture at its own scale, laid over the
    # content, and learns where to keep the content and how to draw the style. Float32 like every
    # output layer.
    x = keras.layers.Concatenate(name=f"{PREFIX}skip")([x, inputs])
    residual = keras.layers.Conv2D(3, WIDE_KERNEL, padding="same", kernel_initializer=BlendInit(),
                                   name=f"{PREFIX}out", dtype="float32")(x)
    return keras.layers.Add(name=f"{PREFIX}image", dtype="float32")([sr, residual])


@keras.saving.register_keras_serializable(package="gansr")
class BlendInit(keras.initializers.Initializer):
    """A last-layer kernel whose output is half the way from the image to the texture.

    Its input ends with the centred image and texture (2·v − 1, three
    channels each), so ½·(texture − image) is ¼ of their centred difference,
    read at the kernel's centre tap.
    """

    def __call__(self, shape: tuple[int, ...], dtype: Any = None) -> Any:
        height, width, channels_in, channels_out = shape
        kernel = np.zeros(shape, np.float32)
        image, texture = channels_in - 6, channels_in - 3
        for c in range(channels_out):
            kernel[height // 2, width // 2, image + c, c] = -0.25
            kernel[height // 2, width // 2, texture + c, c] = 0.25
        return keras.ops.convert_to_tensor(kernel, dtype=dtype)


def exemplar_size(image_size: int, scale: int) -> int:
    """Side of the style-image crops: the shorter side, down to a multiple of the scale.

    The tiled texture then repeats after a whole number of LR pixels, so
    windows of a tiled upscale can start where it repeats.
    """
    return image_size // scale * scale


def set_exemplars(generator: keras.Model, images: list[np.ndarray]) -> None:
    """Store the centre crop of each style image (uint8 RGB, in style order) in ``generator``."""
    layer = generator.get_layer(f"{PREFIX}exemplars")
    size = layer.size
    crops = []
    for image in images:
        top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
        crops.append(image[top : top + size, left : left + size].astype(np.float32) / 255.0)
    layer.set_weights([np.stack(crops)])


def freeze_all_but_style(generator: keras.Model) -> None:
    """Make only the style branch trainable: style 0 keeps the super-resolution weights exactly."""
    for layer in generator.layers:
        layer.trainable = layer.name.startswith(PREFIX)
