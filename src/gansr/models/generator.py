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

The styled generator (:mod:`gansr.style.network`) is built on the same
graph (:func:`super_resolve`) with the same layer names, so this one's
weights carry over.
"""

from __future__ import annotations

import keras

from gansr.models.layers import BicubicUpsample, DepthToSpace, EqualSubpixelGain

# Residual scaling keeps activations bounded in deep no-BN trunks (EDSR §3.2).
RESIDUAL_SCALE = 0.2
SUBPIXEL_HEAD = "to_subpixels"  # the convolution whose 3·scale² channels the shuffle turns into the HR residual


def residual_block(x: keras.KerasTensor, channels: int, name: str) -> keras.KerasTensor:
    """conv → ReLU → conv, scaled and added back to the input."""
    y = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", name=f"{name}_conv1")(x)
    y = keras.layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv2")(y)
    y = keras.layers.Rescaling(RESIDUAL_SCALE, name=f"{name}_scale")(y)
    return keras.layers.Add(name=f"{name}_add")([x, y])


def super_resolve(lr: keras.KerasTensor, scale: int, channels: int, blocks: int) -> keras.KerasTensor:
    """The super-resolved image of ``lr`` for ``scale`` ∈ {2, 3, 4}: trunk, sub-pixel head, bicubic skip."""
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
    return keras.layers.Add(name="sr", dtype="float32")([bicubic, residual])


def build_generator(scale: int, channels: int, blocks: int, name: str = "generator") -> keras.Model:
    """The generator for ``scale`` ∈ {2, 3, 4}: an LR image (None, None, 3) in, its HR image out."""
    lr = keras.Input(shape=(None, None, 3), name="lr")
    return keras.Model(lr, super_resolve(lr, scale, channels, blocks), name=name)


def freeze_subpixel_head(generator: keras.Model) -> None:
    """Stop training the sub-pixel head: later training changes the trunk's features, not their map to HR pixels.

    The head holds one kernel per HR pixel phase. Left free in the
    adversarial phase, the kernels drift apart to draw dotted streaks at the
    HR Nyquist frequency that the discriminator takes for detail; frozen at
    their pretrained values, they turn whatever the trunk learns into the
    HR patterns pixel-loss training found in real images.
    """
    generator.get_layer(SUBPIXEL_HEAD).trainable = False


def copy_shared_weights(source: keras.Model, target: keras.Model) -> None:
    """Copy every layer's weights from ``source`` into the same-named layer of ``target``."""
    for layer in source.layers:
        if layer.weights:
            target.get_layer(layer.name).set_weights(layer.get_weights())
