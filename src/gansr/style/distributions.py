"""Distances between distributions for the style losses: sliced Wasserstein.

An image's colours or a feature map's responses are samples of a
distribution; sorting their projections on a few directions compares whole
distributions at the cost of a sort (Rabin et al. 2011; Heitz et al. 2021
for textures).
"""

from __future__ import annotations

import tensorflow as tf


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

