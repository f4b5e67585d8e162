"""The styled generator: style 0 is the GAN generator bit for bit, each style its own, saved and reloaded safely."""

from pathlib import Path

import keras
import numpy as np

from gansr.models.generator import build_generator, copy_shared_weights
from gansr.models.layers import style_names
from gansr.style.layers import StyleSwap
from gansr.style.network import (
    PREFIX,
    build_styled_generator,
    freeze_all_but_style,
    set_style_images,
    sr_and_styled,
    with_style_image,
)


def styled_pair() -> tuple[keras.Model, keras.Model]:
    """A plain generator with random weights, and a styled one sharing them, its branch randomised too."""
    plain = build_generator(2, channels=8, blocks=2)
    rng = np.random.default_rng(0)
    plain.set_weights([rng.normal(0, 0.1, w.shape).astype("float32") for w in plain.get_weights()])
    styled = build_styled_generator(2, 8, 2, ("a", "b"), style_channels=8, style_blocks=1, patches=64, shading=0.5)
    copy_shared_weights(plain, styled)
    for layer in styled.layers:
        if layer.name.startswith(PREFIX) and layer.trainable_weights:  # the network starts at zero maps
            layer.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in layer.get_weights()])
    images = [rng.integers(0, 256, (40, 48, 3), dtype=np.uint8), np.tile(np.arange(0, 240, 6, dtype=np.uint8),
                                                                      (40, 1))[..., None].repeat(3, axis=-1)]
    set_style_images(styled, images)
    return plain, styled


def test_styled_generator_at_style_0_is_the_plain_generator(tmp_path: Path) -> None:
    plain, styled = styled_pair()
    lr = np.random.default_rng(1).random((3, 8, 10, 3), np.float32)
    out = styled([lr, np.array([0, 1, 2], np.int32)]).numpy()
    np.testing.assert_array_equal(out[0], plain(lr[:1])[0])  # style 0: bit for bit
    assert np.abs(out[1] - plain(lr[1:2])[0]).max() > 1e-3  # a style changes the output
    assert np.abs(out[1] - out[2]).max() > 1e-3  # and each its own way
    path = tmp_path / "styled.keras"
    styled.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert style_names(reloaded) == ["a", "b"] and style_names(plain) == []
    np.testing.assert_allclose(reloaded([lr, np.array([0, 1, 2], np.int32)]), out, atol=1e-6)


def test_one_pass_gives_the_super_resolved_and_the_styled_image() -> None:
    _, styled = styled_pair()
    lr = np.random.default_rng(2).random((2, 8, 10, 3), np.float32)
    style = np.array([1, 2], np.int32)
    sr, drawn = sr_and_styled(styled)([lr, style])
    np.testing.assert_allclose(drawn, styled([lr, style]), atol=1e-6)
    np.testing.assert_allclose(sr, styled([lr, np.zeros(2, np.int32)]), atol=1e-6)


def test_only_the_style_network_trains() -> None:
    _, styled = styled_pair()
    freeze_all_but_style(styled)
    trainable = {w.path.split("/")[0] for w in styled.trainable_weights}
    assert trainable and all(name.startswith(PREFIX) for name in trainable)
    swap = next(layer for layer in styled.layers if isinstance(layer, StyleSwap))
    assert not swap.trainable_weights  # the style images' patches are set, not learned


def test_any_style_image_is_drawn_without_training_on_a_plain_or_styled_generator() -> None:
    plain, styled = styled_pair()
    lr = np.random.default_rng(3).random((1, 12, 14, 3), np.float32)
    painting = np.zeros((48, 48, 3), np.uint8)
    painting[..., 2] = np.tile(np.arange(0, 240, 5, dtype=np.uint8), (48, 1))  # blue strokes of every level
    for generator in (plain, styled):
        drawn = with_style_image(generator, painting, "blues", patches=64, shading=0.5)
        assert style_names(drawn) == ["blues"]
        out = drawn([lr, np.array([0], np.int32)]).numpy()
        np.testing.assert_array_equal(out, plain(lr).numpy())  # style 0: the generator's own output
        blue = drawn([lr, np.array([1], np.int32)]).numpy()
        # The painting's palette: blue, where the photo (random colours) had as much red and green.
        assert blue[..., 2].mean() > 2 * max(blue[..., 0].mean(), blue[..., 1].mean())
