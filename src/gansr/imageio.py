"""Read any image file as 8-bit RGB, and write RGB PNGs atomically.

Every image entering the pipeline goes through :func:`read_rgb`, so the rest
of gansr only ever sees H×W×3 ``uint8`` arrays. Conversions that change what
the user supplied (orientation, alpha, bit depth, colour model) are returned
as notes so the ``download`` stage can record them next to the file.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from gansr.atomic import atomic_path
from gansr.errors import DataError

# Pillow modes that carry an alpha channel; composited on white because the
# SR model has no notion of transparency and white is what viewers show.
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_GRAY_MODES = {"L", "1"}
_DEEP_GRAY_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}
# What a damaged file can raise while Pillow parses or decodes it.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)


def read_rgb(path: str | os.PathLike[str]) -> tuple[np.ndarray, list[str]]:
    """Decode ``path`` into an H×W×3 ``uint8`` RGB array plus notes on conversions.

    Raises :class:`DataError` naming the file when it is missing, empty, not an
    image, truncated, corrupt or larger than Pillow's decompression-bomb limit.
    """
    path = Path(path)
    notes: list[str] = []
    try:
        with Image.open(path) as img:
            img.load()  # open() is lazy: force the decode so truncation shows here
            if getattr(img, "n_frames", 1) > 1:
                notes.append(f"first of {img.n_frames} frames")
            rgb = _to_rgb(_orient(img, notes), notes)
    except Image.DecompressionBombError as exc:
        raise DataError(f"{path}: too many pixels, refused as a possible decompression bomb "
                        f"(Pillow limit {Image.MAX_IMAGE_PIXELS} pixels)") from exc
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except Image.UnidentifiedImageError as exc:
        reason = "empty file" if _is_empty(path) else "not a readable image"
        raise DataError(f"{path}: {reason}") from exc
    except _DECODE_ERRORS as exc:
        raise DataError(f"{path}: cannot read image ({_first_line(exc)})") from exc
    return rgb, notes


def write_png(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Atomically write an H×W×3 ``uint8`` array as an RGB PNG (no timestamps)."""
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"write_png needs an H×W×3 uint8 array, got {array.dtype} {array.shape}")
    image = Image.fromarray(np.ascontiguousarray(array))
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes (recorded so later stages can spot changes and duplicates)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _orient(img: Image.Image, notes: list[str]) -> Image.Image:
    """Apply the EXIF orientation tag so the pixels are upright as the camera meant."""
    orientation = img.getexif().get(0x0112, 1)
    if orientation in (None, 1):
        return img
    notes.append(f"applied EXIF orientation {orientation}")
    return ImageOps.exif_transpose(img)


def _to_rgb(img: Image.Image, notes: list[str]) -> np.ndarray:
    mode = img.mode
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
        notes.append("palette with transparency expanded")
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8).copy()
    if mode in _ALPHA_MODES:
        notes.append(f"{mode} alpha composited on white")
        return _composite_on_white(img.convert("RGBA"))
    if mode in _DEEP_GRAY_MODES:
        notes.append(f"{mode} 16-bit grayscale scaled to 8 bit and expanded to RGB")
        return _deep_gray_to_rgb(np.asarray(img))
    if mode in _GRAY_MODES:
        notes.append(f"{mode} grayscale expanded to RGB")
    else:
        notes.append(f"{mode} converted to RGB")  # P, CMYK, YCbCr, LAB, HSV, F...
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def _composite_on_white(rgba: Image.Image) -> np.ndarray:
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"), dtype=np.uint8).copy()


def _deep_gray_to_rgb(values: np.ndarray) -> np.ndarray:
    # 65535 / 257 = 255 exactly, so full-scale 16-bit maps onto full-scale 8-bit.
    gray = np.clip(np.rint(values.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


def _is_empty(path: Path) -> bool:
    try:
        return path.stat().st_size == 0
    except OSError:
        return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
