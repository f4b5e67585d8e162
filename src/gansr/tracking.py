"""MLflow in one place: where runs are stored, how they are tagged, the registry.

The default store is a SQLite file at the repository root
(``sqlite:////abs/repo/mlflow.db``) with artifacts beside it in
``mlartifacts/``; ``MLFLOW_TRACKING_URI`` points everything at a real server
instead. A remote server is probed before use, so a dead one fails in seconds
with one line rather than after MLflow's minutes of retries.

Stages share one run per generator: training starts it, logs its data
(:func:`log_training_data`) and tags it with the MD5 of the file it wrote
(:func:`tag_generator`); ``evaluate`` and ``export`` find it by that file
(:func:`generator_run_id`) and resume it through :func:`start_run`. ``export`` calls
:func:`register_generator`, which adds a registry version, aliases it
``challenger`` and moves ``champion`` only when the new version is better.
``gansr info`` lists the versions (:func:`list_versions`) and ``gansr
promote`` moves ``champion`` by hand under the same rule (:func:`promote`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import keras
import mlflow
import numpy as np
import pandas as pd
import requests
import yaml
from filelock import FileLock
from mlflow import ActiveRun, MlflowClient
from mlflow.entities import LifecycleStage
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

import gansr
from gansr import serving
from gansr.config import TrackingConfig
from gansr.errors import TrackingError
from gansr.layout import GENERATOR_FILE, find_root
from gansr.models.archive import save_generator
from gansr.models.generator import style_names

CHAMPION = "champion"
CHALLENGER = "challenger"
PROMOTION_TAG = "promotion"  # a version's tag holding the last decision about its champion alias
MODEL_NAME = "generator"  # the logged model's name inside a run
# A training run's tag naming the generator file it wrote by its MD5 (DVC's hash of a file): the link
# from a DVC output to its MLflow run, kept out of the output so a reproduced run writes the same bytes.
GENERATOR_TAG = "gansr.generator_md5"
# The MLflow UI opens an experiment with this tag value in its model-training view (runs, metrics, models).
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
# One probe of a remote server, DNS included; a healthy server answers in milliseconds.
PROBE_TIMEOUT_S = 5.0
# Installed packages a loaded generator needs; mlflow itself is added by MLflow.
RUNTIME_PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "numpy", "pandas", "pillow", "psutil")
# Registry decisions take well under a second; a lock held this long means a stuck process.
REGISTRY_LOCK_TIMEOUT_S = 120.0


def tracking_uri(root: Path) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the SQLite store of the repository at ``root``."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    return uri or f"sqlite:///{_store_root(root) / 'mlflow.db'}"


def connect(root: Path) -> str:
    """Point MLflow at the tracking store for ``root`` (probing a remote one first); return its URI."""
    uri = tracking_uri(root)
    _quiet_mlflow()
    if uri.startswith(("http://", "https://")):
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
        raise TrackingError(f"cannot use MLflow experiment '{experiment}' in {uri}: {_mlflow_message(exc)}") from exc
    return experiment_id


def run_tags(root: Path) -> dict[str, str]:
    """Tags that trace a run back to code (git commit), data (dvc.lock) and params (params.yaml)."""
    commit = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return {
        "git.commit": commit or "unknown",
        "git.dirty": "unknown" if status is None else str(bool(status)).lower(),
        "dvc.lock.sha256": _file_sha256(root / "dvc.lock"),
        "params.sha256": _file_sha256(root / "params.yaml"),
    }


def log_training_data(manifest: pd.DataFrame, manifest_dir: Path, root: Path) -> None:
    """Record the validated manifest a run trains on as the active run's MLflow dataset input.

    Its digest is DVC's hash of ``manifest_dir`` from ``dvc.lock`` (the same
    string ``dvc status`` compares), so the run page names exactly the data
    version; outside a DVC pipeline MLflow's own digest of the table stands in.
    """
    name = _relative(manifest_dir, root)
    with warnings.catch_warnings():
        # MLflow registers its local-file source for both "" and "file:" and warns that a path matches twice;
        # and its schema hint about integer columns concerns model inputs, not a logged table.
        warnings.filterwarnings("ignore", "The specified dataset source can be interpreted", UserWarning)
        warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer column", UserWarning)
        dataset = mlflow.data.from_pandas(manifest, source=str(manifest_dir.resolve()), name=name,
                                          digest=dvc_hash(root, name))
        mlflow.log_input(dataset, context="training")


def tag_generator(generator: Path) -> None:
    """Tag the active (training) run with the MD5 of the generator file it wrote."""
    mlflow.set_tag(GENERATOR_TAG, _md5(generator))


def generator_run_id(root: Path, experiment: str, run_name: str, generator: Path) -> str:
    """The newest run of ``experiment`` that wrote ``generator`` (by its MD5 tag), else a new run tagged with it.

    A clone that pulled its models from a DVC remote but logs to another
    store finds no training run: its evaluation and registration then go to a
    new run named ``run_name``, tagged with the same MD5.
    """
    digest = _md5(generator)
    experiment_id = configure(root, experiment)
    try:
        found = MlflowClient().search_runs([experiment_id], f"tags.`{GENERATOR_TAG}` = '{digest}'",
                                           order_by=["attributes.start_time DESC"], max_results=1)
    except MlflowException as exc:
        raise TrackingError(f"cannot search MLflow experiment '{experiment}': {_mlflow_message(exc)}") from exc
    if found:
        return found[0].info.run_id
    with start_run(root, experiment, run_name) as run:
        mlflow.set_tags({GENERATOR_TAG: digest,
                         "gansr.note": f"no training run of {generator.name} in this store; started for its results"})
        return run.info.run_id


def dvc_hash(root: Path, path: str) -> str | None:
    """DVC's hash of the stage output ``path`` (relative to ``root``) as recorded in ``root/dvc.lock``."""
    try:
        lock = yaml.safe_load((root / "dvc.lock").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    for stage in (lock.get("stages") or {}).values():
        for out in stage.get("outs") or []:
            if out.get("path") == path:
                return out.get("md5")
    return None


@contextmanager
def start_run(
    root: Path,
    experiment: str,
    run_name: str,
    resume_run_id: str | None = None,
    *,
    log_system_metrics: bool | None = None,
) -> Iterator[ActiveRun]:
    """Resume ``resume_run_id`` if this store has it (and it is not deleted), else start a new run.

    The run is tagged with :func:`run_tags` on every entry, so it carries the
    commit and dvc.lock of the latest stage that touched it. MLflow marks it
    FAILED if the body raises.
    """
    experiment_id = configure(root, experiment)
    resumable = resume_run_id is not None and _run_exists(resume_run_id)
    if resumable:
        run = mlflow.start_run(run_id=resume_run_id, log_system_metrics=log_system_metrics)
    else:
        run = mlflow.start_run(
            experiment_id=experiment_id, run_name=run_name, log_system_metrics=log_system_metrics
        )
    with run:
        mlflow.set_tags(run_tags(root))
        yield run


def register_generator(
    model: keras.Model,
    run_id: str,
    metrics: dict[str, float],
    cfg: TrackingConfig,
    root: Path,
) -> dict[str, Any]:
    """Log ``model`` to run ``run_id``, register it as a new version and set its aliases.

    The new version always becomes ``challenger``; it becomes ``champion`` when
    there is none yet, or when its ``cfg.champion_metric`` (higher is better)
    beats the champion's by more than ``cfg.champion_margin``. Returns the
    version, its aliases, the champion after the decision and the decision text.
    """
    metric, name = cfg.champion_metric, cfg.registered_model
    if metric not in metrics:
        have = ", ".join(sorted(metrics)) or "none"
        raise TrackingError(f"metrics lack tracking.champion_metric '{metric}' (have: {have})")
    score = float(metrics[metric])
    uri = connect(root)
    client = MlflowClient()
    version_tags = {**run_tags(root), **_metric_tags(metrics)}
    try:
        with _in_run(run_id):
            new = _log_and_register(client, model, name, run_id, version_tags)
            # Read champion → decide → set aliases must not interleave with another registration,
            # or both see the same old champion and the later (maybe worse) one wins.
            with _registry_lock(uri):
                champion, champion_score = _champion(client, name, metric)
                promote, why = _decide(new, score, champion, champion_score, metric, cfg.champion_margin)
                decision = f"{CHAMPION if promote else CHALLENGER}: {why}"
                _set_aliases(client, name, new, promote, decision)
            if promote and uri.startswith(("http://", "https://")):
                _converge_champion(client, name, metric, since=champion)
    except MlflowException as exc:
        raise TrackingError(f"cannot register model '{name}': {_mlflow_message(exc)}") from exc
    return {
        "name": name,
        "version": new,
        "model_uri": f"models:/{name}/{new}",
        "aliases": [CHAMPION, CHALLENGER] if promote else [CHALLENGER],
        "champion_version": new if promote else champion,
        "promoted": promote,
        "decision": decision,
        "metric": metric,
        "score": score,
        "previous_champion_version": champion,
        "previous_champion_score": champion_score,
    }


def load_registered_generator(uri: str, root: Path | None = None) -> keras.Model:
    """Load a registered generator, e.g. ``models:/gansr@champion``, with Keras safe mode on."""
    connect(root or find_root())
    # Download into a folder we own and delete: MLflow would otherwise leave a copy in /tmp.
    with tempfile.TemporaryDirectory(prefix="gansr-model-") as download:
        try:
            local = Path(mlflow.artifacts.download_artifacts(uri, dst_path=download))
        except MlflowException as exc:
            raise TrackingError(f"cannot load {uri}: {_mlflow_message(exc)}") from exc
        # data/generator.keras in a gansr pyfunc model, data/model.keras in a plain Keras one.
        saved = sorted(local.glob("data/*.keras"))
        if len(saved) != 1:
            raise TrackingError(f"{uri} holds no Keras generator (found {len(saved)} .keras files)")
        try:
            return keras.saving.load_model(saved[0], safe_mode=True)
        except Exception as exc:  # safe mode refuses Lambda layers; a damaged archive raises many types
            raise TrackingError(f"cannot load {uri}: not a loadable Keras generator ({exc})") from exc


def list_versions(root: Path, name: str) -> list[dict[str, Any]]:
    """Every version of registered model ``name``, newest first.

    Each row holds ``version``, ``aliases``, ``run_id``, ``tags`` (the scores
    recorded at registration among them) and ``created`` (a local datetime).
    """
    uri = connect(root)
    client = MlflowClient()
    try:
        aliases = client.get_registered_model(name).aliases
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise TrackingError(
                f"no registered model '{name}' in {uri} (run `dvc repro` to register one)") from exc
        raise TrackingError(f"cannot read registered model '{name}' in {uri}: {_mlflow_message(exc)}") from exc
    rows = [
        {
            "version": int(version.version),
            "aliases": sorted(alias for alias, number in aliases.items() if number == version.version),
            "run_id": version.run_id,
            "tags": dict(version.tags),
            "created": datetime.fromtimestamp(version.creation_timestamp / 1000),
        }
        for version in versions
    ]
    return sorted(rows, key=lambda row: row["version"], reverse=True)


def promote(
    root: Path,
    cfg: TrackingConfig,
    *,
    version: int | None = None,
    alias: str = CHALLENGER,
    force: bool = False,
) -> dict[str, Any]:
    """Move ``champion`` to ``version`` (else to the version that ``alias`` names) if it is better.

    Better means the same rule as at registration: ``cfg.champion_metric``
    beats the champion's by more than ``cfg.champion_margin``. A version that
    is not better is refused with a TrackingError unless ``force``. The
    decision, with both scores, is stored as the version's ``promotion`` tag
    and returned with the figures behind it.
    """
    name, metric = cfg.registered_model, cfg.champion_metric
    uri = connect(root)
    client = MlflowClient()
    try:
        if version is None:
            target = client.get_model_version_by_alias(name, alias)
        else:
            target = client.get_model_version(name, str(version))
        number = int(target.version)
        score = _version_score(client, target, metric)
        with _registry_lock(uri):  # the same read-decide-set section as a registration's
            champion, champion_score = _champion(client, name, metric)
            result = {"name": name, "version": number, "metric": metric, "score": score,
                      "previous_champion_version": champion, "previous_champion_score": champion_score}
            if champion == number:
                return {**result, "promoted": False, "decision": f"v{number} is already {CHAMPION}"}
            better, why = _decide(number, math.nan if score is None else score, champion,
                                  champion_score, metric, cfg.champion_margin)
            if not (better or force):
                client.set_model_version_tag(name, str(number), PROMOTION_TAG, f"not promoted: {why}")
                raise TrackingError(f"not promoted: {why} (--force promotes it anyway)")
            decision = f"{CHAMPION}: {why}" if better else f"{CHAMPION} (forced): {why}"
            client.set_registered_model_alias(name, CHAMPION, str(number))
            client.set_model_version_tag(name, str(number), PROMOTION_TAG, decision)
    except MlflowException as exc:
        raise TrackingError(f"cannot promote a version of model '{name}': {_mlflow_message(exc)}") from exc
    return {**result, "promoted": True, "decision": decision}


def _in_run(run_id: str) -> AbstractContextManager[Any]:
    """The active run if it is ``run_id``, else ``run_id`` resumed for the duration."""
    active = mlflow.active_run()
    return nullcontext(active) if active and active.info.run_id == run_id else mlflow.start_run(run_id=run_id)


def _log_and_register(
    client: MlflowClient, model: keras.Model, name: str, run_id: str, tags: dict[str, str]
) -> int:
    """Log ``model`` to the active run and register it as a new version of ``name``; return the version.

    The logged model is a pyfunc (:mod:`gansr.serving`) holding ``generator.keras``
    and a copy of the gansr package, so ``mlflow models serve`` runs it as is.
    """
    with tempfile.TemporaryDirectory(prefix="gansr-log-") as staging:
        staged = Path(staging)
        save_generator(model, staged / GENERATOR_FILE)
        package = Path(gansr.__file__).parent
        shutil.copytree(package, staged / "code" / package.name,
                        ignore=shutil.ignore_patterns("__pycache__"))
        logged = mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            loader_module=serving.__name__,
            data_path=str(staged / GENERATOR_FILE),
            code_paths=[str(staged / "code" / package.name)],
            signature=serving.SIGNATURE,
            input_example=serving.input_example(),
            pip_requirements=_pip_requirements(),
            metadata={"gansr_version": _version("gansr"), "styles": [str(name) for name in style_names(model)]},
        )
    _ensure_registered_model(client, name)
    # The client rather than mlflow.register_model, which prints to stderr.
    version = client.create_model_version(
        name, source=logged.model_uri, run_id=run_id, tags=tags, model_id=logged.model_id
    )
    new = int(version.version)
    # What mlflow.register_model would also record: the logged model's page links its version.
    client.set_logged_model_tags(
        logged.model_id, {MLFLOW_MODEL_VERSIONS: json.dumps([{"name": name, "version": new}])}
    )
    return new


def _set_aliases(client: MlflowClient, name: str, new: int, promote: bool, decision: str) -> None:
    """Alias version ``new`` (challenger, maybe champion) and record why on the version and the run."""
    client.set_registered_model_alias(name, CHALLENGER, str(new))
    if promote:
        client.set_registered_model_alias(name, CHAMPION, str(new))
    client.set_model_version_tag(name, str(new), PROMOTION_TAG, decision)
    mlflow.set_tags({"registry.model": name, "registry.version": str(new), "registry.decision": decision})


def _registry_lock(uri: str) -> AbstractContextManager[Any]:
    """A file lock beside a local store, serialising registry decisions across processes.

    A server has no such lock; :func:`_converge_champion` repairs a lost race there instead.
    """
    if uri.startswith(("http://", "https://")) or uri == "sqlite:///:memory:":
        return nullcontext()
    prefix = "sqlite:///"
    store = Path(uri[len(prefix) :] if uri.startswith(prefix) else uri).resolve()
    lock = store.with_name(store.name + ".lock") if uri.startswith(prefix) else store / ".registry.lock"
    return FileLock(lock, timeout=REGISTRY_LOCK_TIMEOUT_S)


def _converge_champion(client: MlflowClient, name: str, metric: str, since: int | None) -> None:
    """After moving ``champion`` on a server, move it on to the best version that also claimed it.

    Racing registrations cannot be locked out over HTTP, so each one that set
    ``champion`` compares after setting: every claimant tags its decision
    before comparing, so the last to compare sees all claims and leaves the
    alias on the best of them. Only versions newer than ``since`` (the champion
    the registration read) count, so an earlier, since-replaced champion stays replaced.
    """
    champion, champion_score = _champion(client, name, metric)
    claims = [
        (score, int(version.version))
        for version in client.search_model_versions(f"name = '{name}'")
        if int(version.version) > (since or 0)
        and version.tags.get(PROMOTION_TAG, "").startswith(f"{CHAMPION}:")
        and (score := _version_score(client, version, metric)) is not None and math.isfinite(score)
    ]
    if not claims:
        return
    best_score, best = max(claims)
    if champion != best and (champion_score is None or best_score > champion_score):
        client.set_registered_model_alias(name, CHAMPION, str(best))


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form, as dvc.yaml writes it (absolute if outside)."""
    path, root = path.resolve(), root.resolve()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()


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
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri == prefix + ":memory:":
        return None
    return (Path(uri[len(prefix) :]).resolve().parent / "mlartifacts").as_uri()


def _create_experiment(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    try:
        return client.create_experiment(name, artifact_location=artifact_location, tags=EXPERIMENT_KIND)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        # Another stage or queued experiment created it in between.
        return client.get_experiment_by_name(name).experiment_id


def _ensure_registered_model(client: MlflowClient, name: str) -> None:
    try:
        client.create_registered_model(name, description="gansr super-resolution generator")
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def _run_exists(run_id: str) -> bool:
    try:
        run = MlflowClient().get_run(run_id)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return False
        raise
    return run.info.lifecycle_stage != LifecycleStage.DELETED


def _champion(client: MlflowClient, name: str, metric: str) -> tuple[int | None, float | None]:
    """The current champion version and its score (version tag first, then its run's metric)."""
    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None, None
        raise
    return int(version.version), _version_score(client, version, metric)


def _version_score(client: MlflowClient, version: ModelVersion, metric: str) -> float | None:
    """A version's ``metric``: its version tag, else its run's metric; None when neither is known."""
    try:
        return float(version.tags[metric])
    except (KeyError, ValueError):
        pass
    if version.run_id:
        try:
            return client.get_run(version.run_id).data.metrics.get(metric)
        except MlflowException:
            pass  # the version's run was purged; its score is unknown
    return None


def _decide(
    new: int, score: float, champion: int | None, champion_score: float | None, metric: str, margin: float
) -> tuple[bool, str]:
    """Whether version ``new`` deserves the champion alias, and why, in one line with both scores."""
    mine = f"v{new} ({metric} {_fmt(metric, score)})"
    if not math.isfinite(score):
        kept = f"champion v{champion} kept" if champion else "no champion set"
        return False, f"{mine} is not a finite score; {kept}"
    if champion is None:
        return True, f"{mine}, no previous champion"
    if champion_score is None or not math.isfinite(champion_score):
        return False, f"{mine}; champion v{champion} has no {metric} to compare, kept"
    by = f" by more than {margin:g}" if margin else ""
    theirs = f"v{champion} ({_fmt(metric, champion_score)})"
    if score > champion_score + margin:
        return True, f"{mine} beats {theirs}{by}"
    return False, f"{mine} does not beat champion {theirs}{by}"


def _metric_tags(metrics: dict[str, Any]) -> dict[str, str]:
    """Numeric metrics as version tags, so a version's scores show in the registry without its run."""
    return {
        key: repr(float(value))
        for key, value in metrics.items()
        if isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    }


def _fmt(metric: str, value: float) -> str:
    return f"{value:.2f} dB" if "psnr" in metric.lower() else f"{value:.4f}"


def _pip_requirements() -> list[str]:
    """Exact pins of the installed runtime packages; faster and surer than MLflow's inference."""
    return [f"{name}=={version}" for name in RUNTIME_PACKAGES if (version := _version(name))]


def _md5(path: Path) -> str:
    try:
        return hashlib.md5(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise TrackingError(f"cannot read {path}: {exc.strerror}") from exc


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "none"


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _git(root: Path, *args: str) -> str | None:
    """Output of a git command in ``root``, or None outside a repository or without git."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


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


def _mlflow_message(exc: MlflowException) -> str:
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
