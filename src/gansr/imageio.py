"""Read any image file as 8-bit RGB, and write RGB PNGs atomically.

Every image entering the pipeline goes through :func:`read_rgb`, so the rest
of gansr only ever sees H×W×3 ``uint8`` arrays. Conversions that change what
the user supplied (orientation, alpha, bit depth, colour model) are returned
as notes so the ``download`` stage can record them next to the file, beside
the file's original Pillow mode and bit depth (:func:`read_image`).
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from gansr.atomic import atomic_path
from gansr.errors import DataError

# Pillow modes that carry an alpha channel; composited on white because the
# SR model has no notion of transparency and white is what viewers show.
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_GRAY_MODES = {"L", "1"}
_DEEP_GRAY_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}
# Modes read_rgb turns into 8-bit RGB without guessing at a colour space or value range
# (not LAB, HSV or floating-point F).
FAITHFUL_MODES = frozenset({"RGB", "P", "CMYK", "YCbCr"} | _ALPHA_MODES | _GRAY_MODES | _DEEP_GRAY_MODES)
# Decoder raw modes with 16 bits per sample ("RGB;16B", "I;16"), not 16-bit packed pixels ("BGR;16").
_SIXTEEN_BIT_RAW_MODE = re.compile(r"[A-Z]+;16[BLN]S?|[IL];16S?")
# What a damaged file can raise while Pillow parses or decodes it.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)


@dataclass(frozen=True)
class DecodedImage:
    """An image as gansr uses it (8-bit RGB), and what the file held before conversion."""

    rgb: np.ndarray
    notes: list[str]
    mode: str  # the file's Pillow mode, e.g. "RGB", "P", "RGBA", "CMYK", "I;16"
    bit_depth: int  # bits per sample in the file: 8 (or fewer), 16, or 32 (modes I and F)


# zlib levels for PNG. 3 for the data stages' images, as BasicSR writes its sub-images: 3× faster
# than Pillow's default 6 (0.19 s instead of 0.61 s per megapixel of photo) for files 5-15 % larger,
# which at DIV2K's size halves the time of `download` and `pairs`. 1 for `gansr upscale`'s outputs:
# 5× faster than 6 (0.13 s instead of 0.63 s for a 1280×1280 photo, longer than the upscale itself)
# for files about 14 % larger.
DATA_PNG, FAST_PNG = 3, 1


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Quantise a float image in [0, 1] to uint8, rounding as image writers do (half to even)."""
    return np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def read_rgb(path: str | os.PathLike[str]) -> tuple[np.ndarray, list[str]]:
    """Decode ``path`` into an H×W×3 ``uint8`` RGB array plus notes on conversions.

    Raises :class:`DataError` naming the file when it is missing, empty, not an
    image, truncated, corrupt or larger than Pillow's decompression-bomb limit.
    """
    image = read_image(path)
    return image.rgb, image.notes


def read_image(path: str | os.PathLike[str], name: str | None = None) -> DecodedImage:
    """:func:`read_rgb`, plus the file's original mode and bit depth, from the same single decode.

    Errors name the file as ``name`` (default: its path).
    """
    path = Path(path)
    return _decode(path, name or str(path), lambda: _is_empty(path))


def read_faithful_rgb(path: str | os.PathLike[str]) -> tuple[np.ndarray, list[str]]:
    """:func:`read_rgb`, but a mode outside :data:`FAITHFUL_MODES` (e.g. float ``F``) is a DataError."""
    return _faithful(read_image(path), str(path))


def decode_rgb(data: bytes, name: str) -> tuple[np.ndarray, list[str]]:
    """:func:`read_faithful_rgb` for an image file's bytes held in memory; errors name ``name``."""
    return _faithful(_decode(io.BytesIO(data), name, lambda: not data), name)


def is_large(pixels: int) -> bool:
    """Whether ``pixels`` passes Pillow's decompression-bomb warning limit (it refuses twice that)."""
    return Image.MAX_IMAGE_PIXELS is not None and pixels > Image.MAX_IMAGE_PIXELS


def encode_png(array: np.ndarray, compress_level: int = DATA_PNG) -> bytes:
    """An H×W×3 ``uint8`` array as the bytes of an RGB PNG (no timestamps), zlib at ``compress_level``."""
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"encode_png needs an H×W×3 uint8 array, got {array.dtype} {array.shape}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()


def write_png(path: str | os.PathLike[str], array: np.ndarray, compress_level: int = DATA_PNG) -> None:
    """Atomically write an H×W×3 ``uint8`` array as an RGB PNG (no timestamps), zlib at ``compress_level``."""
    data = encode_png(array, compress_level)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)


def _decode(source: Path | BinaryIO, name: str, is_empty: Callable[[], bool]) -> DecodedImage:
    notes: list[str] = []
    try:
        # Between Pillow's warning and error limits: a note below, not Python's raw two-line warning.
        with (warnings.catch_warnings(action="ignore", category=Image.DecompressionBombWarning),
              Image.open(source) as img):
            mode, bit_depth = img.mode, _bit_depth(img)  # before load(), which forgets the raw mode
            img.load()  # open() is lazy: force the decode so truncation shows here
            if is_large(img.width * img.height):
                notes.append(f"large image: {img.width * img.height / 1e6:.0f} Mpx")
            if getattr(img, "n_frames", 1) > 1:
                notes.append(f"first of {img.n_frames} frames")
            # Pillow keeps each sample's high byte (v >> 8, within 1 level of v / 257 rounded).
            if bit_depth == 16 and mode not in _DEEP_GRAY_MODES:  # 16-bit grayscale gets its own note
                notes.append("16-bit samples scaled to 8 bit")
            rgb = _to_rgb(_orient(img, notes), notes)
    except Image.DecompressionBombError as exc:
        raise DataError(f"{name}: too many pixels, refused as a possible decompression bomb "
                        f"(Pillow limit {Image.MAX_IMAGE_PIXELS} pixels)") from exc
    except FileNotFoundError as exc:
        raise DataError(f"{name}: file not found") from exc
    except Image.UnidentifiedImageError as exc:
        reason = "empty file" if is_empty() else "not a readable image"
        raise DataError(f"{name}: {reason}") from exc
    except _DECODE_ERRORS as exc:
        raise DataError(f"{name}: cannot read image ({_first_line(exc)})") from exc
    return DecodedImage(rgb, notes, mode, bit_depth)


def _faithful(image: DecodedImage, name: str) -> tuple[np.ndarray, list[str]]:
    if image.mode not in FAITHFUL_MODES:
        raise DataError(f"{name}: mode {image.mode} has no faithful 8-bit RGB rendering; "
                        "convert it to 8- or 16-bit RGB or grayscale first")
    return image.rgb, image.notes


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes (recorded so later stages can spot changes and duplicates)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _bit_depth(img: Image.Image) -> int:
    """Bits per sample in a just-opened file: 16, 32 (modes I and F), else 8.

    Pillow decodes 16-bit RGB(A) into 8-bit modes and says so only in the raw
    mode of its decoder tiles (e.g. "RGB;16B"), which ``load()`` clears. Fewer
    than 8 bits (1-bit, 4-bit palette) count as 8: they expand to 8-bit levels exactly.
    """
    raw_modes = [tile.args if isinstance(tile.args, str) else tile.args[0]
                 for tile in img.tile if tile.args]
    if img.mode.startswith("I;16") or any(
        isinstance(raw, str) and _SIXTEEN_BIT_RAW_MODE.fullmatch(raw) for raw in raw_modes
    ):
        return 16
    return 32 if img.mode in ("I", "F") else 8


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
