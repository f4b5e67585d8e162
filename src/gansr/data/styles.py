"""Style images: a built-in set that works offline, or the user's folder.

Each style image is decoded to RGB and resized so its shorter side is
``style.image_size``; the order gives the style indices 1, 2, … (0 = none).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from gansr import losses
from gansr.config import StyleConfig
from gansr.data.sources import BuiltinPhoto, RawImage, folder_images, locate_builtin
from gansr.imageio import read_rgb
from gansr.models.backbone import Backbone

PALETTE_DIRECTIONS = 16  # chroma directions the palette loss compares distributions along
PALETTE_QUANTILES = 1024  # quantiles kept of each style's sorted projections and texture responses
SORTED_POSITIONS = 1024  # positions per feature map or image the texture and palette losses sort

# Provenance as stated in skimage/data/_fetchers.py docstrings.
BUILTIN_STYLES: tuple[BuiltinPhoto, ...] = (
    BuiltinPhoto("gravel", "gravel", "skimage", "data/gravel.png",
                 "Gravel04 texture, CC0Textures (cc0textures.com); via skimage.data.gravel", "CC0"),
    BuiltinPhoto("brick", "brick", "skimage", "data/brick.png",
                 "Bricks25 texture, CC0Textures (cc0textures.com); via skimage.data.brick", "CC0"),
    BuiltinPhoto("colorwheel", "colorwheel", "skimage", "data/color.png",
                 "colour wheel; via skimage.data.colorwheel",
                 "scikit-image sample data (BSD-3-Clause)"),
)


@dataclass(frozen=True)
class StyleImage:
    """One style: its name and its RGB uint8 pixels."""

    name: str
    image: np.ndarray


def load_styles(cfg: StyleConfig) -> list[StyleImage]:
    """The configured style images, in style-index order (index = position + 1)."""
    if cfg.source == "builtin":
        sources: list[RawImage] = [locate_builtin(style) for style in BUILTIN_STYLES]
    else:
        sources = folder_images(Path(cfg.folder), "user-supplied style", setting="style.folder")
    return [StyleImage(s.name, resize_shorter_side(read_rgb(s.path)[0], cfg.image_size)) for s in sources]


def resize_shorter_side(image: np.ndarray, size: int) -> np.ndarray:
    """Resize (bicubic, antialiased) so the shorter side is ``size`` pixels."""
    height, width = image.shape[:2]
    factor = size / min(height, width)
    new = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(Image.fromarray(image).resize(new, Image.Resampling.BICUBIC))


@dataclass(frozen=True)
class StyleTargets:
    """What the style loss pulls each style towards, stacked over styles (index s − 1 for style s).

    ``textures``: per texture layer, [styles, C, Q] quantiles of the responses
    of the backbone's texture filters to the style image's luma detail finer
    than an LR pixel at ``scale`` (:func:`~gansr.losses.fine_detail`);
    ``palettes``: [styles, K, Q] quantiles of its colours along the K chroma
    ``directions`` [3, K].
    """

    textures: list[tf.Tensor]
    palettes: tf.Tensor
    directions: tf.Tensor
    scale: int


def style_targets(backbone: Backbone, styles: list[StyleImage], scale: int) -> StyleTargets:
    """Texture and palette targets of the style images, for outputs upscaled ``scale`` times."""
    directions = palette_directions()
    return StyleTargets(style_textures(backbone, styles, scale), style_palettes(styles, directions), directions,
                        scale)


def style_losses(backbone: Backbone, images: tf.Tensor, targets: StyleTargets, style: tf.Tensor,
                 seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(L_texture, L_palette) of RGB ``images`` [B, H, W, 3] in [0, 1] against their styles (1..N, [B]).

    Texture compares the texture features of the luma detail finer than an
    LR pixel, so a grey texture adds no colour and leaves the light and shade
    of the LR input to the content; each style's distance is relative to its
    own texture's strength (:func:`texture_strength`). Palette compares the
    pixels' chroma.
    ``seed`` draws the positions the texture and palette losses sort.
    """
    texture = losses.texture_distribution_loss(
        backbone.texture(losses.fine_detail(images, targets.scale)),
        [tf.gather(layer, style - 1) for layer in targets.textures],
        [tf.gather(texture_strength(layer), style - 1) for layer in targets.textures], SORTED_POSITIONS, seed)
    # Seeds after the texture layers' own, so the palette draws other positions.
    pixels = losses.draw_positions(tf.reshape(images, [tf.shape(images)[0], -1, 3]), SORTED_POSITIONS,
                                   seed + len(targets.textures))
    palette = losses.sliced_wasserstein_loss(pixels, tf.gather(targets.palettes, style - 1), targets.directions)
    return texture, palette


def texture_strength(quantiles: tf.Tensor) -> tf.Tensor:
    """[styles]: each style's mean absolute texture response in one layer ([styles, C, Q] quantiles).

    Floored at the styles' mean: a strong texture (gravel) would otherwise pull
    harder than a sparse one (brick's thin mortar lines), and a nearly flat
    style (the colour wheel) would be magnified.
    """
    own = tf.reduce_mean(tf.abs(quantiles), axis=[1, 2])
    return tf.maximum(own, tf.reduce_mean(own))


def style_textures(backbone: Backbone, styles: list[StyleImage], scale: int,
                   count: int = PALETTE_QUANTILES) -> list[tf.Tensor]:
    """Per texture layer, quantiles of the filter responses to each style's luma detail: [styles, C, count]."""
    per_style = []
    for style in styles:
        image = tf.constant(style.image[None], tf.float32) / 255.0
        layers = backbone.texture(losses.fine_detail(image, scale))
        per_style.append([losses.quantiles(losses.sorted_projections(tf.reshape(f, [-1, f.shape[-1]])), count)
                          for f in layers])
    return [tf.stack(layer) for layer in zip(*per_style)]


def palette_directions(count: int = PALETTE_DIRECTIONS) -> tf.Tensor:
    """3×count unit directions in RGB, evenly spread over the chroma plane (orthogonal to grey).

    The palette loss compares hue and saturation only: light and shade stay
    with the photo (the luminance loss), and with the texture.
    """
    red_green = np.array([1.0, -1.0, 0.0]) / np.sqrt(2.0)
    yellow_blue = np.array([1.0, 1.0, -2.0]) / np.sqrt(6.0)
    angles = np.pi * np.arange(count) / count
    directions = np.outer(red_green, np.cos(angles)) + np.outer(yellow_blue, np.sin(angles))
    return tf.constant(directions, tf.float32)


def style_palettes(styles: list[StyleImage], directions: tf.Tensor,
                   count: int = PALETTE_QUANTILES) -> tf.Tensor:
    """Each style image's colours as quantiles of their projections: [styles, directions, count]."""
    per_style = []
    for style in styles:
        pixels = tf.reshape(tf.constant(style.image, tf.float32) / 255.0, [-1, 3])
        per_style.append(losses.quantiles(losses.sorted_projections(pixels, directions), count))
    return tf.stack(per_style)
