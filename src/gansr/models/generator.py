"""The super-resolution generator: LR image in [0, 1] → HR image in [0, 1].

A residual trunk works at LR resolution (EDSR-style blocks, no batch norm,
Lim et al. 2017), one convolution predicts ``3·scale²`` channels that a
sub-pixel shuffle turns into the HR residual (ESPCN, Shi et al. 2016), and a
global bicubic skip adds the interpolated input, so the network only learns
the detail bicubic misses. Fully convolutional: any input size.

The sub-pixel kernels are kept at equal gain
(:class:`~gansr.models.layers.EqualSubpixelGain`), so flat regions come out
flat, without the checkerboard grid sub-pixel upsampling is known for.
Adversarial fine-tuning leaves them as pretraining set them
(:func:`freeze_subpixel_head`).

With ``style_names``, the generator takes a second input, a style index per
image (0 = none, i = ``style_names[i - 1]``), and a style branch
(:mod:`gansr.models.style_branch`) redraws the HR output in that style;
style 0 returns the super-resolved image untouched. Layer names are shared
with the plain generator so its weights carry over.
"""

from __future__ import annotations

import keras

from gansr.errors import ConfigError
from gansr.models.layers import BicubicUpsample, DepthToSpace, EqualSubpixelGain, StyleSwitch
from gansr.models.style_branch import style_branch

# Residual scaling keeps activations bounded in deep no-BN trunks (EDSR §3.2).
RESIDUAL_SCALE = 0.2
SUBPIXEL_HEAD = "to_subpixels"  # the convolution whose 3·scale² channels the shuffle turns into the HR residual


def residual_block(x: keras.KerasTensor, channels: int, name: str) -> keras.KerasTensor:
    """conv → ReLU → conv, scaled and added back to the input."""
    y = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", name=f"{name}_conv1")(x)
    y = keras.layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv2")(y)
    y = keras.layers.Rescaling(RESIDUAL_SCALE, name=f"{name}_scale")(y)
    return keras.layers.Add(name=f"{name}_add")([x, y])


def build_generator(scale: int, channels: int, blocks: int, name: str = "generator",
                    style_names: tuple[str, ...] = (), style_channels: int = 64,
                    style_blocks: int = 3, exemplar_size: int = 256) -> keras.Model:
    """Build the generator for ``scale`` ∈ {2, 3, 4}; input (None, None, 3) [+ style index]."""
    lr = keras.Input(shape=(None, None, 3), name="lr")
    head = keras.layers.Conv2D(channels, 3, padding="same", name="head")(lr)
    x = head
    for i in range(blocks):
        x = residual_block(x, channels, name=f"block{i}")
    x = keras.layers.Conv2D(channels, 3, padding="same", name="trunk_out")(x)
    x = keras.layers.Add(name="trunk_skip")([head, x])
    # Zero-initialised so training starts from exactly bicubic.
    x = keras.layers.Conv2D(
        3 * scale * scale, 3, padding="same", kernel_initializer="zeros", name=SUBPIXEL_HEAD,
        kernel_constraint=EqualSubpixelGain(scale), bias_constraint=EqualSubpixelGain(scale), dtype="float32",
    )(x)
    residual = DepthToSpace(scale, name="subpixel", dtype="float32")(x)
    bicubic = BicubicUpsample(scale, name="bicubic", dtype="float32")(lr)
    sr = keras.layers.Add(name="sr", dtype="float32")([bicubic, residual])
    if not style_names:
        return keras.Model(lr, sr, name=name)
    style = keras.Input(shape=(), dtype="int32", name="style")
    styled = style_branch(sr, style, len(style_names), scale, style_channels, style_blocks, exemplar_size)
    out = StyleSwitch(list(style_names), name="style_or_sr", dtype="float32")([sr, styled, style])
    return keras.Model([lr, style], out, name=name)


def freeze_subpixel_head(generator: keras.Model) -> None:
    """Stop training the sub-pixel head: later training changes the trunk's features, not their map to HR pixels.

    The head holds one kernel per HR pixel phase. Left free in the
    adversarial phase, the kernels drift apart to draw dotted streaks at the
    HR Nyquist frequency that the discriminator takes for detail; frozen at
    their pretrained values, they turn whatever the trunk learns into the
    HR patterns pixel-loss training found in real images.
    """
    generator.get_layer(SUBPIXEL_HEAD).trainable = False


def style_names(generator: keras.Model) -> list[str]:
    """The styles a generator knows (index 1, 2, …), or [] for a plain generator."""
    for layer in generator.layers:
        if isinstance(layer, StyleSwitch):
            return layer.names
    return []


def style_index(generator: keras.Model, style: str | int) -> int:
    """A style given by name or number (1..N) as the generator's style index; 0/""/"none" = no style."""
    names = style_names(generator)
    style = str(style)
    if style in ("", "none", "0"):
        return 0
    if not names:
        raise ConfigError(f"style {style}: this generator has no styles (use the style generator)")
    if style.isdigit() and 1 <= int(style) <= len(names):
        return int(style)
    if style in names:
        return names.index(style) + 1
    raise ConfigError(f"style {style}: unknown; this generator knows {', '.join(names)} (or 1-{len(names)})")


def copy_shared_weights(source: keras.Model, target: keras.Model) -> None:
    """Copy every layer's weights from ``source`` into the same-named layer of ``target``."""
    for layer in source.layers:
        if layer.weights:
            target.get_layer(layer.name).set_weights(layer.get_weights())
