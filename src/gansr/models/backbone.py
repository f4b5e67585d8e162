"""Frozen feature backbone for the perceptual (and Gram style) losses.

VGG19 with ImageNet weights is the standard choice (Johnson et al. 2016,
Ledig et al. 2017). Its weights come from a hub, so offline the backbone falls
back to a fixed random-filter CNN, which still carries the local texture
statistics that perceptual and Gram losses compare (He et al. 2016,
"Powerful and efficient texture synthesis with random shallow networks").
The switch is never silent: it is logged as a warning and reported to MLflow.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import keras
import tensorflow as tf

from gansr.errors import ConfigError, GansrError

log = logging.getLogger(__name__)

VGG19_NOTOP_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
# ReLU outputs of the last conv of blocks 2, 3 and 4: fine-to-coarse features.
VGG19_LAYERS = ("block2_conv2", "block3_conv4", "block4_conv4")
# VGG19 was trained on caffe-style inputs: BGR in [0, 255] minus this mean.
VGG19_BGR_MEAN = (103.939, 116.779, 123.68)
RANDOM_FILTER_SEED = 1234
RANDOM_FILTER_CHANNELS = (32, 64, 128)


class Backbone:
    """A frozen feature extractor: RGB batch in [0, 1] → list of feature maps."""

    def __init__(self, taps: keras.Model, kind: str) -> None:
        taps.trainable = False
        self.taps = taps
        self.kind = kind  # "vgg19" or "random"

    def __call__(self, images: tf.Tensor) -> list[tf.Tensor]:
        images = tf.cast(images, tf.float32)
        if self.kind == "vgg19":
            images = images[..., ::-1] * 255.0 - tf.constant(VGG19_BGR_MEAN)
        return [tf.cast(f, tf.float32) for f in self.taps(images, training=False)]


def keras_cached_vgg19() -> Path:
    """Where ``keras.applications.VGG19`` caches its no-top ImageNet weights."""
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return keras_home / "models" / VGG19_NOTOP_FILE


def build_backbone(kind: str, weights_path: str = "") -> Backbone:
    """Build the backbone named by ``loss.backbone`` (auto | vgg19 | random)."""
    if kind == "random":
        return Backbone(random_filter_cnn(), "random")
    weights = Path(weights_path) if weights_path else keras_cached_vgg19()
    if weights_path and not weights.is_file():
        raise ConfigError(f"loss.vgg19_weights: no such file {weights}")
    if weights.is_file():
        return Backbone(vgg19_taps(str(weights)), "vgg19")
    if kind == "vgg19":
        return Backbone(vgg19_taps("imagenet"), "vgg19")  # downloads into the Keras cache
    log.warning(
        "VGG19 ImageNet weights not found at %s and loss.backbone is 'auto': the "
        "perceptual loss uses the offline random-filter backbone. Put the weights "
        "there or set loss.vgg19_weights to use VGG19.", weights,
    )
    return Backbone(random_filter_cnn(), "random")


def vgg19_taps(weights: str) -> keras.Model:
    """VGG19 feature taps; ``weights`` is an .h5 path or ``"imagenet"`` (download)."""
    try:
        vgg = keras.applications.VGG19(include_top=False, weights=weights)
    except Exception as exc:  # hub unreachable or a damaged weights file
        raise GansrError(f"cannot load VGG19 weights from {weights}: {exc}") from exc
    return keras.Model(vgg.input, [vgg.get_layer(n).output for n in VGG19_LAYERS])


def random_filter_cnn() -> keras.Model:
    """A fixed, seeded random ReLU CNN with taps at strides 1, 2 and 4."""
    image = keras.Input(shape=(None, None, 3))
    x = keras.layers.Rescaling(2.0, offset=-1.0)(image)  # centre inputs on zero
    features = []
    for i, channels in enumerate(RANDOM_FILTER_CHANNELS):
        if i:
            x = keras.layers.AveragePooling2D(2)(x)
        x = keras.layers.Conv2D(
            channels, 3, padding="same", activation="relu",
            kernel_initializer=keras.initializers.HeNormal(seed=RANDOM_FILTER_SEED + i),
            name=f"random_conv{i}",
        )(x)
        features.append(x)
    return keras.Model(image, features, name="random_features")
