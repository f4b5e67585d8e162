"""Runs and their provenance: each training run records the code, data and params it came from.

Stages share one run per generator: training starts it (:class:`MlflowRunLog`,
which the training phases record through), logs its data
(:func:`log_training_data`) and tags it with the MD5 of the file it wrote
(:func:`tag_generator`); ``evaluate`` and ``export`` find it by that file
(:func:`generator_run_id`) and resume it through :func:`start_run`.
"""

from __future__ import annotations

import hashlib
import subprocess
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import yaml
from mlflow import ActiveRun, MlflowClient
from mlflow.entities import LifecycleStage
from mlflow.exceptions import MlflowException

from gansr.errors import TrackingError
from gansr.layout import DVC_LOCK_FILE, PARAMS_FILE
from gansr.tracking.store import configure, mlflow_message

# A training run's tag naming the generator file it wrote by its MD5 (DVC's hash of a file): the link
# from a DVC output to its MLflow run, kept out of the output so a reproduced run writes the same bytes.
GENERATOR_TAG = "gansr.generator_md5"


def run_tags(root: Path) -> dict[str, str]:
    """Tags that trace a run back to code (git commit), data (dvc.lock) and params (params.yaml)."""
    commit = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    return {
        "git.commit": commit or "unknown",
        "git.dirty": "unknown" if status is None else str(bool(status)).lower(),
        "dvc.lock.sha256": _file_sha256(root / DVC_LOCK_FILE),
        "params.sha256": _file_sha256(root / PARAMS_FILE),
    }


def log_training_data(manifest: pd.DataFrame, manifest_dir: Path, root: Path) -> None:
    """Record the validated manifest a run trains on as the active run's MLflow dataset input.

    Its digest is DVC's hash of ``manifest_dir`` from ``dvc.lock`` (the same
    string ``dvc status`` compares), so the run page names exactly the data
    version; outside a DVC pipeline MLflow's own digest of the table stands in.
    """
    name = _repo_relative(manifest_dir, root)
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


class MlflowRunLog:
    """A training phase's run in the MLflow store of the repository at ``root`` (``training.run_log.RunLog``)."""

    def __init__(self, root: Path, experiment: str) -> None:
        self.root, self.experiment = root, experiment

    @contextmanager
    def run(self, name: str, resume_id: str | None) -> Iterator[tuple[str, bool]]:
        with start_run(self.root, self.experiment, run_name=name, resume_run_id=resume_id) as run:
            yield run.info.run_id, run.info.run_id != resume_id

    def record_inputs(self, params: dict[str, Any], tags: dict[str, str], data: pd.DataFrame, data_dir: Path) -> None:
        mlflow.log_params(params)
        mlflow.set_tags(tags)
        log_training_data(data, data_dir, self.root)

    def tags(self, tags: dict[str, str]) -> None:
        mlflow.set_tags(tags)

    def metrics(self, values: dict[str, float], step: int | None = None) -> None:
        mlflow.log_metrics(values, step=step)

    def image(self, image: np.ndarray, name: str) -> None:
        mlflow.log_image(image, name)

    def generator(self, path: Path) -> None:
        tag_generator(path)


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
        raise TrackingError(f"cannot search MLflow experiment '{experiment}': {mlflow_message(exc)}") from exc
    if found:
        return found[0].info.run_id
    with start_run(root, experiment, run_name) as run:
        mlflow.set_tags({GENERATOR_TAG: digest,
                         "gansr.note": f"no training run of {generator.name} in this store; started for its results"})
        return run.info.run_id


def record_results(root: Path, experiment: str, variant: str, generator: Path, metrics: dict[str, float],
                   files: list[Path], folder: str) -> None:
    """Add ``metrics``, and ``files`` as artifacts under ``folder``, to the run that trained ``generator``."""
    with start_run(root, experiment, variant, generator_run_id(root, experiment, variant, generator)):
        mlflow.log_metrics(metrics)
        for file in files:
            mlflow.log_artifact(str(file), folder)


def dvc_hash(root: Path, path: str) -> str | None:
    """DVC's hash of the stage output ``path`` (relative to ``root``) as recorded in ``root/dvc.lock``."""
    try:
        lock = yaml.safe_load((root / DVC_LOCK_FILE).read_text()) or {}
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


def _run_exists(run_id: str) -> bool:
    try:
        run = MlflowClient().get_run(run_id)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return False
        raise
    return run.info.lifecycle_stage != LifecycleStage.DELETED


def _repo_relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form, as dvc.yaml writes it (absolute if outside)."""
    path, root = path.resolve(), root.resolve()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()


def _md5(path: Path) -> str:
    try:
        return hashlib.md5(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise TrackingError(f"cannot read {path}: {exc.strerror}") from exc


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "none"


def _git(root: Path, *args: str) -> str | None:
    """Output of a git command in ``root``, or None outside a repository or without git."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
