"""`gansr ui` (`make ui`): the MLflow UI opens on the training runs and the registered model, not on GenAI traces."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from local_servers import free_port, wait_until_healthy
from mlflow import MlflowClient

from gansr import tracking
from gansr.config import TrackingConfig
from gansr.tracking.ui import MODEL_TRAINING_VIEW

RUN_NAME = "psnr-run-to-find"  # a run name no MLflow page shows unless it lists the runs
BROWSERS = ("chromium-headless-shell", "chromium", "google-chrome", "chrome")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project whose store holds gansr's experiment with one training run and a registered model."""
    (tmp_path / "params.yaml").write_text("scale: 4\n")
    experiment = tracking.configure(tmp_path, TrackingConfig().experiment)
    with mlflow.start_run(experiment_id=experiment, run_name=RUN_NAME):
        mlflow.log_metric("y_psnr", 27.5)
    MlflowClient().create_registered_model(TrackingConfig().registered_model)
    return tmp_path


def test_the_pages_are_the_runs_and_the_model_in_the_model_training_view(project: Path, tmp_path_factory) -> None:
    experiment = MlflowClient().get_experiment_by_name("gansr").experiment_id
    assert tracking.ui_pages("http://host:5000/", TrackingConfig()) == {
        "Training runs": f"http://host:5000/#/experiments/{experiment}/runs?workflowType=machine_learning",
        "Registered model": "http://host:5000/#/models/gansr?workflowType=machine_learning",
    }
    empty = tmp_path_factory.mktemp("empty")
    tracking.connect(empty)  # before the first `dvc repro`: the lists
    assert list(tracking.ui_pages("http://host:5000", TrackingConfig()).values()) == [
        "http://host:5000/#/experiments?workflowType=machine_learning",
        "http://host:5000/#/models?workflowType=machine_learning",
    ]


def test_a_tracking_server_is_the_ui_so_nothing_starts(mlflow_server: str, monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path, capsys) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    tracking.open_ui(tmp_path, TrackingConfig(), "127.0.0.1", 1)  # port 1: would fail if anything started
    assert f"{mlflow_server}/#/experiments" in capsys.readouterr().out


@pytest.fixture
def served_ui(project: Path) -> Iterator[dict[str, str]]:
    """`gansr ui` serving ``project`` from a subfolder: the pages it printed."""
    port = free_port()
    (project / "docs").mkdir()
    command = [str(Path(sys.executable).parent / "gansr"), "ui", "--port", str(port)]
    environment = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    environment.pop("MLFLOW_TRACKING_URI", None)
    ui = subprocess.Popen(command, cwd=project / "docs", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=environment)
    try:
        pages = {}
        for line in ui.stdout:
            if line.startswith("Serving"):
                break
            name, url = line.split(": ", 1)
            pages[name] = url.strip()
        wait_until_healthy(f"http://127.0.0.1:{port}", ui, lambda: f"gansr ui printed {pages} but never answered")
        yield pages
    finally:
        ui.terminate()  # as a supervisor stops it: the server it started stops too, freeing the port
        ui.wait(timeout=30)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


@pytest.mark.slow
@pytest.mark.skipif(not any(map(shutil.which, BROWSERS)), reason=f"needs a headless browser ({', '.join(BROWSERS)})")
def test_the_printed_runs_page_shows_the_runs_in_a_real_browser(served_ui: dict[str, str], tmp_path: Path) -> None:
    runs = served_ui["Training runs"]
    assert RUN_NAME in _rendered_text(runs, tmp_path / "runs.png")
    # The control: the experiment's page without the view parameter opens on GenAI traces, no runs listed.
    genai = _rendered_text(runs.removesuffix(f"runs?{MODEL_TRAINING_VIEW}"), tmp_path / "genai.png")
    assert "Traces" in genai and RUN_NAME not in genai
    assert "gansr" in _rendered_text(served_ui["Registered model"], tmp_path / "model.png")


def _rendered_text(url: str, screenshot: Path) -> str:
    """The page's DOM after its scripts ran, in a fresh headless browser profile; a screenshot beside it."""
    browser = next(filter(None, map(shutil.which, BROWSERS)))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={screenshot.parent / 'profile'}",
             "--window-size=1400,900", "--virtual-time-budget=20000"]
    subprocess.run([browser, *flags, f"--screenshot={screenshot}", url], capture_output=True, timeout=180,
                   check=True)
    return subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=180,
                          check=True).stdout

