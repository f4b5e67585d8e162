"""Style images: a built-in set that works offline, or the user's folder.

Each style image is decoded to RGB and resized so its shorter side is
``style.image_size``, the scale at which its strokes and grain are drawn;
the order gives the style indices 1, 2, … (0 = none).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from gansr.config import StyleConfig
from gansr.data.sources import BuiltinPhoto, RawImage, folder_images, locate_builtin
from gansr.imageio import read_rgb

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
