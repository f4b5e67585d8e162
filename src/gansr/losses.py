"""Generator and discriminator losses, as pure functions of tensors.

All losses are computed in float32, whatever the training precision.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from gansr.metrics import Y_WEIGHTS

BatchMean = Callable[[tf.Tensor], tf.Tensor]


def pixel_loss(sr: tf.Tensor, hr: tf.Tensor, kind: str = "l1") -> tf.Tensor:
    """L_resolution: mean |G(x_LR) − x_HR| (l1) or mean (G(x_LR) − x_HR)² (l2)."""
    diff = tf.cast(sr, tf.float32) - tf.cast(hr, tf.float32)
    return tf.reduce_mean(tf.abs(diff) if kind == "l1" else tf.square(diff))


def perceptual_loss(sr_features: list[tf.Tensor], hr_features: list[tf.Tensor]) -> tf.Tensor:
    """L_content: mean L1 distance between backbone features (Johnson et al. 2016)."""
    return tf.add_n([tf.reduce_mean(tf.abs(s - h)) for s, h in zip(sr_features, hr_features)]) / len(
        sr_features
    )


def coarse_luminance_loss(styled: tf.Tensor, reference: tf.Tensor, scale: int) -> tf.Tensor:
    """Mean |Y(styled) − Y(reference)| after averaging over ``scale``×``scale`` blocks.

    Keeps a styled image's light and shade where the LR input has them, so
    its content stays readable, while leaving texture finer than an LR pixel
    and colour (chroma) free for the style: luminance-only transfer in the
    spirit of Gatys et al. (2017, "Controlling perceptual factors in neural
    style transfer"). Y uses the BT.601 weights of the SR metrics, without their offset and range.
    """
    weights = tf.constant(Y_WEIGHTS / Y_WEIGHTS.sum(), tf.float32)  # 0.299, 0.587, 0.114

    def coarse_luma(image: tf.Tensor) -> tf.Tensor:
        luma = tf.reduce_sum(tf.cast(image, tf.float32) * weights, axis=-1, keepdims=True)
        return tf.nn.avg_pool2d(luma, scale, scale, "VALID")

    return tf.reduce_mean(tf.abs(coarse_luma(styled) - coarse_luma(reference)))


def gram_matrix(features: tf.Tensor) -> tf.Tensor:
    """G_ij = Σ_xy F_xyi F_xyj / (H·W): channel co-activations (Gatys et al. 2016)."""
    height_width = tf.cast(tf.shape(features)[1] * tf.shape(features)[2], tf.float32)
    return tf.einsum("bxyi,bxyj->bij", features, features) / height_width


def gram_style_loss(sr_features: list[tf.Tensor], style_grams: list[tf.Tensor]) -> tf.Tensor:
    """L_style: distance between the Gram matrices G of G(x) and A of the style image.

    Per layer log(1 + ‖G − A‖²_F / ‖A‖²_F), averaged over layers and images:
    Gatys et al.'s (2016) squared Gram distance, relative to the target so
    layers of any width weigh alike, on a log scale so that a style whose
    statistics lie far from a photo's (a low-contrast grey texture, 100×
    off) does not drown out one that lies near (a colour palette, 0.5×).
    """
    per_layer = []
    for features, target in zip(sr_features, style_grams):
        squared = tf.reduce_sum(tf.square(gram_matrix(features) - target), axis=[-2, -1])
        per_layer.append(tf.reduce_mean(tf.math.log1p(squared / tf.reduce_sum(tf.square(target), axis=[-2, -1]))))
    return tf.add_n(per_layer) / len(per_layer)


def discriminator_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor,
                       gan_type: str = "relativistic", batch_mean: BatchMean = tf.reduce_mean) -> tf.Tensor:
    """D's loss on logits; ``softplus(-x) = −log σ(x)`` keeps it numerically stable.

    relativistic (ESRGAN, Wang et al. 2018): D judges whether real is more
    realistic than the average fake (``batch_mean``: over all replicas when
    training is distributed), and vice versa.
    nonsaturating (Goodfellow et al. 2014): −log D(x) − log(1 − D(G(z))).
    """
    real, fake = _relative(real_logits, fake_logits, gan_type, batch_mean)
    return tf.reduce_mean(tf.nn.softplus(-real)) + tf.reduce_mean(tf.nn.softplus(fake))


def generator_adversarial_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor,
                               gan_type: str = "relativistic", batch_mean: BatchMean = tf.reduce_mean) -> tf.Tensor:
    """L_adv for G: the discriminator's loss with the labels swapped."""
    real, fake = _relative(real_logits, fake_logits, gan_type, batch_mean)
    if gan_type == "relativistic":
        return tf.reduce_mean(tf.nn.softplus(real)) + tf.reduce_mean(tf.nn.softplus(-fake))
    return tf.reduce_mean(tf.nn.softplus(-fake))  # non-saturating: −log D(G(z))


def _relative(real_logits: tf.Tensor, fake_logits: tf.Tensor, gan_type: str,
              batch_mean: BatchMean) -> tuple[tf.Tensor, tf.Tensor]:
    real = tf.cast(real_logits, tf.float32)
    fake = tf.cast(fake_logits, tf.float32)
    if gan_type == "relativistic":
        return real - batch_mean(fake), fake - batch_mean(real)
    return real, fake
