"""The style layers: the swap draws the style from the photo, the composite keeps its light, the switch picks."""

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import tensorflow as tf

from gansr.config import StyleConfig
from gansr.errors import ConfigError
from gansr.inference import Upscaler
from gansr.metrics import periodic_artifact
from gansr.style.images import load_styles
from gansr.style.layers import (
    CONTEXT,
    SPAN,
    StyleComposite,
    StyleSwap,
    coarse,
    degrid,
    luma,
    swap_bank,
    window,
)
from gansr.style.network import build_styled_generator

SCALE = 2


@pytest.fixture(scope="module")
def swap() -> StyleSwap:
    """A swap holding two real textures: gravel and brick at 96 pixels."""
    layer = StyleSwap(2, 400, SCALE)
    layer.build([(None, None, None, 3), (None,)])
    layer.set_banks([skimage.data.gravel()[:96, :96, None].repeat(3, -1), skimage.data.brick()[:96, :96, None]
                     .repeat(3, -1)])
    return layer


def photo(size: int = 40, offset: int = 0) -> np.ndarray:
    """LR crops of the astronaut, in [0, 1]."""
    image = skimage.data.astronaut()[::4, ::4][100:, 40:]
    return (image[None, :size, offset : offset + size] / 255.0).astype(np.float32)


def test_windows_one_lr_pixel_apart_sum_to_one() -> None:
    weights = window(4)
    assert len(weights) == SPAN * 4
    total = sum(np.pad(weights, (4 * i, 4 * (SPAN - 1 - i))) for i in range(SPAN))
    np.testing.assert_allclose(total[4 * (SPAN - 1) : 4 * SPAN], 1.0, atol=1e-6)


def test_degrid_removes_a_pattern_repeating_every_lr_pixel_and_keeps_the_texture() -> None:
    rng = np.random.default_rng(0)
    texture = rng.normal(0.0, 0.05, (1, 128, 128, 3)).astype(np.float32)
    grid = np.tile(rng.normal(0.0, 0.05, (4, 4, 1)), (32, 32, 3))[None].astype(np.float32)  # the LR grid at ×4

    def artifact(image: np.ndarray) -> float:  # in grey levels, on an image around mid-grey
        # Off the edges, where the mirrored padding breaks the pattern's period.
        return periodic_artifact(np.clip(128 + 255 * image[0], 0, 255).astype(np.uint8), 4, border=12)

    cleaned = degrid(tf.constant(texture + grid), 4).numpy()
    # The texture alone repeats a little by chance (its phases' means); the grid is far above that, then gone.
    assert artifact(texture + grid) > 10 * artifact(texture) and artifact(cleaned) < artifact(texture)
    kept = degrid(tf.constant(texture), 4).numpy()
    assert np.corrcoef(kept.ravel(), texture.ravel())[0, 1] > 0.95 and kept.std() > 0.9 * texture.std()


def test_a_bank_holds_equalised_keys_lr_colours_and_detail_free_of_the_lr_image() -> None:
    image = skimage.data.astronaut()[:64, :64]
    keys, colours, details = swap_bank(image, 4, 100)
    assert keys.shape == (100, CONTEXT**2) and colours.shape == (100, 3) and details.shape == (100, (SPAN * 4)**2 * 3)
    assert keys.min() < 10 and keys.max() > 245  # ranks spread over the 8-bit range, whatever the image's light
    assert np.array_equal(keys, np.round(keys)) and np.array_equal(colours, np.round(colours))  # 8-bit levels
    assert abs(details.mean()) < 0.01 < details.std()  # what the LR image leaves: around zero, not nothing
    with pytest.raises(ConfigError, match="style.image_size or lower style.patches"):
        swap_bank(image, 4, 257)  # 16 × 16 LR pixels


def test_the_swap_moves_with_the_photo(swap: StyleSwap) -> None:
    first, second = photo(offset=0), photo(offset=7)  # the second starts 7 LR pixels to the right
    drawn = [swap([image, tf.constant([1])]).numpy()[0] for image in (first, second)]
    # Away from the edges (the neighbourhood, the patches and the degrid reach a few LR pixels), the same strokes.
    edge = swap.lr_reach * SCALE
    np.testing.assert_allclose(drawn[1][edge:-edge, edge : -7 * SCALE - edge],
                               drawn[0][edge:-edge, 7 * SCALE + edge : -edge], atol=1e-5)


def test_faint_detail_draws_the_style_at_its_own_contrast(swap: StyleSwap) -> None:
    """Matched by shape, a photo at a tenth of its contrast still draws strokes, at much the same strength."""
    strong = photo()
    faint = 0.5 + 0.1 * (strong - strong.mean())
    detail = [float(np.std(swap([image, tf.constant([1])]) - coarse(swap([image, tf.constant([1])]), SCALE)))
              for image in (strong, faint)]
    assert detail[1] > 0.5 * detail[0]


def test_each_style_draws_its_own_patches_and_a_flat_photo_gets_none(swap: StyleSwap) -> None:
    image = tf.constant(photo())
    gravel, brick = (swap([image, tf.constant([s])]).numpy() for s in (1, 2))
    assert np.abs(gravel - brick).mean() > 0.01
    flat = swap([tf.fill([1, 16, 16, 3], 0.4), tf.constant([1])]).numpy()
    assert flat.std() < 1e-4  # nothing to draw along: the style's colour, no repeated patch printing a grid


def test_the_composite_takes_its_share_of_the_photos_light() -> None:
    rng = np.random.default_rng(0)
    sr, swapped = (tf.constant(rng.random((1, 16, 16, 3)), tf.float32) for _ in range(2))
    maps = tf.zeros((1, 8, 8, 4))
    np.testing.assert_array_equal(StyleComposite(SCALE, 0.0)([sr, swapped, maps]), swapped)  # the strokes' own

    def light_gap(image: tf.Tensor) -> float:  # how far its light and shade at LR scale are from the photo's
        return float(tf.reduce_mean(tf.abs(coarse(luma(image), SCALE) - coarse(luma(sr), SCALE))))

    gaps = [light_gap(StyleComposite(SCALE, shading)([sr, swapped, maps])) for shading in (0.0, 0.5, 1.0)]
    assert gaps[0] > 0.05 and gaps[0] > gaps[1] > gaps[2] and gaps[2] < gaps[0] / 3
    # The colour maps change hue, not light; the detail map can only hold detail back.
    recoloured = StyleComposite(SCALE, 1.0)([sr, swapped, tf.constant([[[[0.0, 0.3, -0.2, 0.1]]]]) * tf.ones(
        (1, 8, 8, 1))])
    np.testing.assert_allclose(luma(recoloured), luma(StyleComposite(SCALE, 1.0)([sr, swapped, maps])), atol=1e-5)
    amplified = StyleComposite(SCALE, 1.0)([sr, swapped, tf.constant([[[[5.0, 0, 0, 0]]]]) * tf.ones((1, 8, 8, 1))])
    np.testing.assert_allclose(amplified, StyleComposite(SCALE, 1.0)([sr, swapped, maps]), atol=1e-6)


def test_a_style_is_named_or_numbered_and_an_unknown_one_says_which_exist() -> None:
    model = build_styled_generator(SCALE, 4, 1, ("ink", "oil"), style_channels=4, style_blocks=1, patches=16,
                                   shading=0.5)
    upscaler = Upscaler(model)
    assert [upscaler.style_index(s) for s in ("none", "0", "", "ink", "2")] == [0, 0, 0, 1, 2]
    with pytest.raises(ConfigError, match="style gouache: unknown; this generator knows ink, oil"):
        upscaler.style_index("gouache")
    with pytest.raises(ConfigError, match="style 3: unknown"):
        upscaler.style_index(3)


PAINTINGS = Path(__file__).resolve().parents[2] / "shared" / "styles"  # beside the repository, as CI has it


@pytest.mark.skipif(not PAINTINGS.is_dir(), reason=f"the shared paintings are not at {PAINTINGS}")
def test_paintings_redraw_a_photo_in_their_colours_and_move_with_it() -> None:
    paintings = load_styles(StyleConfig(source="folder", folder=str(PAINTINGS), image_size=64))
    assert [p.name for p in paintings] == ["starry_night", "wave"]
    layer = StyleSwap(2, 256, SCALE)
    layer.build([(None, None, None, 3), (None,)])
    layer.set_banks([p.image for p in paintings])
    first, second = photo(offset=0), photo(offset=5)
    for index, painting in enumerate(paintings, start=1):
        drawn = [layer([image, tf.constant([index])]).numpy()[0] for image in (first, second)]
        # The painting's palette: the strokes' mean colour is far nearer the painting's than the photo's is.
        colour = painting.image.mean(axis=(0, 1)) / 255
        assert np.abs(drawn[0].mean(axis=(0, 1)) - colour).sum() < np.abs(first[0].mean(axis=(0, 1)) - colour).sum() / 2
        edge = layer.lr_reach * SCALE
        np.testing.assert_allclose(drawn[1][edge:-edge, edge : -5 * SCALE - edge],
                                   drawn[0][edge:-edge, 5 * SCALE + edge : -edge], atol=1e-5)
