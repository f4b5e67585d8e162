"""The registered generator as a pyfunc: in process, and behind a real `mlflow models serve`."""

from __future__ import annotations

import base64
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import keras
import mlflow
import numpy as np
import pandas as pd
import pytest
import requests
from PIL import Image

from gansr import tracking
from gansr.config import TrackingConfig
from gansr.errors import DataError, GansrError
from gansr.imageio import encode_png
from gansr.inference import Upscaler

pytestmark = pytest.mark.slow

PLAIN = TrackingConfig(experiment="serving", registered_model="plain")
STYLED = TrackingConfig(experiment="serving", registered_model="styled")
SERVER_START_S = 180.0


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory,
          random_generator: Callable[..., keras.Model]) -> Iterator[dict]:
    """A store holding a plain and a styled tiny generator, each registered as champion."""
    root = tmp_path_factory.mktemp("repo")
    (root / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    models = {"plain": random_generator(1), "styled": random_generator(2, styles=("ink", "wax"))}
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.chdir(root)
        for cfg in (PLAIN, STYLED):
            with tracking.start_run(root, cfg.experiment, run_name=cfg.registered_model) as run:
                run_id = run.info.run_id
            tracking.register_generator(models[cfg.registered_model], run_id, {"y_psnr": 30.0}, cfg, root)
        yield {"root": root, "models": models, "uri": tracking.tracking_uri(root)}


def picture(height: int = 11, width: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def png_b64(image: np.ndarray) -> str:
    return base64.b64encode(encode_png(image)).decode("ascii")


def from_png_b64(text: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text))).convert("RGB"))


def test_png_and_pixel_rows_give_the_pixels_gansr_upscale_writes(store: dict) -> None:
    served = mlflow.pyfunc.load_model("models:/plain@champion")
    first, second = picture(), picture(6, 9, seed=1)
    out = served.predict(pd.DataFrame({"png": [png_b64(first), None],
                                       "pixels": [None, second.tolist()]}))
    upscale = Upscaler(store["models"]["plain"])
    np.testing.assert_array_equal(from_png_b64(out["png"][0]), upscale(first))
    np.testing.assert_array_equal(np.asarray(out["pixels"][1], np.uint8), upscale(second))


def test_a_style_column_picks_the_style_by_name_or_number(store: dict) -> None:
    served = mlflow.pyfunc.load_model("models:/styled@champion")
    image = picture()
    out = served.predict(pd.DataFrame({"png": [png_b64(image)] * 3, "style": ["wax", "2", None]}))
    upscale = Upscaler(store["models"]["styled"])
    wax, plain = upscale(image, style=2), upscale(image, style=0)
    assert not np.array_equal(wax, plain)
    for row, expected in zip(out["png"], (wax, wax, plain)):
        np.testing.assert_array_equal(from_png_b64(row), expected)


@pytest.mark.parametrize(("row", "message"), [
    ({"png": "not base64!"}, "row 0: 'png' is not base64"),
    ({"png": base64.b64encode(b"\x89PNG\r\n\x1a\n truncated").decode()}, "row 0: cannot read image"),
    ({"png": ""}, "row 0: empty file"),
    ({"pixels": [[[1, 2, 3, 4]]]}, r"row 0: 'pixels' must be an H×W×3 array"),
    ({"pixels": [[[0, 0, 300]]]}, "row 0: 'pixels' values must lie in 0-255"),
    ({"style": "ink"}, r"row 0: no image"),
])
def test_bad_rows_are_refused_naming_the_row(store: dict, row: dict, message: str) -> None:
    served = mlflow.pyfunc.load_model("models:/styled@champion")
    with pytest.raises(DataError, match=message):
        served.predict(pd.DataFrame([row]))


def test_a_served_model_with_a_lambda_layer_is_refused(store: dict, lambda_model_file: Path) -> None:
    cfg = TrackingConfig(experiment="serving", registered_model="unsafe")
    with tracking.start_run(store["root"], cfg.experiment, run_name="unsafe") as run:
        run_id = run.info.run_id
    tracking.register_generator(keras.saving.load_model(lambda_model_file, safe_mode=False), run_id,
                                {"y_psnr": 30.0}, cfg, store["root"])
    with pytest.raises(GansrError, match="not a loadable Keras generator.*Lambda"):
        mlflow.pyfunc.load_model("models:/unsafe@champion")


def test_an_unknown_style_is_refused(store: dict) -> None:
    served = mlflow.pyfunc.load_model("models:/styled@champion")
    with pytest.raises(Exception, match="style chalk: unknown; this generator knows ink, wax"):
        served.predict(pd.DataFrame({"png": [png_b64(picture())], "style": ["chalk"]}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(store: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow models serve -m models:/plain@champion` on 127.0.0.1, as a user starts it."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    bin_dir = Path(sys.executable).parent  # mlflow and the uvicorn it starts
    env = {**os.environ, "MLFLOW_TRACKING_URI": store["uri"], "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    mlflow_cli = bin_dir / "mlflow"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(mlflow_cli), "models", "serve", "-m", "models:/plain@champion", "--env-manager", "local",
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            cwd=store["root"], env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"mlflow models serve exited {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if requests.get(f"{url}/ping", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(1)
        else:
            pytest.fail(f"mlflow models serve did not answer in {SERVER_START_S:.0f} s:\n{log.read_text()[-3000:]}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_served_model_upscales_a_posted_png(store: dict, server: str) -> None:
    image = picture(13, 10, seed=3)
    response = requests.post(f"{server}/invocations", timeout=60,
                             json={"dataframe_records": [{"png": png_b64(image)}]})
    assert response.ok, response.text
    (row,) = response.json()["predictions"]
    np.testing.assert_array_equal(from_png_b64(row["png"]), Upscaler(store["models"]["plain"])(image))


def test_served_model_upscales_posted_pixels(store: dict, server: str) -> None:
    image = picture(5, 8, seed=4)
    response = requests.post(f"{server}/invocations", timeout=60,
                             json={"dataframe_split": {"columns": ["pixels"], "data": [[image.tolist()]]}})
    assert response.ok, response.text
    (row,) = response.json()["predictions"]
    np.testing.assert_array_equal(np.asarray(row["pixels"], np.uint8),
                                  Upscaler(store["models"]["plain"])(image))


def test_served_model_answers_a_bad_image_with_a_clear_error(server: str) -> None:
    response = requests.post(f"{server}/invocations", timeout=60,
                             json={"dataframe_records": [{"png": base64.b64encode(b"GIF89a").decode()}]})
    assert response.status_code == 400, response.text
    assert "row 0: cannot read image" in response.text or "row 0: not a readable image" in response.text
