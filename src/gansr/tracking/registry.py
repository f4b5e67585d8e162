"""The Model Registry's champion policy: register a version, decide who is champion, load and list versions.

:func:`register_generator` adds a version, aliases it ``challenger`` and moves
``champion`` only when the new version is better. ``gansr info`` lists the
versions (:func:`list_versions`) and ``gansr promote`` moves ``champion`` by
hand under the same rule (:func:`promote`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

import keras
import mlflow
import numpy as np
from filelock import FileLock
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models.model import ModelInfo
from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

from gansr.config import TrackingConfig
from gansr.errors import TrackingError
from gansr.tracking.packaging import log_generator
from gansr.tracking.runs import run_tags
from gansr.tracking.store import SQLITE, connect, is_server, mlflow_message, sqlite_file

CHAMPION = "champion"
CHALLENGER = "challenger"
PROMOTION_TAG = "promotion"  # a version's tag holding the last decision about its champion alias
# Registry decisions take well under a second; a lock held this long means a stuck process.
REGISTRY_LOCK_TIMEOUT_S = 120.0


def register_generator(
    model: keras.Model,
    run_id: str,
    metrics: dict[str, float],
    cfg: TrackingConfig,
    root: Path,
    lite: Sequence[Path] = (),
) -> dict[str, Any]:
    """Log ``model`` (with its ``lite`` files) to run ``run_id``, register it as a new version, set its aliases.

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
            new = _new_version(client, name, log_generator(model, lite), run_id, version_tags)
            # Read champion → decide → set aliases must not interleave with another registration,
            # or both see the same old champion and the later (maybe worse) one wins.
            with _registry_lock(uri):
                champion, champion_score = _champion(client, name, metric)
                promote, why = _decide(new, score, champion, champion_score, metric, cfg.champion_margin)
                decision = f"{CHAMPION if promote else CHALLENGER}: {why}"
                _set_aliases(client, name, new, promote, decision)
            if promote and is_server(uri):
                _converge_champion(client, name, metric, since=champion)
    except MlflowException as exc:
        raise TrackingError(f"cannot register model '{name}': {mlflow_message(exc)}") from exc
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


def load_downloaded_generator(local: Path, uri: str) -> keras.Model:
    """The Keras generator of a model ``download_model`` fetched from ``uri`` into ``local``, in Keras safe mode."""
    # data/generator/generator.keras in a gansr pyfunc model (data/generator.keras before it carried
    # its TFLite export), data/model.keras in a plain Keras one.
    saved = sorted(local.glob("data/**/*.keras"))
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
        raise TrackingError(f"cannot read registered model '{name}' in {uri}: {mlflow_message(exc)}") from exc
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
        raise TrackingError(f"cannot promote a version of model '{name}': {mlflow_message(exc)}") from exc
    return {**result, "promoted": True, "decision": decision}


def _in_run(run_id: str) -> AbstractContextManager[Any]:
    """The active run if it is ``run_id``, else ``run_id`` resumed for the duration."""
    active = mlflow.active_run()
    return nullcontext(active) if active and active.info.run_id == run_id else mlflow.start_run(run_id=run_id)


def _new_version(client: MlflowClient, name: str, logged: ModelInfo, run_id: str, tags: dict[str, str]) -> int:
    """Register the logged model as a new version of ``name``; return its number."""
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
    if is_server(uri) or uri == SQLITE + ":memory:":
        return nullcontext()
    database = sqlite_file(uri)
    lock = database.with_name(database.name + ".lock") if database else Path(uri).resolve() / ".registry.lock"
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


def _ensure_registered_model(client: MlflowClient, name: str) -> None:
    try:
        client.create_registered_model(name, description="gansr super-resolution generator")
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


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
