"""The team workflow through a real `mlflow server` over HTTP: export and register, promote, load the champion.

The server (tests/conftest.py) keeps runs in SQLite and model files in its own
artifact store, which clients reach only through the server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import keras
import numpy as np
import pytest
from mlflow import MlflowClient
from PIL import Image
from repo_helpers import export_inputs

from gansr import tracking
from gansr.config import parse_params
from gansr.stages import export as export_stage

pytestmark = pytest.mark.slow

PARAMS = parse_params({"tracking": {"experiment": "gansr-team", "registered_model": "team"},
                       "export": {"formats": ["keras"]}})


@pytest.fixture(scope="module")
def repo(mlflow_server: str, random_generator: Callable[..., keras.Model],
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A repository whose export stage registered psnr, gan, real and style on the server."""
    root = tmp_path_factory.mktemp("repo")
    generators = {"psnr": random_generator(1), "gan": random_generator(2), "real": random_generator(4),
                  "style": random_generator(3, styles=("gravel", "brick"))}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", mlflow_server)
        mp.chdir(root)
        (root / "params.yaml").write_text("tracking:\n  experiment: gansr-team\n  registered_model: team\n")
        export_stage.run(PARAMS, export_inputs(root, generators, PARAMS.tracking.experiment))
        yield root


def gansr(root: Path, server: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": server}
    return subprocess.run([str(Path(sys.executable).parent / "gansr"), *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_export_registers_every_variant_on_the_server(repo: Path, mlflow_server: str) -> None:
    registry = json.loads((repo / "models" / "registry.json").read_text())
    client = MlflowClient(mlflow_server)
    for registration in registry["variants"].values():
        version = client.get_model_version_by_alias(registration["name"], "champion")
        assert int(version.version) == registration["version"] == 1
        assert version.run_id == registration["run_id"]
    assert not (repo / "mlflow.db").exists() and not (repo / "mlartifacts").exists()  # all on the server


def test_the_champion_loads_over_http_and_matches_the_exported_file(repo: Path, mlflow_server: str) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(repo / "photo.png")
    served = gansr(repo, mlflow_server, "upscale", "photo.png", "served.png", "--model", "models:/team@champion")
    assert served.returncode == 0, served.stderr
    local = gansr(repo, mlflow_server, "upscale", "photo.png", "local.png",
                  "--model", "models/export/gan/generator.keras")
    assert local.returncode == 0, local.stderr
    assert np.array_equal(np.asarray(Image.open(repo / "served.png")), np.asarray(Image.open(repo / "local.png")))


def test_promote_and_info_work_through_the_server(repo: Path, mlflow_server: str, monkeypatch: pytest.MonkeyPatch,
                                                  random_generator: Callable[..., keras.Model]) -> None:
    client = MlflowClient(mlflow_server)
    run = client.create_run(client.get_experiment_by_name("gansr-team").experiment_id)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    second = tracking.register_generator(random_generator(4), run.info.run_id, {"y_psnr": 24.0},
                                         PARAMS.tracking, repo)
    assert second["version"] == 2 and not second["promoted"]  # worse than v1's 25.0
    refused = gansr(repo, mlflow_server, "promote", "--version", "2")
    assert refused.returncode == 1 and "does not beat champion v1" in refused.stderr
    forced = gansr(repo, mlflow_server, "promote", "--version", "2", "--force")
    assert forced.returncode == 0, forced.stderr
    assert client.get_model_version_by_alias("team", "champion").version == "2"
    info = gansr(repo, mlflow_server, "info")
    assert info.returncode == 0 and "champion" in info.stdout and "24.00" in info.stdout, info.stdout
