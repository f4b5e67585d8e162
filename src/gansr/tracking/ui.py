"""The MLflow UI on gansr's store, opened where the training runs and the registered model are.

MLflow 3's UI shows every experiment in its GenAI view (traces, token usage,
"detect issues") unless the page asks for the model-training view with the
query parameter ``workflowType``; the browser then keeps that choice. The
experiment's ``mlflow.experimentKind`` tag alone does not switch it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from gansr.config import TrackingConfig
from gansr.errors import TrackingError
from gansr.tracking.store import connect, is_server

MODEL_TRAINING_VIEW = "workflowType=machine_learning"


def ui_pages(base_url: str, tracking: TrackingConfig) -> dict[str, str]:
    """The UI's page of the experiment's runs and of the registered model, on the connected store.

    Before the first run there is no experiment or model yet: their lists instead.
    """
    client = MlflowClient()
    experiment = client.get_experiment_by_name(tracking.experiment)
    runs = f"experiments/{experiment.experiment_id}/runs" if experiment else "experiments"
    try:
        client.get_registered_model(tracking.registered_model)
        model = f"models/{quote(tracking.registered_model, safe='')}"
    except MlflowException:
        model = "models"
    return {name: f"{base_url.rstrip('/')}/#/{page}?{MODEL_TRAINING_VIEW}"
            for name, page in (("Training runs", runs), ("Registered model", model))}


def open_ui(root: Path, tracking: TrackingConfig, host: str, port: int) -> None:
    """Print the pages to open, then serve the UI on the project's store until interrupted.

    With ``MLFLOW_TRACKING_URI`` naming a server, that server is the UI: its pages are printed and nothing starts.
    """
    uri = connect(root)
    server = is_server(uri)
    for name, url in ui_pages(uri if server else f"http://{host}:{port}", tracking).items():
        print(f"{name + ':':<18} {url}")
    if server:
        return
    print(f"Serving {uri} (Ctrl-C stops it)", flush=True)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
    if (code := _serve(command, root)) not in (0, -signal.SIGTERM):
        raise TrackingError(f"mlflow ui on {host}:{port} exited with status {code} (see its lines above)")


def _serve(command: list[str], folder: Path) -> int:
    """Run the UI server until it exits; its exit status.

    Ctrl-C reaches the server directly (same process group). A SIGTERM to
    this process, as a supervisor or ``kill`` sends, is passed on to the
    server, which would otherwise outlive it, still holding the port.
    """
    server = subprocess.Popen(command, cwd=folder)
    previous = signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    try:
        return server.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
