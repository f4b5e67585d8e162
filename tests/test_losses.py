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


def test_gram_matrix_of_a_known_feature_map() -> None:
    features = tf.constant(np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2))
    # channels: a = [0, 2, 4, 6], b = [1, 3, 5, 7]; G = F^T F / 4
    expected = np.array([[56, 68], [68, 84]], np.float32) / 4
    np.testing.assert_allclose(losses.gram_matrix(features)[0], expected)


def test_style_loss_ignores_layout_but_not_texture() -> None:
    rng = np.random.default_rng(0)
    features = rng.random((1, 8, 8, 4)).astype(np.float32)
    shuffled = features[:, ::-1, ::-1]  # same statistics, different layout
    target = [losses.gram_matrix(tf.constant(features))]
    assert float(losses.gram_style_loss([tf.constant(shuffled)], target)) == pytest.approx(0, abs=1e-6)
    assert float(losses.gram_style_loss([tf.constant(features * 2)], target)) > 0.1


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
