"""Generator, discriminator and backbone at tiny sizes."""

import json
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import skimage.data
import tensorflow as tf
from scipy import ndimage

from gansr.errors import ConfigError, GansrError
from gansr.inference import load_generator
from gansr.losses import perceptual_loss
from gansr.models.backbone import VGG19_NOTOP_FILE, build_backbone
from gansr.models.discriminator import build_discriminator
from gansr.models.generator import build_generator
from gansr.models.layers import EqualSubpixelGain


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_generator_is_fully_convolutional(scale: int) -> None:
    generator = build_generator(scale, channels=8, blocks=1)
    for height, width in [(7, 9), (16, 5)]:
        out = generator(np.zeros((2, height, width, 3), np.float32))
        assert out.shape == (2, height * scale, width * scale, 3)


def test_untrained_generator_is_exactly_bicubic() -> None:
    # The sub-pixel head starts at zero, so training starts from the bicubic skip.
    lr = np.random.default_rng(0).random((1, 10, 12, 3), np.float32)
    sr = build_generator(4, channels=8, blocks=2)(lr)
    bicubic = tf.image.resize(lr, (40, 48), method="bicubic")
    np.testing.assert_allclose(sr, bicubic, atol=1e-6)


def test_generator_reloads_with_safe_mode(tmp_path: Path) -> None:
    generator = build_generator(2, channels=8, blocks=1)
    generator.get_layer("to_subpixels").set_weights(
        [np.full(w.shape, 0.01, np.float32) for w in generator.get_layer("to_subpixels").get_weights()]
    )
    path = tmp_path / "g.keras"
    generator.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    lr = np.random.default_rng(1).random((1, 9, 11, 3), np.float32)
    np.testing.assert_allclose(reloaded(lr), generator(lr), atol=1e-6)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_sub_pixel_kernels_keep_equal_gain_through_training(scale: int) -> None:
    """After each optimizer step the s² phase kernels have one gain, so flat input comes out flat."""
    keras.utils.set_random_seed(scale)  # the same weights whichever tests ran before in this process
    generator = build_generator(scale, channels=8, blocks=1)
    rng = np.random.default_rng(scale)
    lr = tf.constant(rng.random((4, 8, 8, 3), np.float32))
    hr = tf.constant(rng.random((4, 8 * scale, 8 * scale, 3), np.float32))  # noise: a grid would help here
    optimizer = keras.optimizers.Adam(0.05)
    for _ in range(5):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(generator(lr) - hr))
        optimizer.apply_gradients(zip(tape.gradient(loss, generator.trainable_variables),
                                      generator.trainable_variables))
    kernel, bias = generator.get_layer("to_subpixels").get_weights()
    gains = kernel.sum(axis=(0, 1)).reshape(8, scale * scale, 3)
    assert np.abs(kernel).max() > 0.01  # it did learn
    np.testing.assert_allclose(gains, np.broadcast_to(gains.mean(axis=1, keepdims=True), gains.shape), atol=1e-5)
    np.testing.assert_allclose(bias.reshape(scale * scale, 3), np.broadcast_to(bias[:3], (scale * scale, 3)),
                               atol=1e-6)
    flat = generator(np.full((1, 24, 24, 3), 0.4, np.float32)).numpy()[0]
    interior = flat[8 * scale : 16 * scale, 8 * scale : 16 * scale]  # away from the zero padding
    assert interior.std(axis=(0, 1)).max() < 1e-4


def test_equal_gain_is_a_projection() -> None:
    constraint = EqualSubpixelGain(2)
    kernel = tf.constant(np.random.default_rng(0).normal(size=(3, 3, 5, 12)), tf.float32)
    once = constraint(kernel)
    np.testing.assert_allclose(constraint(once), once, atol=1e-6)  # applying it twice changes nothing
    gains = once.numpy().sum(axis=(0, 1)).reshape(5, 4, 3)
    np.testing.assert_allclose(gains, np.broadcast_to(gains[:, :1], gains.shape), atol=1e-5)
    # The mean gain survives: only the differences between phases are removed.
    np.testing.assert_allclose(gains[:, 0], kernel.numpy().sum(axis=(0, 1)).reshape(5, 4, 3).mean(axis=1),
                               atol=1e-5)


def test_discriminator_returns_patch_logits() -> None:
    logits = build_discriminator(4)(np.zeros((3, 64, 48, 3), np.float32))
    assert logits.shape == (3, 4, 3, 1)
    assert logits.dtype == "float32"


def test_backbone_auto_falls_back_to_random_filters_offline(tmp_path: Path, monkeypatch,
                                                            caplog) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty Keras cache
    backbone = build_backbone("auto")
    assert backbone.kind == "random"
    assert "random-filter" in caplog.text
    images = np.zeros((1, 32, 32, 3), np.float32)
    # Texture: a pyramid of 4 levels.
    assert [tuple(f.shape[1:]) for f in backbone.texture(images)] == [
        (32, 32, 64), (16, 16, 64), (8, 8, 64), (4, 4, 64)]
    assert [f.shape[1] for f in backbone.content(images)] == [16, 8, 4]
    # Fixed seeds: the fallback is the same network every time.
    again = build_backbone("random")
    ones = np.ones((1, 16, 16, 3), np.float32)
    np.testing.assert_allclose(again.texture(ones)[0], backbone.texture(ones)[0])
    np.testing.assert_allclose(again.content(ones)[0], backbone.content(ones)[0])


def test_random_content_features_do_not_reward_blur_like_pixel_l1() -> None:
    """Pixel L1 charges a one-pixel shift of a sharp photo far more than a blur, and so
    rewards blur; the content features charge both about alike."""
    photo = skimage.data.astronaut().astype(np.float32) / 255.0
    sharp, shifted = photo[100:228, 100:228], photo[101:229, 101:229]
    blurred = ndimage.gaussian_filter(sharp, (1.2, 1.2, 0))
    backbone = build_backbone("random")

    def shift_over_blur(distance) -> float:
        return float(distance(shifted, sharp) / distance(blurred, sharp))

    def features_l1(features):
        return lambda a, b: perceptual_loss(features(a[None]), features(b[None]))

    pixel = shift_over_blur(lambda a, b: np.abs(a - b).mean())
    content = shift_over_blur(features_l1(backbone.content))
    texture = shift_over_blur(features_l1(backbone.texture))
    assert pixel > 1.4 and texture > 1.4  # both prefer the blur
    assert content < 0.7 * pixel


def test_backbone_missing_weights_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="loss.vgg19_weights"):
        build_backbone("auto", str(tmp_path / "nope.h5"))


@pytest.fixture(scope="module")
def cached_vgg19(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A Keras home holding VGG19 no-top weights in the ImageNet file's name and format.

    The weights are random: ImageNet's cannot be downloaded here, and what is
    tested is that gansr finds and loads the file.
    """
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(0)
    vgg = keras.applications.VGG19(include_top=False, weights=None)
    keras_home = tmp_path_factory.mktemp("keras_home")
    (keras_home / "models").mkdir()
    with h5py.File(keras_home / "models" / VGG19_NOTOP_FILE, "w") as file:
        legacy_h5_format.save_weights_to_hdf5_group(file, vgg)
    return keras_home, vgg.get_layer("block1_conv1").get_weights()[0]


def test_vgg19_backbone_loads_the_weights_keras_cached(cached_vgg19, monkeypatch: pytest.MonkeyPatch) -> None:
    keras_home, first_kernel = cached_vgg19
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    backbone = build_backbone("auto")
    assert backbone.kind == "vgg19"
    np.testing.assert_array_equal(backbone.content_taps.get_layer("block1_conv1").get_weights()[0], first_kernel)
    images = np.zeros((1, 32, 32, 3), np.float32)
    content, texture = backbone.content(images), backbone.texture(images)
    assert [tuple(f.shape[1:]) for f in content] == [(16, 16, 128), (8, 8, 256), (4, 4, 512)]
    assert [tuple(f.shape[1:]) for f in texture] == [(16, 16, 128), (8, 8, 256), (4, 4, 512)]  # the same layers


def test_a_damaged_vgg19_weights_file_is_named(tmp_path: Path) -> None:
    damaged = tmp_path / "vgg19.h5"
    damaged.write_bytes(b"not an HDF5 file")
    with pytest.raises(GansrError, match=f"cannot load VGG19 weights from {re.escape(str(damaged))}"):
        build_backbone("vgg19", str(damaged))


SAVE_IN_A_NEW_PROCESS = """
import sys
from pathlib import Path
import numpy as np
from gansr.models.archive import save_generator
from gansr.style.network import build_styled_generator
model = build_styled_generator(2, 4, 1, ("gravel",), style_channels=8, style_blocks=1, patches=32, shading=0.5)
rng = np.random.default_rng(0)
model.set_weights([rng.normal(0, 0.1, w.shape).astype("float32") for w in model.get_weights()])
save_generator(model, Path(sys.argv[1]))
"""


@pytest.mark.slow  # two processes importing TensorFlow
def test_the_same_generator_is_the_same_file_whenever_and_wherever_it_is_saved(tmp_path: Path) -> None:
    # Two processes, 2 s apart: other save times (1 s resolution in metadata, 2 s in the zip) and
    # other memory addresses for the objects Keras marks as shared.
    def save(name: str) -> None:
        subprocess.run([sys.executable, "-c", SAVE_IN_A_NEW_PROCESS, str(tmp_path / name)], check=True)

    save("first.keras")
    time.sleep(2.1)
    save("second.keras")
    assert (tmp_path / "first.keras").read_bytes() == (tmp_path / "second.keras").read_bytes()
    with zipfile.ZipFile(tmp_path / "first.keras") as archive:
        assert "date_saved" not in json.loads(archive.read("metadata.json"))
    loaded = load_generator(tmp_path / "second.keras")
    assert loaded.get_layer("style_swap").patches == 32
    assert not list(tmp_path.glob(".*"))  # no rewrite left behind
