"""Generator and discriminator losses of super-resolution training, as pure functions of tensors.

The style branch's own losses are in :mod:`gansr.style.losses`.

All losses are computed in float32, whatever the training precision.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

BatchMean = Callable[[tf.Tensor], tf.Tensor]
ARTIFACT_WINDOW = 7  # pixels: the neighbourhood whose residual variance marks an artifact
LOG_FLOOR = 1e-3  # of the mean absolute error in [0, 1] units: a quarter of a grey level


def pixel_loss(sr: tf.Tensor, hr: tf.Tensor, kind: str = "l1") -> tf.Tensor:
    """L_resolution: mean |G(x_LR) − x_HR| (l1) or mean (G(x_LR) − x_HR)² (l2)."""
    diff = tf.cast(sr, tf.float32) - tf.cast(hr, tf.float32)
    return tf.reduce_mean(tf.abs(diff) if kind == "l1" else tf.square(diff))


def balanced_pixel_loss(sr: tf.Tensor, hr: tf.Tensor, kind: str = "l1") -> tf.Tensor:
    """The mean over crops of the log of each crop's own pixel loss (plus a floor).

    When crops are degraded to different degrees, the plain mean is ruled by
    the worst (the noisiest) ones, and the generator learns to smooth every
    input, clean detail included. On a log scale, halving a clean crop's
    error counts as much as halving a noisy one's, as each image's PSNR
    counts once in a mean PSNR (HINet's PSNR loss, Chen et al. 2021). The
    floor, 1/1000 (l1) or its square (l2), keeps a perfect crop finite.
    """
    diff = tf.cast(sr, tf.float32) - tf.cast(hr, tf.float32)
    error = tf.reduce_mean(tf.abs(diff) if kind == "l1" else tf.square(diff), axis=[1, 2, 3])
    return tf.reduce_mean(tf.math.log(error + (LOG_FLOOR if kind == "l1" else LOG_FLOOR ** 2)))


def artifact_loss(sr: tf.Tensor, hr: tf.Tensor, sr_ema: tf.Tensor, window: int = ARTIFACT_WINDOW) -> tf.Tensor:
    """L_artifact: the pixel error where the GAN draws artifacts, not detail (LDL; Liang et al. 2022).

    A GAN's false detail (streaks, ringing) shows as a residual HR − SR that
    varies a lot locally, where a real texture the generator cannot place
    exactly leaves a steadier one. The map weighs each pixel's error by the
    local variance of the residual (``window``² pixels) times the image's
    own residual variance to the power 1/5, and drops pixels where the
    generator already beats its EMA (whose outputs are more stable): there
    it is learning detail, not making artifacts. The map is a weight, not a
    path for gradients.
    """
    sr, hr, sr_ema = (tf.cast(t, tf.float32) for t in (sr, hr, sr_ema))
    residual = tf.reduce_sum(tf.abs(hr - sr), axis=-1, keepdims=True)
    residual_ema = tf.reduce_sum(tf.abs(hr - sr_ema), axis=-1, keepdims=True)
    per_image = tf.math.reduce_variance(residual, axis=[1, 2, 3], keepdims=True) ** 0.2
    artifact_map = tf.where(residual < residual_ema, 0.0, per_image * local_variance(residual, window))
    return tf.reduce_mean(tf.abs(tf.stop_gradient(artifact_map) * (sr - hr)))


def local_variance(images: tf.Tensor, window: int) -> tf.Tensor:
    """Unbiased variance of each ``window``×``window`` neighbourhood (reflected at the borders), [B, H, W, C]."""
    pad = window // 2
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    mean = tf.nn.avg_pool2d(padded, window, 1, "VALID")
    mean_square = tf.nn.avg_pool2d(tf.square(padded), window, 1, "VALID")
    count = window * window
    return tf.maximum(mean_square - tf.square(mean), 0.0) * count / (count - 1)


def perceptual_loss(sr_features: list[tf.Tensor], hr_features: list[tf.Tensor]) -> tf.Tensor:
    """L_content: mean L1 distance between backbone features (Johnson et al. 2016)."""
    return tf.add_n([tf.reduce_mean(tf.abs(s - h)) for s, h in zip(sr_features, hr_features)]) / len(
        sr_features
    )


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
