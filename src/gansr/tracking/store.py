"""Where MLflow keeps gansr's runs and models: the store, its experiment, and a clear error when it is away.

The default store is a SQLite file at the repository root
(``sqlite:////abs/repo/mlflow.db``) with artifacts beside it in
``mlartifacts/``; ``MLFLOW_TRACKING_URI`` points everything at a real server
instead. A remote server is probed before use, so a dead one fails in seconds
with one line rather than after MLflow's minutes of retries.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import mlflow
import requests
from mlflow import MlflowClient
from mlflow.entities import LifecycleStage
from mlflow.exceptions import MlflowException

from gansr.errors import TrackingError
from gansr.layout import ARTIFACTS_DIR, STORE_FILE

SQLITE = "sqlite:///"
# The MLflow UI opens an experiment with this tag value in its model-training view (runs, metrics, models).
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
# One probe of a remote server, DNS included; a healthy server answers in milliseconds.
PROBE_TIMEOUT_S = 5.0


def tracking_uri(root: Path) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the SQLite store of the repository at ``root``."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    return uri or f"{SQLITE}{_store_root(root) / STORE_FILE}"


def connect(root: Path) -> str:
    """Point MLflow at the tracking store for ``root`` (probing a remote one first); return its URI."""
    uri = tracking_uri(root)
    _quiet_mlflow()
    if is_server(uri):
        _check_reachable(uri)
    # mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI; put the variable back so it
    # keeps meaning "the user's choice" and a later call with another root is not pinned here.
    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before
    return uri


def download_model(uri: str, root: Path, destination: Path) -> Path:
    """Download the logged model ``uri`` (e.g. ``models:/gansr@champion``) of ``root``'s store into ``destination``."""
    connect(root)
    try:
        return Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(destination)))
    except MlflowException as exc:
        raise TrackingError(f"cannot load {uri}: {mlflow_message(exc)}") from exc


def configure(root: Path, experiment: str) -> str:
    """Connect and make sure ``experiment`` exists; return its id.

    It is deliberately not made MLflow's active experiment: that would stop a
    later stage from resuming a run recorded under a since-renamed experiment.
    """
    uri = connect(root)
    try:
        client = MlflowClient()  # raises here for an unsupported or retired (file:) store
        found = client.get_experiment_by_name(experiment)
        if found is None:
            experiment_id = _create_experiment(client, experiment, _artifact_location(uri))
        elif found.lifecycle_stage == LifecycleStage.DELETED:
            raise TrackingError(
                f"MLflow experiment '{experiment}' in {uri} is deleted; restore it in the MLflow UI "
                f"or purge it with `mlflow gc --backend-store-uri {uri}`"
            )
        else:
            experiment_id = found.experiment_id
            for key, value in EXPERIMENT_KIND.items():  # an experiment made before gansr set it, or by hand
                if key not in found.tags:
                    client.set_experiment_tag(experiment_id, key, value)
    except MlflowException as exc:
        raise TrackingError(f"cannot use MLflow experiment '{experiment}' in {uri}: {mlflow_message(exc)}") from exc
    return experiment_id


def is_server(uri: str) -> bool:
    """Whether ``uri`` names a tracking server (HTTP) rather than a local store."""
    return uri.startswith(("http://", "https://"))


def sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` store URI; None for any other store and in-memory SQLite."""
    if not uri.startswith(SQLITE) or uri == SQLITE + ":memory:":
        return None
    return Path(uri[len(SQLITE) :]).resolve()


def _store_root(root: Path) -> Path:
    """The main repository even inside a ``dvc exp run --temp``/queue copy (``<repo>/.dvc/tmp/exps/…``).

    Queued experiments then log to the one store the user opens in ``mlflow ui``.
    """
    parts = root.resolve().parts
    for i in range(len(parts) - 2):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return root.resolve()


def _artifact_location(uri: str) -> str | None:
    """Artifacts beside a SQLite store (never a CWD-relative ./mlruns); a server chooses its own."""
    database = sqlite_file(uri)
    return None if database is None else (database.parent / ARTIFACTS_DIR).as_uri()


def _create_experiment(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    try:
        return client.create_experiment(name, artifact_location=artifact_location, tags=EXPERIMENT_KIND)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        # Another stage or queued experiment created it in between.
        return client.get_experiment_by_name(name).experiment_id


def _check_reachable(uri: str) -> None:
    """Raise TrackingError unless the server at ``uri`` answers within PROBE_TIMEOUT_S.

    The probe runs in a daemon thread so even a stalled DNS lookup, which
    requests' timeouts do not cover, cannot hold the caller.
    """
    outcome: list[str | None] = []
    probe = threading.Thread(target=lambda: outcome.append(_probe(uri)), daemon=True)
    probe.start()
    probe.join(PROBE_TIMEOUT_S)
    problem = outcome[0] if outcome else f"no answer within {PROBE_TIMEOUT_S:g} s"
    if problem:
        raise TrackingError(f"MLflow tracking server at {uri} is unreachable: {problem}")


def _probe(uri: str) -> str | None:
    """None if ``<uri>/health`` answers without a server error, else what went wrong."""
    try:
        # Any answer below 500 means a server is there; auth or proxy quirks surface later.
        response = requests.get(f"{uri.rstrip('/')}/health", timeout=PROBE_TIMEOUT_S)
    except requests.Timeout:
        return f"no answer within {PROBE_TIMEOUT_S:g} s"
    except requests.ConnectionError as exc:
        return _root_cause(exc)
    except requests.RequestException as exc:
        return str(exc)
    return f"HTTP {response.status_code} from /health" if response.status_code >= 500 else None


def mlflow_message(exc: MlflowException) -> str:
    """MLflow's message on one line (some span several, with stray indentation)."""
    return " ".join(exc.message.split())


def _root_cause(exc: BaseException) -> str:
    """The innermost reason (e.g. 'Connection refused') instead of urllib3's nested repr."""
    while exc.__cause__ or exc.__context__:
        exc = exc.__cause__ or exc.__context__
    reason = getattr(exc, "strerror", None) or str(exc)
    return reason.splitlines()[0] if reason else type(exc).__name__


def _quiet_mlflow() -> None:
    """Keep schema-migration and input-example INFO lines and download progress bars off the console.

    A user's own MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR still wins.
    """
    for name in ("mlflow.store.db.utils", "mlflow.pyfunc", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
