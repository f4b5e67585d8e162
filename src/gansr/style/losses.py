"""What the style branch is trained on: the style images' texture and palette, the photo's light and shade.

Texture and palette are distances between distributions
(:mod:`~gansr.style.distributions`), never a pixel distance to the style
image, so nothing pulls a style's pixels to fixed places; the content
features stay the photo's. Light and shade at LR scale need no loss: the
composite (:class:`~gansr.style.layers.StyleComposite`) sets their share.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from gansr.models.backbone import Backbone
from gansr.style.distributions import (
    draw_positions,
    quantiles,
    sliced_wasserstein_distances,
    sliced_wasserstein_loss,
    sorted_projections,
)
from gansr.style.images import StyleImage
from gansr.style.layers import luma

PALETTE_DIRECTIONS = 16  # chroma directions the palette loss compares distributions along
PALETTE_QUANTILES = 1024  # quantiles kept of each style's sorted projections and texture responses
SORTED_POSITIONS = 1024  # positions per feature map or image the texture and palette losses sort


def fine_detail(images: tf.Tensor, scale: int) -> tf.Tensor:
    """The luma an LR image cannot hold, as grey RGB around 0.5: Y minus Y downscaled and upscaled again.

    Antialiased bicubic down by ``scale`` and bilinear up, as
    :func:`~gansr.style.layers.swap_bank` splits a style's patches, so the
    texture loss compares the very band the style swap draws from the style.
    """
    y = luma(images)
    size = tf.shape(y)[1:3]
    explained = tf.image.resize(tf.image.resize(y, size // scale, "bicubic", antialias=True), size, "bilinear")
    return tf.repeat(y - explained + 0.5, 3, axis=-1)


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


@dataclass(frozen=True)
class StyleTargets:
    """What the style loss pulls each style towards, stacked over styles (index s − 1 for style s).

    ``textures``: per texture layer, [styles, C, Q] quantiles of the responses
    of the backbone's texture filters to the style image's luma detail finer
    than an LR pixel at ``scale`` (:func:`fine_detail`);
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
    texture = texture_distribution_loss(
        backbone.texture(fine_detail(images, targets.scale)),
        [tf.gather(layer, style - 1) for layer in targets.textures],
        [tf.gather(texture_strength(layer), style - 1) for layer in targets.textures], SORTED_POSITIONS, seed)
    # Seeds after the texture layers' own, so the palette draws other positions.
    pixels = draw_positions(tf.reshape(images, [tf.shape(images)[0], -1, 3]), SORTED_POSITIONS,
                                   seed + len(targets.textures))
    palette = sliced_wasserstein_loss(pixels, tf.gather(targets.palettes, style - 1), targets.directions)
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
        layers = backbone.texture(fine_detail(image, scale))
        per_style.append([quantiles(sorted_projections(tf.reshape(f, [-1, f.shape[-1]])), count)
                          for f in layers])
    return [tf.stack(layer) for layer in zip(*per_style)]


def palette_directions(count: int = PALETTE_DIRECTIONS) -> tf.Tensor:
    """3×count unit directions in RGB, evenly spread over the chroma plane (orthogonal to grey).

    The palette loss compares hue and saturation only: light and shade are
    the composite's and the texture's.
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
        per_style.append(quantiles(sorted_projections(pixels, directions), count))
    return tf.stack(per_style)
