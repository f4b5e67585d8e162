"""Fixtures shared by several test modules."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import keras
import numpy as np
import pytest
from local_servers import free_port, wait_until_healthy

from gansr.models.generator import build_generator
from gansr.style.network import build_styled_generator


@pytest.fixture(scope="session")
def random_generator() -> Callable[..., keras.Model]:
    """A builder of tiny generators whose output depends on every weight.

    The sub-pixel conv is zero-initialised (the net starts as exactly bicubic),
    which would hide a weight that failed to round-trip or a seam between
    tiles, so every weight is drawn at random here (a style swap's
    candidates too: random, but fixed by the seed).
    """
    def build(seed: int = 0, scale: int = 2, channels: int = 4, blocks: int = 1,
              styles: tuple[str, ...] = ()) -> keras.Model:
        model = (build_styled_generator(scale, channels, blocks, styles, style_channels=8, style_blocks=1,
                                        patches=16, shading=0.5)
                 if styles else build_generator(scale, channels, blocks))
        rng = np.random.default_rng(seed)
        model.set_weights([rng.normal(0, 0.1, w.shape).astype("float32") for w in model.get_weights()])
        return model

    return build


@pytest.fixture
def lambda_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``.keras`` archive whose model holds a Lambda layer: loading it would run code from the file."""
    image = keras.Input((None, None, 3))
    model = keras.Model(image, keras.layers.Lambda(lambda x: x * 2.0)(image))
    path = tmp_path_factory.mktemp("unsafe") / "generator.keras"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on 127.0.0.1 (SQLite backend, artifacts proxied by the server); its URI.

    The team setup in miniature: clients reach runs, the registry and model
    files only through HTTP.
    """
    folder = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = folder / "server.log"
    command = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
               "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}", "--serve-artifacts",
               "--artifacts-destination", (folder / "artifacts").as_uri(), "--workers", "2"]
    # No job runner: its consumer processes (half a dozen) would compete with the tests for two cores.
    environment = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log.open("w") as output:
        server = subprocess.Popen(command, cwd=folder, stdout=output, stderr=subprocess.STDOUT, env=environment)
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(uri, server, lambda: log.read_text()[-3000:])
        yield uri
    finally:
        server.terminate()
        server.wait(timeout=30)

