"""The light runtime: a generator's TFLite export run by LiteRT, without TensorFlow.

Importing TensorFlow alone takes seconds; LiteRT (``ai-edge-litert``) loads
in a fraction of one, so ``gansr upscale`` on one photo starts at once. The
export stage writes, beside each variant's ``generator_fp16.tflite``, a
``generator.json`` with what tiling needs to know and the flat buffer does
not say: scale, style names, receptive radius, memory per LR pixel
(:func:`write_runtime_info`). The export check runs every TFLite file
through :class:`LiteGenerator`, the runtime users get.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from gansr.atomic import write_json
from gansr.errors import GansrError
from gansr.imageio import to_uint8
from gansr.layout import RUNTIME_INFO_FILE
from gansr.quiet import native_messages_hidden
from gansr.tiling import TiledUpscaler

# LiteRT (XNNPACK) holds about 2.3× the activations the export's estimate counts per LR pixel (measured
# 3.0 vs 1.34 KB for the default generator, 20 vs 8.9 KB for the styled one), ~3× with the float input
# and output buffers (bench/upscale.py).
ARENA_FACTOR = 3
SERVING_SIGNATURE = "serving_default"  # the converter prefixes the signature's input names with it
INFO_KEYS = ("scale", "styles", "receptive_radius", "bytes_per_lr_pixel")


class LiteGenerator:
    """A ``.tflite`` generator: inputs by name (``lr``, and ``style`` for a styled one), of any size.

    The interpreter is re-allocated only when the input shapes change, so
    the same-shaped windows of a tiled image reuse one allocation.
    """

    def __init__(self, path: Path, threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        if not path.is_file():
            raise GansrError(f"no TFLite generator at {path} (run `dvc repro` first, or pass --runtime tf)")
        try:
            with native_messages_hidden():  # "Created TensorFlow Lite XNNPACK delegate for CPU"
                # From bytes, not a mapped file: a registered model's download is deleted once loaded.
                self._interpreter = Interpreter(model_content=path.read_bytes(), num_threads=threads or os.cpu_count())
        except (ValueError, RuntimeError) as exc:
            raise GansrError(f"{path}: not a loadable TFLite model ({str(exc).splitlines()[0]})") from exc
        self._inputs = {_input_name(d["name"]): d["index"] for d in self._interpreter.get_input_details()}
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._shapes: dict[str, tuple[int, ...]] = {}

    @property
    def input_names(self) -> list[str]:
        """The model's input names: ``["lr"]`` or ``["lr", "style"]``."""
        return list(self._inputs)

    def __call__(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """The output for inputs by name: ``lr`` float32 [B, H, W, 3] in [0, 1], ``style`` int32 [B]."""
        shapes = {name: value.shape for name, value in feed.items()}
        if shapes != self._shapes:
            for name, shape in shapes.items():
                self._interpreter.resize_tensor_input(self._inputs[name], shape)
            with native_messages_hidden():
                self._interpreter.allocate_tensors()
            self._shapes = shapes
        for name, value in feed.items():
            self._interpreter.set_tensor(self._inputs[name], value)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output)


class LiteUpscaler(TiledUpscaler):
    """The TFLite export at ``path`` as a :class:`~gansr.tiling.TiledUpscaler`, described by its runtime info."""

    def __init__(self, path: Path, tile: int | None = None, overlap: int | None = None, style: int = 0,
                 max_memory: int | None = None) -> None:
        info = read_runtime_info(path.with_name(RUNTIME_INFO_FILE))
        super().__init__(info["scale"], info["styles"], info["receptive_radius"],
                         math.ceil(info["bytes_per_lr_pixel"] * ARENA_FACTOR), tile, overlap, style, max_memory)
        self.generator = LiteGenerator(path)

    def _run(self, lr: np.ndarray, style: int) -> np.ndarray:
        feed = {"lr": lr.astype(np.float32) / np.float32(255.0)}
        if self.styles:
            feed["style"] = np.full(lr.shape[:1], style, np.int32)
        return to_uint8(self.generator(feed))


def write_runtime_info(folder: Path, info: dict[str, Any]) -> None:
    """Write what :class:`LiteUpscaler` needs to know of a generator (:data:`INFO_KEYS`) into ``folder``."""
    write_json(folder / RUNTIME_INFO_FILE, {key: info[key] for key in INFO_KEYS})


def read_runtime_info(path: Path) -> dict[str, Any]:
    """The runtime info at ``path``, checked for every :data:`INFO_KEYS` entry."""
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise GansrError(f"no {path.name} beside the TFLite generator in {path.parent} "
                         "(rerun the export stage: `dvc repro export`)") from None
    except (OSError, ValueError) as exc:
        raise GansrError(f"{path}: unreadable runtime info ({exc})") from exc
    missing = [key for key in INFO_KEYS if key not in info]
    if missing:
        raise GansrError(f"{path}: runtime info lacks {', '.join(missing)} (rerun `dvc repro export`)")
    return info


def _input_name(tensor_name: str) -> str:
    """``serving_default_lr:0`` → ``lr``."""
    return tensor_name.split(":")[0].removeprefix(f"{SERVING_SIGNATURE}_")
