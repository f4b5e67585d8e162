"""A generator packaged for MLflow: the pyfunc model that the registry versions and ``mlflow models serve`` runs."""

from __future__ import annotations

import base64
import shutil
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types.schema import Array, ColSpec, DataType, Schema

import gansr
from gansr import serving
from gansr.imageio import encode_png
from gansr.layout import GENERATOR_FILE
from gansr.models.archive import save_generator
from gansr.models.layers import style_names

MODEL_NAME = "generator"  # the logged model's name inside a run
DATA_FOLDER = "generator"  # the generator's files, under the logged model's data/
# Installed packages a loaded generator needs; mlflow itself is added by MLflow.
RUNTIME_PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "numpy", "pandas", "pillow", "psutil")
_PIXEL_ROWS = Array(Array(Array(DataType.long)))  # H × W × RGB

# One row per image, free H and W: a base64 image file or the pixels themselves.
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec(DataType.string, serving.PNG, required=False),
                   ColSpec(_PIXEL_ROWS, serving.PIXELS, required=False),
                   ColSpec(DataType.string, serving.STYLE, required=False)]),
    outputs=Schema([ColSpec(DataType.string, serving.PNG, required=False),
                    ColSpec(_PIXEL_ROWS, serving.PIXELS, required=False)]),
)


def input_example() -> pd.DataFrame:
    """One small PNG, as a client would send it (MLflow stores it as the serving example)."""
    ramp = np.linspace(0, 255, 16, dtype=np.uint8)
    image = np.stack(np.broadcast_arrays(ramp[:, None], ramp[None, :], ramp[::-1, None]), axis=-1)
    return pd.DataFrame({serving.PNG: [base64.b64encode(encode_png(image)).decode("ascii")]})


def log_generator(model: keras.Model, lite: Sequence[Path] = ()) -> ModelInfo:
    """Log ``model`` to the active run as a pyfunc model that ``mlflow models serve`` runs as is.

    The pyfunc (:mod:`gansr.serving`) holds ``data/generator/generator.keras``
    and a copy of the gansr package, with exact pins of the runtime packages
    it needs. ``lite`` files (the TFLite export and its runtime info) go
    beside the Keras file, so ``gansr upscale`` runs the registered model on
    LiteRT too.
    """
    with tempfile.TemporaryDirectory(prefix="gansr-log-") as staging:
        staged = Path(staging)
        data = staged / DATA_FOLDER
        data.mkdir()
        save_generator(model, data / GENERATOR_FILE)
        for path in lite:
            shutil.copyfile(path, data / path.name)
        package = Path(gansr.__file__).parent
        shutil.copytree(package, staged / "code" / package.name,
                        ignore=shutil.ignore_patterns("__pycache__"))
        return mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            loader_module=serving.__name__,
            data_path=str(data),
            code_paths=[str(staged / "code" / package.name)],
            signature=SIGNATURE,
            input_example=input_example(),
            pip_requirements=_pip_requirements(),
            metadata={"gansr_version": _version("gansr"), "styles": [str(name) for name in style_names(model)]},
        )


def _pip_requirements() -> list[str]:
    """Exact pins of the installed runtime packages; faster and surer than MLflow's inference."""
    return [f"{name}=={version}" for name in RUNTIME_PACKAGES if (version := _version(name))]


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
