"""Patch discriminator with spectral normalization (Miyato et al., 2018).

Outputs one logit per receptive-field patch, never a sigmoid: losses apply
``softplus`` to logits, which is the numerically stable form of ``-log σ``.
"""

from __future__ import annotations

import keras


def sn_conv(channels: int, kernel: int, strides: int, name: str) -> keras.layers.Layer:
    """A convolution whose kernel is spectrally normalised."""
    conv = keras.layers.Conv2D(channels, kernel, strides=strides, padding="same", name=f"{name}_conv")
    return keras.layers.SpectralNormalization(conv, name=name)


def build_discriminator(channels: int, name: str = "discriminator") -> keras.Model:
    """SN patch discriminator; input an RGB image in [0, 1] of any size ≥ 16²."""
    image = keras.Input(shape=(None, None, 3), name="image")
    x = sn_conv(channels, 3, 1, name="in")(image)
    x = keras.layers.LeakyReLU(0.2)(x)
    for i, mult in enumerate((1, 2, 4, 8)):
        x = sn_conv(channels * mult, 4, 2, name=f"down{i}")(x)
        x = keras.layers.LeakyReLU(0.2)(x)
        x = sn_conv(channels * mult, 3, 1, name=f"refine{i}")(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    logits = keras.layers.Conv2D(1, 3, padding="same", dtype="float32", name="logits")(x)
    return keras.Model(image, logits, name=name)
