"""The styled generator: the super-resolution generator plus a style branch, one network for every style.

The branch draws a style from the photo itself. A style swap
(:class:`~gansr.style.layers.StyleSwap`; Chen & Schmidt 2016, in the
spirit of image analogies, Hertzmann et al. 2001) draws each LR pixel with
the style's own HR patches from the places whose neighbourhood looks most
like the photo's there, so strokes follow the photo's shapes and move with
it, at the style image's own scale. A small network at LR resolution reads
the photo, the super-resolved image and the swapped one, and draws two
maps per style: how strongly to lay on the strokes' fine detail, and a
colour correction (:class:`~gansr.style.layers.StyleComposite`, which also
gives the result the photo's light and shade at LR scale). The network's
convolutions are followed by a per-style scale and shift
(:class:`~gansr.style.layers.StyleModulation`, Dumoulin et al. 2017) and
trained jointly over the styles; the swap holds no trained weights, so the
network starts from the swapped image, which is already in the style.

Style 0 returns the super-resolved image untouched
(:class:`~gansr.models.layers.StyleSwitch`). Every layer of the branch is
named ``style_*``, so training can freeze the rest.
"""

from __future__ import annotations

import re

import keras
import numpy as np

from gansr.models.generator import super_resolve
from gansr.models.layers import StyleSwitch, style_switch
from gansr.style.layers import StyleComposite, StyleModulation, StyleSwap

PREFIX = "style_"
MAPS = 4  # the detail gain and the RGB offset StyleComposite reads
UNTRAINED_CHANNELS = 4  # style network width where it only draws zero maps (with_style_image)


def style_branch(lr: keras.KerasTensor, sr: keras.KerasTensor, style: keras.KerasTensor, styles: int, scale: int,
                 channels: int, blocks: int, patches: int, shading: float) -> keras.KerasTensor:
    """The HR image of ``lr`` in style ``style`` (1..``styles``), given its super-resolved image ``sr``.

    ``shading``: the share of the photo's light and shade at LR scale in the result.
    """
    def conv(x: keras.KerasTensor, filters: int, name: str, relu: bool = True,
             initializer: str = "glorot_uniform") -> keras.KerasTensor:
        x = keras.layers.Conv2D(filters, 3, padding="same", kernel_initializer=initializer,
                                name=f"{PREFIX}{name}")(x)
        x = StyleModulation(styles, name=f"{PREFIX}{name}_film")([x, style])
        return keras.layers.ReLU(name=f"{PREFIX}{name}_relu")(x) if relu else x

    swapped = StyleSwap(styles, patches, scale, name=f"{PREFIX}swap", dtype="float32")([lr, style])
    at_lr = [keras.layers.AveragePooling2D(scale, name=f"{PREFIX}{name}_at_lr")(image)
             for name, image in (("sr", sr), ("swapped", swapped))]
    x = keras.layers.Concatenate(name=f"{PREFIX}inputs")([lr, *at_lr])
    x = keras.layers.Rescaling(2.0, offset=-1.0, name=f"{PREFIX}centre")(x)
    x = conv(x, channels, "in")
    for i in range(blocks):
        y = conv(x, channels, f"block{i}_conv1")
        y = conv(y, channels, f"block{i}_conv2", relu=False)
        x = keras.layers.Add(name=f"{PREFIX}block{i}_add")([x, y])
    # Zero-initialised: training starts from the swapped strokes in the photo's light and shade.
    maps = conv(x, MAPS, "maps", relu=False, initializer="zeros")
    return StyleComposite(scale, shading, name=f"{PREFIX}image", dtype="float32")([sr, swapped, maps])


def build_styled_generator(scale: int, channels: int, blocks: int, style_names: tuple[str, ...],
                           style_channels: int, style_blocks: int, patches: int, shading: float,
                           name: str = "generator") -> keras.Model:
    """The generator with a style input: (LR image, style index per image) → HR image in that style."""
    lr = keras.Input(shape=(None, None, 3), name="lr")
    style = keras.Input(shape=(), dtype="int32", name="style")
    sr = super_resolve(lr, scale, channels, blocks)
    styled = style_branch(lr, sr, style, len(style_names), scale, style_channels, style_blocks, patches, shading)
    out = StyleSwitch(list(style_names), name=f"{PREFIX}or_sr", dtype="float32")([sr, styled, style])
    return keras.Model([lr, style], out, name=name)


def with_style_image(generator: keras.Model, image: np.ndarray, name: str, patches: int,
                     shading: float) -> keras.Model:
    """``generator`` with one style, drawn from ``image`` by the style swap alone: any style, no training.

    The swap needs nothing but the style image's patches, and the
    network's maps start at zero (:func:`style_branch`), so the untrained
    branch draws a style exactly as training starts from: the swapped
    strokes in the photo's light and shade. ``generator`` is a plain or
    styled generator; its super-resolution weights are kept, so style 0 of
    the result is ``generator``'s output, and style 1 is ``image``'s.
    """
    channels = generator.get_layer("head").filters
    blocks = sum(1 for layer in generator.layers if re.fullmatch(r"block\d+_add", layer.name))
    scale = generator.get_layer("bicubic").scale
    styled = build_styled_generator(scale, channels, blocks, (name,), UNTRAINED_CHANNELS, 0, patches, shading)
    for layer in generator.layers:
        if layer.weights and not layer.name.startswith(PREFIX):
            styled.get_layer(layer.name).set_weights(layer.get_weights())
    set_style_images(styled, [image])
    return styled


def set_style_images(generator: keras.Model, images: list[np.ndarray]) -> None:
    """Give ``generator``'s style swap the candidates of each style image (uint8 RGB, in style order)."""
    next(layer for layer in generator.layers if isinstance(layer, StyleSwap)).set_banks(images)


def sr_and_styled(generator: keras.Model) -> keras.Model:
    """The same layers with both images as outputs: (super-resolved, styled), from one forward pass."""
    sr, styled, _ = style_switch(generator).input
    return keras.Model(generator.inputs, [sr, styled])


def freeze_all_but_style(generator: keras.Model) -> None:
    """Make only the style branch trainable: style 0 keeps the super-resolution weights exactly."""
    for layer in generator.layers:
        layer.trainable = layer.name.startswith(PREFIX)
