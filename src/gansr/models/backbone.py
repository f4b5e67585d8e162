"""Frozen feature backbone for the perceptual (content) and texture (style) losses.

VGG19 with ImageNet weights is the standard choice (Johnson et al. 2016,
Ledig et al. 2017); the same VGG19 layers serve both losses. Its weights come
from a hub, so offline the backbone falls back to two fixed random-filter
CNNs, one per loss, because random filters do each job only when built for it:

- texture (style loss): one layer of random 5×5 ReLU filters on each
  level of an image pyramid (strides 1, 2, 4, 8), so the filters see from 5
  to 40 pixels: a brick or a stone, not only a grain. Single-layer random
  networks with multi-scale filters match VGG's texture statistics
  (Ustyuzhaninov et al., ICLR 2017; He et al. 2016), and the pyramid makes
  wide filters cheap;
- content (perceptual loss): features that, like deep pretrained ones, charge
  a one-pixel misalignment of sharp detail no more than a blur, so the loss
  leaves the generator free to draw detail it cannot place exactly. A plain
  random CNN charges the shift far more and so, like a pixel loss, rewards
  blur. Here the first layer's filters are zero-mean (flat colour is the
  pixel loss's job) and smoothed by a binomial (so checkerboard-like patterns
  at the Nyquist frequency earn nothing), stages are joined by max pooling
  (which forgives small shifts), and the taps are at strides 2, 4 and 8.

The switch is never silent: it is logged as a warning and reported to MLflow.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from gansr.errors import ConfigError, GansrError

log = logging.getLogger(__name__)

VGG19_NOTOP_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
# ReLU outputs of the last conv of blocks 2, 3 and 4: fine-to-coarse features.
VGG19_LAYERS = ("block2_conv2", "block3_conv4", "block4_conv4")
# VGG19 was trained on caffe-style inputs: BGR in [0, 255] minus this mean.
VGG19_BGR_MEAN = (103.939, 116.779, 123.68)
RANDOM_FILTER_SEED = 1234
RANDOM_TEXTURE_CHANNELS = 64  # per pyramid level
RANDOM_TEXTURE_KERNEL = 5
RANDOM_TEXTURE_LEVELS = 4  # pyramid levels at strides 1, 2, 4, 8: filters span 5 to 40 pixels
RANDOM_CONTENT_CHANNELS = (16, 32, 64, 128)  # the first stage is not tapped

Features = list[tf.Tensor]


class Backbone:
    """Frozen feature extractors: RGB batch in [0, 1] → feature maps for each loss."""

    def __init__(self, content_taps: keras.Model, texture_taps: keras.Model, kind: str) -> None:
        for taps in (content_taps, texture_taps):
            taps.trainable = False
        self.content_taps = content_taps
        self.texture_taps = texture_taps
        self.kind = kind  # "vgg19" or "random"

    def content(self, images: tf.Tensor) -> Features:
        """Features for the perceptual (content) loss."""
        return self._features(self.content_taps, images)

    def texture(self, images: tf.Tensor) -> Features:
        """Features whose response distributions the style loss compares."""
        return self._features(self.texture_taps, images)

    def _features(self, taps: keras.Model, images: tf.Tensor) -> Features:
        images = tf.cast(images, tf.float32)
        if self.kind == "vgg19":
            images = images[..., ::-1] * 255.0 - tf.constant(VGG19_BGR_MEAN)
        return [tf.cast(f, tf.float32) for f in taps(images, training=False)]


def keras_cached_vgg19() -> Path:
    """Where ``keras.applications.VGG19`` caches its no-top ImageNet weights."""
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return keras_home / "models" / VGG19_NOTOP_FILE


def build_backbone(kind: str, weights_path: str = "") -> Backbone:
    """Build the backbone named by ``loss.backbone`` (auto | vgg19 | random)."""
    if kind == "random":
        return random_backbone()
    weights = Path(weights_path) if weights_path else keras_cached_vgg19()
    if weights_path and not weights.is_file():
        raise ConfigError(f"loss.vgg19_weights: no such file {weights}")
    if weights.is_file():
        return vgg19_backbone(str(weights))
    if kind == "vgg19":
        return vgg19_backbone("imagenet")  # downloads into the Keras cache
    log.warning(
        "VGG19 ImageNet weights not found at %s and loss.backbone is 'auto': the "
        "perceptual and style losses use the offline random-filter backbone. Put the "
        "weights there or set loss.vgg19_weights to use VGG19.", weights,
    )
    return random_backbone()


def vgg19_backbone(weights: str) -> Backbone:
    """VGG19 feature taps for both losses; ``weights`` is an .h5 path or ``"imagenet"`` (download)."""
    try:
        vgg = keras.applications.VGG19(include_top=False, weights=weights)
    except Exception as exc:  # hub unreachable or a damaged weights file
        raise GansrError(f"cannot load VGG19 weights from {weights}: {exc}") from exc
    taps = keras.Model(vgg.input, [vgg.get_layer(n).output for n in VGG19_LAYERS])
    return Backbone(taps, taps, "vgg19")


def random_backbone() -> Backbone:
    """The offline fallback: fixed, seeded random-filter CNNs (the same ones every time)."""
    return Backbone(random_content_cnn(), random_texture_cnn(), "random")


def random_texture_cnn() -> keras.Model:
    """One layer of random ReLU filters on each level of an average-pooled image pyramid."""
    image = keras.Input(shape=(None, None, 3))
    x = keras.layers.Rescaling(2.0, offset=-1.0)(image)  # centre inputs on zero
    features = []
    for level in range(RANDOM_TEXTURE_LEVELS):
        if level:
            x = keras.layers.AveragePooling2D(2)(x)
        features.append(keras.layers.Conv2D(
            RANDOM_TEXTURE_CHANNELS, RANDOM_TEXTURE_KERNEL, padding="same", activation="relu",
            kernel_initializer=keras.initializers.HeNormal(seed=RANDOM_FILTER_SEED + level),
            name=f"texture_level{level}",
        )(x))
    return keras.Model(image, features, name="random_texture_features")


def random_content_cnn() -> keras.Model:
    """A random ReLU CNN: smooth zero-mean first filters, max pooling, taps at strides 2, 4 and 8."""
    image = keras.Input(shape=(None, None, 3))
    x = keras.layers.Rescaling(2.0, offset=-1.0)(image)
    first = smooth_zero_mean_filters(3, RANDOM_CONTENT_CHANNELS[0], RANDOM_FILTER_SEED)
    x = keras.layers.Conv2D(
        RANDOM_CONTENT_CHANNELS[0], first.shape[0], padding="same", activation="relu",
        kernel_initializer=keras.initializers.Constant(first), name="content_conv0",
    )(x)
    features = []
    for i, channels in enumerate(RANDOM_CONTENT_CHANNELS[1:], start=1):
        x = keras.layers.MaxPooling2D(2)(x)
        x = keras.layers.Conv2D(
            channels, 3, padding="same", activation="relu",
            kernel_initializer=keras.initializers.HeNormal(seed=RANDOM_FILTER_SEED + i),
            name=f"content_conv{i}",
        )(x)
        features.append(x)
    return keras.Model(image, features, name="random_content_features")


def smooth_zero_mean_filters(in_channels: int, out_channels: int, seed: int) -> np.ndarray:
    """Random 3×3 He-normal filters, each made zero-mean, then smoothed to 5×5 by a binomial."""
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0.0, np.sqrt(2.0 / (9 * in_channels)), (3, 3, in_channels, out_channels))
    kernel -= kernel.mean(axis=(0, 1, 2), keepdims=True)
    binomial = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    smooth = np.zeros((5, 5, in_channels, out_channels))
    for dy in range(3):  # full 2-D convolution of every filter with the binomial
        for dx in range(3):
            smooth[dy : dy + 3, dx : dx + 3] += binomial[dy, dx] * kernel
    return smooth.astype(np.float32)
