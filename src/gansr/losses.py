"""Generator and discriminator losses, as pure functions of tensors.

All losses are computed in float32, whatever the training precision.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from gansr.metrics import Y_WEIGHTS

BatchMean = Callable[[tf.Tensor], tf.Tensor]
ARTIFACT_WINDOW = 7  # pixels: the neighbourhood whose residual variance marks an artifact


def pixel_loss(sr: tf.Tensor, hr: tf.Tensor, kind: str = "l1") -> tf.Tensor:
    """L_resolution: mean |G(x_LR) − x_HR| (l1) or mean (G(x_LR) − x_HR)² (l2)."""
    diff = tf.cast(sr, tf.float32) - tf.cast(hr, tf.float32)
    return tf.reduce_mean(tf.abs(diff) if kind == "l1" else tf.square(diff))


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


def coarse_luminance_loss(styled: tf.Tensor, reference: tf.Tensor, scale: int) -> tf.Tensor:
    """Mean |Y(styled) − Y(reference)| after averaging over ``scale``×``scale`` blocks.

    Keeps a styled image's light and shade where the LR input has them, so
    its content stays readable, while leaving texture finer than an LR pixel
    and colour (chroma) free for the style: luminance-only transfer in the
    spirit of Gatys et al. (2017, "Controlling perceptual factors in neural
    style transfer").
    """
    def coarse_luma(image: tf.Tensor) -> tf.Tensor:
        return tf.nn.avg_pool2d(luma(image), scale, scale, "VALID")

    return tf.reduce_mean(tf.abs(coarse_luma(styled) - coarse_luma(reference)))


def luma(images: tf.Tensor) -> tf.Tensor:
    """[..., 3] RGB -> [..., 1] luma, BT.601 weights (0.299, 0.587, 0.114) without the metrics' offset and range."""
    weights = tf.constant(Y_WEIGHTS / Y_WEIGHTS.sum(), tf.float32)
    return tf.reduce_sum(tf.cast(images, tf.float32) * weights, axis=-1, keepdims=True)


def fine_detail(images: tf.Tensor, scale: int) -> tf.Tensor:
    """The luma finer than an LR pixel, as grey RGB around 0.5: Y minus its ``scale``×``scale`` block means.

    The block means are bilinearly upsampled before the subtraction, so the
    split leaves no block edges. A texture drawn in this band changes little of
    what :func:`coarse_luminance_loss` keeps, so texture and content stop
    pulling against each other.
    """
    y = luma(images)
    coarse = tf.nn.avg_pool2d(y, scale, scale, "SAME")
    detail = y - tf.image.resize(coarse, tf.shape(y)[1:3], "bilinear")
    return tf.repeat(detail + 0.5, 3, axis=-1)


def sorted_projections(samples: tf.Tensor, directions: tf.Tensor | None = None) -> tf.Tensor:
    """[..., N, C] samples projected on C×K unit ``directions`` and sorted: [..., K, N].

    Without directions, each of the C channels is its own direction (K = C).
    """
    samples = tf.cast(samples, tf.float32)
    if directions is None:
        projected = tf.linalg.matrix_transpose(samples)
    else:
        projected = tf.einsum("...nc,ck->...kn", samples, directions)
    return tf.sort(projected, axis=-1)


def quantiles(sorted_values: tf.Tensor, count: int | tf.Tensor) -> tf.Tensor:
    """``count`` evenly spaced quantiles (at the midpoints of equal-mass bins) of sorted values [..., N]."""
    n = tf.shape(sorted_values)[-1]
    ranks = (tf.range(count, dtype=tf.float32) + 0.5) * tf.cast(n, tf.float32) / tf.cast(count, tf.float32)
    return tf.gather(sorted_values, tf.cast(ranks, tf.int32), axis=-1)


def sliced_wasserstein_distances(samples: tf.Tensor, target_quantiles: tf.Tensor,
                                 directions: tf.Tensor | None = None) -> tf.Tensor:
    """[B]: sliced 1-Wasserstein distance between each image's samples and its target distribution.

    ``samples`` [B, N, C] (e.g. the pixels' colours), ``target_quantiles`` [B, K, Q]
    the target's sorted projections on the K ``directions`` (see :func:`quantiles`).
    The distance along a direction is the mean gap between the two sorted
    projections (Rabin et al. 2011; Heitz et al. 2021 for textures). Unlike a
    Gram matrix it compares whole distributions, so a ring of saturated hues
    is not matched by a grey cloud of the same covariance.
    """
    return tf.reduce_mean(_sorted_gaps(samples, target_quantiles, directions), axis=[1, 2])


def sliced_wasserstein_loss(samples: tf.Tensor, target_quantiles: tf.Tensor,
                            directions: tf.Tensor | None = None) -> tf.Tensor:
    """The batch's mean :func:`sliced_wasserstein_distances`."""
    return tf.reduce_mean(_sorted_gaps(samples, target_quantiles, directions))


def _sorted_gaps(samples: tf.Tensor, target_quantiles: tf.Tensor, directions: tf.Tensor | None) -> tf.Tensor:
    """[B, K, N]: |sorted projections of ``samples`` − the target's quantiles at the same ranks|."""
    ours = sorted_projections(samples, directions)
    return tf.abs(ours - quantiles(target_quantiles, tf.shape(ours)[-1]))


def draw_positions(samples: tf.Tensor, positions: int, seed: tf.Tensor) -> tf.Tensor:
    """[B, N, C] ``samples``, or ``positions`` of the N drawn at random (stateless, from ``seed``) if N is larger.

    Sorting dominates the cost of a sliced Wasserstein distance, and a sample
    of a thousand positions still estimates the distribution.
    """
    count = tf.shape(samples)[1]
    if samples.shape[1] is not None and samples.shape[1] <= positions:
        return samples
    drawn = tf.random.stateless_uniform([positions], seed, 0, count, dtype=tf.int32)
    return tf.cond(count > positions, lambda: tf.gather(samples, drawn, axis=1), lambda: samples)


def texture_distribution_loss(features: list[tf.Tensor], target_quantiles: list[tf.Tensor],
                              target_scales: list[tf.Tensor], positions: int, seed: tf.Tensor) -> tf.Tensor:
    """L_texture: per layer, the sliced Wasserstein distance of the feature responses to the style's.

    Each feature map [B, H, W, C] is C distributions of filter responses over
    positions; random filters are themselves random directions in patch space,
    so this is the sliced Wasserstein texture loss of Heitz et al. (2021). A
    layer with more than ``positions`` positions is compared on that many
    (:func:`draw_positions`, from ``seed`` + the layer's index). Each image's
    distance in a layer is divided by its ``target_scales`` entry for that
    layer ([B], e.g. the mean response of its target), so layers and targets
    of any strength weigh alike; the mean over images and layers is returned.
    """
    per_layer = []
    for index, (layer, target, target_scale) in enumerate(zip(features, target_quantiles, target_scales)):
        samples = draw_positions(tf.reshape(layer, [tf.shape(layer)[0], -1, tf.shape(layer)[-1]]),
                                 positions, seed + index)
        distance = sliced_wasserstein_distances(samples, target)
        per_layer.append(tf.reduce_mean(distance / (target_scale + 1e-6)))
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
