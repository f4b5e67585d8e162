"""Running a generator on whole images."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from gansr.errors import GansrError
from gansr.metrics import to_uint8
from gansr.models import layers as _custom_layers  # noqa: F401  (registers custom layers)


def load_generator(spec: str | Path) -> keras.Model:
    """Load a generator from a ``.keras`` file or a ``models:/name@alias`` registry URI."""
    spec = str(spec)
    if spec.startswith("models:/"):
        from gansr.tracking import load_registered_generator

        return load_registered_generator(spec)
    path = Path(spec)
    if not path.is_file():
        raise GansrError(f"no generator at {path} (run `dvc repro` first, or pass --model)")
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a damaged archive
        raise GansrError(f"{path}: not a loadable Keras generator ({exc})") from exc


class Upscaler:
    """Upscale uint8 RGB images with one compiled forward pass per call."""

    def __init__(self, model: keras.Model) -> None:
        self.model = model
        self._forward = tf.function(
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)],
        )

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """H×W×3 uint8 → (s·H)×(s·W)×3 uint8."""
        batch = tf.constant(image[None].astype(np.float32) / 255.0)
        return to_uint8(self._forward(batch)[0].numpy())


def bicubic_upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """The baseline every generator is measured against: plain bicubic ×scale."""
    height, width = image.shape[:2]
    out = tf.image.resize(image[None].astype(np.float32) / 255.0, (height * scale, width * scale),
                          method="bicubic")
    return to_uint8(out[0].numpy())
