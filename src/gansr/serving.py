"""The registered generator as an MLflow pyfunc model, for ``mlflow models serve``.

Each row of the input DataFrame is one image of any size, given either as
``png``, a base64-encoded image file (PNG, JPEG, WebP, … anything Pillow
reads), or as ``pixels``, a nested H×W×3 list of 0-255 RGB values; an
optional ``style`` column names a style (or its number) for the styled
generator. Each output row holds the upscaled image in the input's form:
``png`` rows come back as base64 PNG, ``pixels`` rows as nested lists.

The pixels are exactly those ``gansr upscale`` writes: the same tiled
:class:`~gansr.inference.Upscaler` runs them, so memory stays bounded for
large images. MLflow loads this module through the model's
``python_function`` flavor (``loader_module``), calling
:func:`_load_pyfunc` with the folder that holds ``generator.keras``.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gansr.errors import DataError
from gansr.imageio import decode_rgb, encode_png
from gansr.layout import GENERATOR_FILE

# The input and output columns: an image as a base64 file or as pixels, and the style to draw it in.
PNG, PIXELS, STYLE = "png", "pixels", "style"
class GeneratorService:
    """Upscales the rows of a DataFrame of images with one generator."""

    def __init__(self, model_file: Path) -> None:
        from gansr.inference import Upscaler, load_generator

        self.upscaler = Upscaler(load_generator(model_file))

    def predict(self, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Upscale every row; raise DataError naming the first row that holds no readable image."""
        if not isinstance(model_input, pd.DataFrame):
            raise DataError(f"expected a DataFrame with a '{PNG}' or '{PIXELS}' column, "
                            f"got {type(model_input).__name__}")
        rows = []
        for number, row in enumerate(model_input.to_dict("records")):
            image, as_png = _decode_row(row, number)
            style = row.get(STYLE)
            index = self.upscaler.style_index("" if _missing(style) else style)
            sr = self.upscaler(image, style=index)
            rows.append({PNG: base64.b64encode(encode_png(sr)).decode("ascii")} if as_png
                        else {PIXELS: sr.tolist()})
        return pd.DataFrame(rows)


def _decode_row(row: dict[str, Any], number: int) -> tuple[np.ndarray, bool]:
    """Row ``number``'s image as H×W×3 uint8, and whether it came as an encoded file."""
    png, pixels = row.get(PNG), row.get(PIXELS)
    if not _missing(png):
        try:
            data = base64.b64decode(png, validate=True)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise DataError(f"row {number}: '{PNG}' is not base64 ({exc})") from exc
        return decode_rgb(data, f"row {number}")[0], True
    if not _missing(pixels):
        try:
            array = np.asarray(pixels)
        except ValueError as exc:  # ragged rows
            raise DataError(f"row {number}: '{PIXELS}' is not an H×W×3 array ({exc})") from exc
        if array.ndim != 3 or array.shape[2] != 3 or array.dtype.kind not in "iuf":
            raise DataError(f"row {number}: '{PIXELS}' must be an H×W×3 array of numbers, "
                            f"got shape {array.shape}")
        if array.min() < 0 or array.max() > 255:
            raise DataError(f"row {number}: '{PIXELS}' values must lie in 0-255")
        return np.rint(array).astype(np.uint8), False
    raise DataError(f"row {number}: no image (give '{PNG}' or '{PIXELS}')")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _load_pyfunc(data_path: str) -> GeneratorService:
    """MLflow's entry point: the service for the generator saved under ``data_path``."""
    path = Path(data_path)
    return GeneratorService(path / GENERATOR_FILE if path.is_dir() else path)
