"""Each loss against a hand-computed value or a property it must have."""

import numpy as np
import pytest
import tensorflow as tf

from gansr import losses


def test_pixel_losses() -> None:
    sr = tf.constant([[0.0, 1.0], [2.0, 3.0]])
    hr = tf.zeros_like(sr)
    assert float(losses.pixel_loss(sr, hr, "l1")) == pytest.approx(1.5)
    assert float(losses.pixel_loss(sr, hr, "l2")) == pytest.approx(3.5)


def test_perceptual_loss_is_mean_abs_feature_distance() -> None:
    a = [tf.ones((1, 2, 2, 3)), tf.zeros((1, 1, 1, 2))]
    b = [tf.zeros((1, 2, 2, 3)), tf.ones((1, 1, 1, 2)) * 3]
    assert float(losses.perceptual_loss(a, b)) == pytest.approx((1 + 3) / 2)


@pytest.mark.parametrize("gan_type", ["relativistic", "nonsaturating"])
def test_adversarial_losses_are_stable_and_point_the_right_way(gan_type: str) -> None:
    confident_real = tf.constant([[50.0], [60.0]])
    confident_fake = tf.constant([[-70.0], [-80.0]])
    d_good = losses.discriminator_loss(confident_real, confident_fake, gan_type)
    g_fooled = losses.generator_adversarial_loss(confident_real, confident_fake, gan_type)
    assert np.isfinite(float(d_good)) and np.isfinite(float(g_fooled))  # no log(0)
    assert float(d_good) < 1e-6  # D is right: no loss
    assert float(g_fooled) > 10  # G is caught: large loss
    # Swapped logits: D is fooled.
    assert float(losses.discriminator_loss(confident_fake, confident_real, gan_type)) > 10


def test_nonsaturating_discriminator_loss_value() -> None:
    zero = tf.zeros((4, 1))
    assert float(losses.discriminator_loss(zero, zero, "nonsaturating")) == pytest.approx(2 * np.log(2))


def test_coarse_luminance_loss_ignores_fine_texture_and_colour_but_not_light_and_shade() -> None:
    rng = np.random.default_rng(0)
    image = tf.constant(rng.random((1, 16, 16, 3)) * 0.5 + 0.25, tf.float32)
    checker = np.indices((16, 16)).sum(axis=0) % 2 * 0.2 - 0.1  # zero mean in every 4×4 block
    textured = image + tf.constant(checker[None, ..., None], tf.float32)
    # A chroma shift: red up, green down by the amounts that keep BT.601 luma.
    recoloured = image + tf.constant([0.1, -0.1 * 0.299 / 0.587, 0.0], tf.float32)
    brighter = image + 0.1
    assert float(losses.coarse_luminance_loss(textured, image, 4)) < 1e-6
    assert float(losses.coarse_luminance_loss(recoloured, image, 4)) < 1e-6
    assert float(losses.coarse_luminance_loss(brighter, image, 4)) == pytest.approx(0.1, abs=1e-5)


def test_fine_detail_keeps_texture_finer_than_an_lr_pixel_and_drops_light_and_shade() -> None:
    ramp = np.linspace(0.2, 0.8, 32)[None, :, None] * np.ones((32, 1, 3))  # light and shade only
    checker = np.indices((32, 32)).sum(axis=0) % 2 * 0.2 - 0.1
    image = tf.constant(ramp[None], tf.float32)
    textured = tf.constant((ramp + checker[..., None])[None], tf.float32)
    smooth = losses.fine_detail(image, 4).numpy()[0, 4:-4, 4:-4]  # away from the edges' padding
    assert smooth.shape[-1] == 3 and np.abs(smooth - 0.5).max() < 0.01  # grey, centred on 0.5
    detail = losses.fine_detail(textured, 4).numpy()[0, 4:-4, 4:-4, 0]
    np.testing.assert_allclose(detail - smooth[..., 0], checker[4:-4, 4:-4], atol=1e-6)  # all of the texture


def test_sliced_wasserstein_tells_a_ring_of_hues_from_a_grey_cloud_of_the_same_covariance() -> None:
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(3, 8))
    directions = tf.constant(directions / np.linalg.norm(directions, axis=0), tf.float32)
    angle = rng.uniform(0, 2 * np.pi, 4096)
    ring = np.stack([np.cos(angle), np.sin(angle), np.zeros_like(angle)], axis=-1) * 0.4 + 0.5
    # A Gaussian cloud with the ring's mean and covariance.
    cloud = rng.normal(size=ring.shape) * [0.4 / np.sqrt(2), 0.4 / np.sqrt(2), 0.0] + 0.5
    target = losses.quantiles(losses.sorted_projections(tf.constant(ring[None]), directions), 256)
    shuffled = rng.permutation(ring)  # the same colours in another layout
    same = float(losses.sliced_wasserstein_loss(tf.constant(shuffled[None]), target, directions))
    grey = float(losses.sliced_wasserstein_loss(tf.constant(cloud[None]), target, directions))
    assert same < 0.005
    assert grey > 5 * same

    # ... though their means and covariances (all a Gram matrix of [rgb, 1] holds) agree.
    np.testing.assert_allclose(cloud.mean(axis=0), ring.mean(axis=0), atol=0.01)
    np.testing.assert_allclose(np.cov(cloud.T), np.cov(ring.T), atol=0.01)


def test_texture_distribution_loss_ignores_layout_is_relative_and_samples_deterministically() -> None:
    rng = np.random.default_rng(1)
    responses = np.maximum(rng.normal(size=(1, 64, 64, 4)), 0).astype(np.float32)  # like ReLU filter outputs
    target = [losses.quantiles(losses.sorted_projections(tf.constant(responses.reshape(1, -1, 4))), 256)]

    scale = [tf.reduce_mean(tf.abs(target[0]), axis=[1, 2])]

    def loss(features: np.ndarray, positions: int = 1024) -> float:
        return float(losses.texture_distribution_loss([tf.constant(features)], target, scale, positions,
                                                      tf.constant([3, 0])))

    assert loss(responses[:, ::-1, ::-1], positions=4096) < 0.01  # same responses, another layout
    assert loss(responses) < 0.05  # 1024 of 4096 positions still estimate the distribution
    assert loss(2 * responses) == pytest.approx(1.0, abs=0.1)  # |2x − x| relative to the target's mean |x|
    assert loss(2 * responses) == loss(2 * responses)  # the positions drawn depend on the seed alone


def test_draw_positions_samples_only_what_exceeds_the_budget() -> None:
    samples = tf.reshape(tf.range(2 * 50 * 3, dtype=tf.float32), [2, 50, 3])
    assert losses.draw_positions(samples, 64, tf.constant([0, 0])) is samples  # within the budget: all
    drawn = losses.draw_positions(samples, 20, tf.constant([5, 0]))
    assert drawn.shape == (2, 20, 3)
    np.testing.assert_array_equal(drawn, losses.draw_positions(samples, 20, tf.constant([5, 0])))
    # The same positions in every image of the batch, each a whole [C] sample.
    np.testing.assert_array_equal(drawn[1] - drawn[0], np.full((20, 3), 150.0))
    assert not np.array_equal(drawn, losses.draw_positions(samples, 20, tf.constant([6, 0])))
    # Inside a traced function the count is unknown until run time.
    traced = tf.function(lambda x: losses.draw_positions(x, 20, tf.constant([5, 0])),
                         input_signature=[tf.TensorSpec([None, None, 3])])
    np.testing.assert_array_equal(traced(samples), drawn)
    assert traced(samples[:, :10]).shape == (2, 10, 3)


def test_artifact_loss_weighs_an_error_that_flickers_not_one_that_is_steady() -> None:
    hr = tf.constant(np.linspace(0.2, 0.8, 32 * 32 * 3, dtype=np.float32).reshape(1, 32, 32, 3))
    streaks = np.zeros((1, 32, 32, 3), np.float32)
    streaks[:, ::3] = 0.1  # a bright line every third row, as the GAN's streaks
    offset = np.full_like(streaks, float(streaks.mean()))  # the same mean error, spread evenly

    def artifact(sr: np.ndarray, sr_ema: tf.Tensor = hr) -> float:
        return float(losses.artifact_loss(hr + sr, hr, sr_ema))

    assert artifact(streaks) > 1e-4
    assert artifact(offset) < 1e-9  # the same |error| on average, but steady: no artifact
    assert artifact(0 * streaks) == 0.0
    # Where the generator is nearer HR than its EMA it is learning detail: not penalised.
    assert artifact(streaks / 2, hr + streaks) == 0.0
    # The map only weighs the error: the gradient pulls the output towards HR on the streaks alone.
    sr = tf.Variable(hr + streaks)
    with tf.GradientTape() as tape:
        loss = losses.artifact_loss(sr, hr, hr)
    gradient = tape.gradient(loss, sr).numpy()
    assert (gradient[:, ::3] > 0).all() and np.abs(np.delete(gradient, np.s_[::3], axis=1)).max() == 0


def test_local_variance_is_the_unbiased_variance_of_each_window() -> None:
    images = np.random.default_rng(2).random((2, 9, 8, 1)).astype(np.float32)
    got = losses.local_variance(tf.constant(images), 3).numpy()
    padded = np.pad(images, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="reflect")
    np.testing.assert_allclose(got[1, 4, 5, 0], padded[1, 4:7, 5:8, 0].var(ddof=1), rtol=1e-4)
    np.testing.assert_allclose(got[0, 0, 0, 0], padded[0, 0:3, 0:3, 0].var(ddof=1), rtol=1e-4)  # reflected
    assert got.shape == images.shape
