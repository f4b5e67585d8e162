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


@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_balanced_pixel_loss_counts_each_crop_by_its_relative_error(kind: str) -> None:
    hr = tf.zeros((2, 4, 4, 3))
    clean_error, noisy_error = 0.01, 0.2  # one crop almost right, one far off

    def both(loss, clean: float, noisy: float) -> float:
        sr = tf.stack([tf.fill((4, 4, 3), clean), tf.fill((4, 4, 3), noisy)])
        return float(loss(sr, hr, kind))

    floor = losses.LOG_FLOOR if kind == "l1" else losses.LOG_FLOOR ** 2
    power = 1 if kind == "l1" else 2
    expected = np.mean(np.log([clean_error ** power + floor, noisy_error ** power + floor]))
    assert both(losses.balanced_pixel_loss, clean_error, noisy_error) == pytest.approx(expected, rel=1e-5)
    # Halving the clean crop's error gains about as much as halving the noisy one's (the floor aside) ...
    start = both(losses.balanced_pixel_loss, clean_error, noisy_error)
    clean_gain = start - both(losses.balanced_pixel_loss, clean_error / 2, noisy_error)
    noisy_gain = start - both(losses.balanced_pixel_loss, clean_error, noisy_error / 2)
    assert clean_gain == pytest.approx(noisy_gain, rel=0.2)
    # ... where the plain mean rewards the noisy crop many times more.
    plain = both(losses.pixel_loss, clean_error, noisy_error)
    plain_clean = plain - both(losses.pixel_loss, clean_error / 2, noisy_error)
    plain_noisy = plain - both(losses.pixel_loss, clean_error, noisy_error / 2)
    assert plain_noisy > 10 * plain_clean


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
