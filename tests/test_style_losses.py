"""The style branch's losses and their targets: each against a hand-computed value or a property it must have."""

import numpy as np
import pytest
import tensorflow as tf

from gansr.config import StyleConfig
from gansr.models.backbone import build_backbone
from gansr.style.distributions import draw_positions, quantiles, sliced_wasserstein_loss, sorted_projections
from gansr.style.images import load_styles
from gansr.style.losses import (
    PALETTE_DIRECTIONS,
    PALETTE_QUANTILES,
    fine_detail,
    style_losses,
    style_targets,
    texture_distribution_loss,
    texture_strength,
)


def test_fine_detail_keeps_what_an_lr_image_cannot_hold_and_drops_light_and_shade() -> None:
    ramp = np.linspace(0.2, 0.8, 32)[None, :, None] * np.ones((32, 1, 3))  # light and shade only
    checker = np.indices((32, 32)).sum(axis=0) % 2 * 0.2 - 0.1
    image = tf.constant(ramp[None], tf.float32)
    textured = tf.constant((ramp + checker[..., None])[None], tf.float32)
    smooth = fine_detail(image, 4).numpy()[0, 4:-4, 4:-4]  # away from the edges' padding
    assert smooth.shape[-1] == 3 and np.abs(smooth - 0.5).max() < 0.01  # grey, centred on 0.5
    detail = fine_detail(textured, 4).numpy()[0, 4:-4, 4:-4, 0]
    np.testing.assert_allclose(detail - smooth[..., 0], checker[4:-4, 4:-4], atol=1e-3)  # all of the texture


def test_sliced_wasserstein_tells_a_ring_of_hues_from_a_grey_cloud_of_the_same_covariance() -> None:
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(3, 8))
    directions = tf.constant(directions / np.linalg.norm(directions, axis=0), tf.float32)
    angle = rng.uniform(0, 2 * np.pi, 4096)
    ring = np.stack([np.cos(angle), np.sin(angle), np.zeros_like(angle)], axis=-1) * 0.4 + 0.5
    # A Gaussian cloud with the ring's mean and covariance.
    cloud = rng.normal(size=ring.shape) * [0.4 / np.sqrt(2), 0.4 / np.sqrt(2), 0.0] + 0.5
    target = quantiles(sorted_projections(tf.constant(ring[None]), directions), 256)
    shuffled = rng.permutation(ring)  # the same colours in another layout
    same = float(sliced_wasserstein_loss(tf.constant(shuffled[None]), target, directions))
    grey = float(sliced_wasserstein_loss(tf.constant(cloud[None]), target, directions))
    assert same < 0.005
    assert grey > 5 * same

    # ... though their means and covariances (all a Gram matrix of [rgb, 1] holds) agree.
    np.testing.assert_allclose(cloud.mean(axis=0), ring.mean(axis=0), atol=0.01)
    np.testing.assert_allclose(np.cov(cloud.T), np.cov(ring.T), atol=0.01)


def test_texture_distribution_loss_ignores_layout_is_relative_and_samples_deterministically() -> None:
    rng = np.random.default_rng(1)
    responses = np.maximum(rng.normal(size=(1, 64, 64, 4)), 0).astype(np.float32)  # like ReLU filter outputs
    target = [quantiles(sorted_projections(tf.constant(responses.reshape(1, -1, 4))), 256)]

    scale = [tf.reduce_mean(tf.abs(target[0]), axis=[1, 2])]

    def loss(features: np.ndarray, positions: int = 1024) -> float:
        return float(texture_distribution_loss([tf.constant(features)], target, scale, positions,
                                                      tf.constant([3, 0])))

    assert loss(responses[:, ::-1, ::-1], positions=4096) < 0.01  # same responses, another layout
    assert loss(responses) < 0.05  # 1024 of 4096 positions still estimate the distribution
    assert loss(2 * responses) == pytest.approx(1.0, abs=0.1)  # |2x − x| relative to the target's mean |x|
    assert loss(2 * responses) == loss(2 * responses)  # the positions drawn depend on the seed alone


def test_draw_positions_samples_only_what_exceeds_the_budget() -> None:
    samples = tf.reshape(tf.range(2 * 50 * 3, dtype=tf.float32), [2, 50, 3])
    assert draw_positions(samples, 64, tf.constant([0, 0])) is samples  # within the budget: all
    drawn = draw_positions(samples, 20, tf.constant([5, 0]))
    assert drawn.shape == (2, 20, 3)
    np.testing.assert_array_equal(drawn, draw_positions(samples, 20, tf.constant([5, 0])))
    # The same positions in every image of the batch, each a whole [C] sample.
    np.testing.assert_array_equal(drawn[1] - drawn[0], np.full((20, 3), 150.0))
    assert not np.array_equal(drawn, draw_positions(samples, 20, tf.constant([6, 0])))
    # Inside a traced function the count is unknown until run time.
    traced = tf.function(lambda x: draw_positions(x, 20, tf.constant([5, 0])),
                         input_signature=[tf.TensorSpec([None, None, 3])])
    np.testing.assert_array_equal(traced(samples), drawn)
    assert traced(samples[:, :10]).shape == (2, 10, 3)


def test_targets_stack_quantiles_per_style_and_score_each_style_nearest_to_itself() -> None:
    styles = load_styles(StyleConfig(image_size=64))
    backbone = build_backbone("random")
    targets = style_targets(backbone, styles, scale=4)
    # Four pyramid levels of 64 random filters; chroma directions orthogonal to grey.
    assert [tuple(t.shape) for t in targets.textures] == [(3, 64, PALETTE_QUANTILES)] * 4
    assert tuple(targets.palettes.shape) == (3, PALETTE_DIRECTIONS, PALETTE_QUANTILES)
    np.testing.assert_allclose(tf.reduce_sum(targets.directions, axis=0), 0, atol=1e-6)
    seed = tf.constant([0, 0])
    for own, style in enumerate(styles, start=1):
        image = tf.constant(style.image[None], tf.float32) / 255.0
        terms = [[float(term) for term in style_losses(backbone, image, targets, tf.constant([s]), seed)]
                  for s in range(1, len(styles) + 1)]
        textures, palettes = zip(*terms)
        assert int(np.argmin(textures)) == own - 1
        assert palettes[own - 1] < 0.02 < max(palettes)  # its own colours, up to 1024 drawn pixels' noise
    # Gravel and brick are grey: no chroma; the colour wheel is all chroma.
    assert float(tf.reduce_max(tf.abs(targets.palettes[:2]))) < 0.05 < float(tf.reduce_max(targets.palettes[2]))


def test_each_style_pulls_relative_to_its_own_texture_strength_floored_at_the_mean() -> None:
    # Three styles' quantiles: responses of mean size 6, 2 and 1 (mean of the three: 3).
    layer = tf.constant(np.stack([np.full((2, 8), v, np.float32) for v in (6.0, -2.0, 1.0)]))
    np.testing.assert_allclose(texture_strength(layer), [6.0, 3.0, 3.0])
    # The same, layer by layer, on the built-in styles' targets.
    styles = load_styles(StyleConfig(image_size=64))
    targets = style_targets(build_backbone("random"), styles, scale=4)
    for layer in targets.textures:
        own = tf.reduce_mean(tf.abs(layer), axis=[1, 2]).numpy()
        np.testing.assert_allclose(texture_strength(layer), np.maximum(own, own.mean()), rtol=1e-6)
