"""Styles made by hand, whose verdicts are known, so every run shows that the style measures tell them apart.

- :func:`tiled_blend`: the style image mirror-tiled from the image's corner
  and blended half and half into the photo, a double exposure. It moves the
  photo's colour and texture statistics towards the style, so the
  statistics alone would call it styled; it stays where it is when the
  photo moves, so the measures of :mod:`gansr.style.follow` fail it;
- :func:`palette_emboss`: each pixel's colour remapped to the style's
  palette, plus an emboss of the photo's own edges. A function of the photo
  alone, so it follows the photo like a real style;
- the unstyled output itself: it moves towards no style.

Each takes the unstyled HR image and the style image (uint8 RGB) and returns
the "styled" image.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import convolve
from skimage.exposure import match_histograms

from gansr.metrics import rgb_to_y

EMBOSS = np.array([[-2.0, -1.0, 0.0], [-1.0, 0.0, 1.0], [0.0, 1.0, 2.0]])  # light from the top left


def tiled_blend(unstyled: np.ndarray, style_image: np.ndarray) -> np.ndarray:
    """Half the photo, half the style image mirror-tiled from the top-left corner."""
    tile = np.concatenate([style_image, style_image[:, ::-1]], axis=1)
    tile = np.concatenate([tile, tile[::-1]], axis=0)
    reps = (-(-unstyled.shape[0] // tile.shape[0]), -(-unstyled.shape[1] // tile.shape[1]), 1)
    tiled = np.tile(tile, reps)[: unstyled.shape[0], : unstyled.shape[1]]
    return ((unstyled.astype(np.uint16) + tiled) // 2).astype(np.uint8)


def palette_emboss(unstyled: np.ndarray, style_image: np.ndarray) -> np.ndarray:
    """Each RGB channel's histogram matched to the style's, plus an emboss of the photo's luma."""
    remapped = match_histograms(unstyled, style_image, channel_axis=-1)
    relief = convolve(rgb_to_y(unstyled), EMBOSS, mode="reflect")
    return np.clip(np.rint(remapped + relief[..., None]), 0, 255).astype(np.uint8)


def unstyled_control(unstyled: np.ndarray, style_image: np.ndarray) -> np.ndarray:
    """The unstyled output itself."""
    return unstyled


CONTROLS = {"tiled_blend": tiled_blend, "palette_emboss": palette_emboss, "unstyled": unstyled_control}
