"""gansr.tracking against a real SQLite MLflow store and a tiny real generator."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import pytest
import yaml
from local_servers import free_port
from mlflow import MlflowClient

from gansr import tracking
from gansr.config import TrackingConfig
from gansr.errors import TrackingError
from gansr.models.layers import BicubicUpsample, DepthToSpace

CFG = TrackingConfig(experiment="gansr-test", registered_model="gansr-test", champion_margin=0.1)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A repository root using the default store (root/mlflow.db), entered from another folder."""
    root = tmp_path_factory.mktemp("repo")
    (root / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    elsewhere = tmp_path_factory.mktemp("cwd")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.chdir(elsewhere)  # artifacts must not follow the CWD
        yield root


@pytest.fixture(scope="module")
def registry(store: Path, random_generator: Callable[..., keras.Model]) -> dict[str, Any]:
    """Four versions: first, worse, better, and better by less than the margin."""
    scores = {"first": 26.0, "worse": 25.5, "better": 26.5, "marginal": 26.55}
    models = {label: random_generator(seed) for seed, label in enumerate(scores)}
    results, seconds = {}, []
    for label, model in models.items():
        with tracking.start_run(store, CFG.experiment, run_name=label) as run:
            run_id = run.info.run_id
        # Outside the run, as the export stage does: registration resumes it by id.
        start = time.perf_counter()
        metrics = {"y_psnr": scores[label], "ssim": 0.8, "note": "non-numeric entries are skipped"}
        results[label] = tracking.register_generator(model, run_id, metrics, CFG, store)
        seconds.append(time.perf_counter() - start)
    return {"models": models, "results": results, "seconds": seconds}


def test_default_store_is_an_absolute_sqlite_file_at_the_root(store: Path) -> None:
    assert tracking.tracking_uri(store) == f"sqlite:///{store.resolve()}/mlflow.db"


def test_a_dvc_temp_experiment_logs_to_the_main_repository_store(store: Path) -> None:
    copy = store / ".dvc" / "tmp" / "exps" / "tmpab12cd"
    assert tracking.tracking_uri(copy) == tracking.tracking_uri(store)


def test_environment_variable_overrides_the_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert tracking.tracking_uri(tmp_path) == "http://mlflow.example:5000"


def test_first_version_becomes_champion_and_challenger(registry: dict[str, Any]) -> None:
    first = registry["results"]["first"]
    assert first["version"] == 1
    assert sorted(first["aliases"]) == ["challenger", "champion"]
    assert first["champion_version"] == 1
    assert first["decision"].startswith("champion: v1 (y_psnr 26.00 dB)")


def test_worse_version_is_only_challenger(registry: dict[str, Any]) -> None:
    worse = registry["results"]["worse"]
    assert (worse["version"], worse["aliases"], worse["champion_version"]) == (2, ["challenger"], 1)
    assert worse["previous_champion_score"] == pytest.approx(26.0)
    assert "does not beat champion v1 (26.00 dB)" in worse["decision"]


def test_better_version_takes_champion(registry: dict[str, Any]) -> None:
    better = registry["results"]["better"]
    assert better["champion_version"] == 3 and better["promoted"]
    assert better["decision"] == "champion: v3 (y_psnr 26.50 dB) beats v1 (26.00 dB) by more than 0.1"


def test_gain_within_the_margin_keeps_the_champion(registry: dict[str, Any]) -> None:
    marginal = registry["results"]["marginal"]
    assert marginal["champion_version"] == 3 and not marginal["promoted"]
    aliases = MlflowClient().get_registered_model(CFG.registered_model).aliases
    assert {alias: int(version) for alias, version in aliases.items()} == {"champion": 3, "challenger": 4}


def test_version_and_run_carry_trace_tags_and_decision(store: Path, registry: dict[str, Any]) -> None:
    client = MlflowClient()
    version = client.get_model_version(CFG.registered_model, "3")
    lock_hash = hashlib.sha256((store / "dvc.lock").read_bytes()).hexdigest()
    assert version.tags["dvc.lock.sha256"] == lock_hash
    assert {"git.commit", "y_psnr", "ssim", "promotion"} <= set(version.tags) and "note" not in version.tags
    run = client.get_run(version.run_id)
    assert run.data.tags["registry.decision"] == registry["results"]["better"]["decision"]


def test_artifacts_land_beside_the_store_not_in_the_cwd(store: Path, registry: dict[str, Any]) -> None:
    assert len(list((store / "mlartifacts").rglob("generator.keras"))) == 4
    assert not (Path.cwd() / "mlruns").exists()


def load_registered(uri: str, store: Path, download: Path) -> keras.Model:
    """The generator registered at ``uri``, downloaded into ``download`` as `gansr upscale` does."""
    return tracking.load_downloaded_generator(tracking.download_model(uri, store, download), uri)


def test_champion_loads_with_the_same_outputs(store: Path, registry: dict[str, Any], tmp_path: Path) -> None:
    loaded = load_registered(f"models:/{CFG.registered_model}@champion", store, tmp_path)
    assert isinstance(loaded.get_layer("subpixel"), DepthToSpace)
    assert isinstance(loaded.get_layer("bicubic"), BicubicUpsample)
    lr = np.random.default_rng(7).random((2, 11, 13, 3), dtype=np.float32)  # any size, odd on purpose
    expected = keras.ops.convert_to_numpy(registry["models"]["better"](lr))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(lr)), expected, atol=1e-6)


def test_registration_is_quick(registry: dict[str, Any]) -> None:
    # log_model + register for a tiny generator; a regression to MLflow's
    # subprocess-based requirement inference would take many seconds.
    assert max(registry["seconds"]) < 10


def test_loading_a_missing_alias_is_a_tracking_error(store: Path, registry: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(TrackingError, match="cannot load models:/gansr-test@nope"):
        load_registered("models:/gansr-test@nope", store, tmp_path)


def test_a_registered_model_with_a_lambda_layer_is_refused(store: Path, lambda_model_file: Path,
                                                           tmp_path: Path) -> None:
    # Loading a Lambda layer would run code stored in the archive: safe mode refuses it.
    unsafe = keras.saving.load_model(lambda_model_file, safe_mode=False)
    cfg = TrackingConfig(experiment=CFG.experiment, registered_model="gansr-lambda")
    with tracking.start_run(store, cfg.experiment, run_name="lambda") as run:
        run_id = run.info.run_id
    tracking.register_generator(unsafe, run_id, {"y_psnr": 30.0}, cfg, store)
    with pytest.raises(TrackingError, match="cannot load models:/gansr-lambda@champion: .*Lambda"):
        load_registered("models:/gansr-lambda@champion", store, tmp_path)


def test_missing_champion_metric_is_a_tracking_error(store: Path, random_generator) -> None:
    with pytest.raises(TrackingError, match="metrics lack tracking.champion_metric 'y_psnr'"):
        tracking.register_generator(random_generator(), "unused", {"ssim": 0.9}, CFG, store)


def test_registering_to_an_unknown_run_is_a_tracking_error(store: Path, random_generator) -> None:
    with pytest.raises(TrackingError, match="cannot register model 'gansr-test'"):
        tracking.register_generator(random_generator(), "0" * 32, {"y_psnr": 30.0}, CFG, store)


def test_resume_reuses_a_known_run_and_replaces_an_unknown_one(store: Path) -> None:
    with tracking.start_run(store, "gansr-resume", run_name="train") as run:
        train_id = run.info.run_id
    with tracking.start_run(store, "gansr-resume", run_name="evaluate", resume_run_id=train_id) as run:
        assert run.info.run_id == train_id
    with tracking.start_run(store, "gansr-resume", run_name="evaluate", resume_run_id="0" * 32) as run:
        fresh = run.info
    assert fresh.run_id != train_id and fresh.run_name == "evaluate"


def test_experiments_open_in_the_ui_model_training_view(store: Path) -> None:
    tracking.configure(store, "gansr-kind")
    client = MlflowClient()
    assert client.get_experiment_by_name("gansr-kind").tags["mlflow.experimentKind"] == "custom_model_development"
    made_by_hand = client.create_experiment("made-by-hand")
    tracking.configure(store, "made-by-hand")  # an existing experiment gets the tag too ...
    assert client.get_experiment(made_by_hand).tags["mlflow.experimentKind"] == "custom_model_development"
    client.set_experiment_tag(made_by_hand, "mlflow.experimentKind", "finetuning")
    tracking.configure(store, "made-by-hand")  # ... unless someone chose another view
    assert client.get_experiment(made_by_hand).tags["mlflow.experimentKind"] == "finetuning"


def test_training_data_is_the_runs_dataset_input_with_dvcs_hash(tmp_path: Path, store: Path) -> None:
    manifest = pd.DataFrame({"name": ["a", "b"], "split": ["train", "test"]})
    root = tmp_path / "repo"
    (root / "data" / "validated").mkdir(parents=True)
    (root / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": {"validate": {
        "cmd": "python stages/run.py validate",
        "outs": [{"path": "data/validated", "md5": "0123456789abcdef0123456789abcdef.dir", "nfiles": 1}]}}}))
    assert tracking.dvc_hash(root, "data/validated") == "0123456789abcdef0123456789abcdef.dir"
    assert tracking.dvc_hash(root, "data/pairs") is None and tracking.dvc_hash(tmp_path, "data/validated") is None
    for repo, digest in ((root, "0123456789abcdef0123456789abcdef.dir"), (tmp_path, None)):
        with tracking.start_run(store, "gansr-lineage", run_name="train") as run:
            tracking.log_training_data(manifest, root / "data" / "validated", repo)
        (logged,) = MlflowClient().get_run(run.info.run_id).inputs.dataset_inputs
        assert logged.dataset.name == ("data/validated" if repo == root else "repo/data/validated")
        assert logged.dataset.digest == (digest or logged.dataset.digest) and logged.dataset.digest
        assert {tag.key: tag.value for tag in logged.tags}["mlflow.data.context"] == "training"
        assert json.loads(logged.dataset.schema)["mlflow_colspec"][1]["name"] == "split"


def test_a_generator_file_leads_to_the_run_that_wrote_it(store: Path, tmp_path: Path,
                                                          random_generator: Callable[..., keras.Model]) -> None:
    generator = tmp_path / "generator.keras"
    random_generator(0).save(generator)
    with tracking.start_run(store, "gansr-link", run_name="gan") as run:
        tracking.tag_generator(generator)
    assert tracking.generator_run_id(store, "gansr-link", "gan", generator) == run.info.run_id
    # A generator this store never saw trained (pulled from a DVC remote): a new run, tagged with it.
    other = tmp_path / "pulled.keras"
    random_generator(1).save(other)
    fresh = tracking.generator_run_id(store, "gansr-link", "gan", other)
    assert fresh != run.info.run_id and tracking.generator_run_id(store, "gansr-link", "gan", other) == fresh
    tags = MlflowClient().get_run(fresh).data.tags
    assert tags[tracking.GENERATOR_TAG] == hashlib.md5(other.read_bytes()).hexdigest()
    assert "no training run of pulled.keras" in tags["gansr.note"]
    with pytest.raises(TrackingError, match="missing.keras"):
        tracking.generator_run_id(store, "gansr-link", "gan", tmp_path / "missing.keras")


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_run_tags_record_the_git_commit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "params.yaml").write_text("scale: 4\n")
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "params.yaml"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "params"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    with tracking.start_run(root, "gansr-tags", run_name="train") as run:
        run_id = run.info.run_id
    tags = MlflowClient().get_run(run_id).data.tags
    assert (tags["git.commit"], tags["git.dirty"], tags["dvc.lock.sha256"]) == (head.strip(), "false", "none")
    assert tags["params.sha256"] == hashlib.sha256(b"scale: 4\n").hexdigest()


def test_run_tags_outside_git_say_unknown(tmp_path: Path) -> None:
    assert tracking.run_tags(tmp_path)["git.commit"] == "unknown"


def test_unreachable_server_fails_fast_naming_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    start = time.monotonic()
    with pytest.raises(TrackingError, match=f"MLflow tracking server at {uri} is unreachable"):
        with tracking.start_run(tmp_path, "gansr", run_name="train"):
            pass
    assert time.monotonic() - start < 10


def test_silent_server_times_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Accepts connections (kernel backlog) but never answers: the case that hangs without a timeout.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        monkeypatch.setattr(tracking.store, "PROBE_TIMEOUT_S", 1.0)
        start = time.monotonic()
        with pytest.raises(TrackingError, match="no answer within 1 s"):
            tracking.configure(tmp_path, "gansr")
        assert time.monotonic() - start < 5
