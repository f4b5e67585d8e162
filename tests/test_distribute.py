"""tf.distribute: choosing the strategy, two replicas against one device, two workers on 127.0.0.1.

Strategies over several devices run in subprocesses: logical devices and
MultiWorkerMirroredStrategy must be set up before TensorFlow starts, and in
this process it has.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from mlflow import MlflowClient
from multi_worker_phase import weights_hash
from test_training import TINY, pairs_dir  # noqa: F401  (pairs_dir: the tiny pairs fixture)

from gansr.config import parse_params
from gansr.data.dataset import training_dataset
from gansr.data.shards import read_index
from gansr.errors import ConfigError
from gansr.inference import load_generator
from gansr.training.distribute import Distribution, resolve_distribute, start_distribution, training_tasks

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
STEP_CASES = ("pretrain", "gan", "style")
MULTI_WORKER_TIMEOUT_S = 120


def script_env(**extra: str) -> dict[str, str]:
    """This environment for a helper script: CPU only, no inherited TF_CONFIG or MLflow settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "TF_CONFIG"))}
    return {**env, "CUDA_VISIBLE_DEVICES": "-1", **extra}


# --- choosing the strategy ------------------------------------------------------------------


@pytest.mark.parametrize("setting, tasks, gpus, expected", [
    ("auto", 0, 0, "none"), ("auto", 0, 1, "none"), ("auto", 1, 1, "none"),
    ("auto", 0, 2, "mirrored"), ("auto", 1, 8, "mirrored"),
    ("auto", 2, 0, "multi_worker"), ("auto", 3, 8, "multi_worker"),
    ("none", 2, 2, "none"), ("mirrored", 0, 0, "mirrored"), ("multi_worker", 0, 0, "multi_worker"),
])
def test_auto_picks_the_strategy_from_tf_config_and_the_gpus(setting: str, tasks: int, gpus: int,
                                                             expected: str) -> None:
    assert resolve_distribute(setting, tasks, gpus) == expected


def test_tf_config_counts_the_chief_and_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    cluster = {"chief": ["a:1"], "worker": ["b:1", "c:1"], "ps": ["d:1"], "evaluator": ["e:1"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert training_tasks() == 3
    monkeypatch.delenv("TF_CONFIG")
    assert training_tasks() == 0


@pytest.mark.parametrize("raw, message", [
    ("{'cluster': {}}", "TF_CONFIG is not valid JSON"),
    ('["worker"]', "TF_CONFIG must be a JSON object"),
    ('{"cluster": ["a:1"]}', "TF_CONFIG: 'cluster' must be a mapping"),
])
def test_a_bad_tf_config_is_a_one_line_config_error(raw: str, message: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_CONFIG", raw)
    with pytest.raises(ConfigError, match=message) as error:
        training_tasks()
    assert "\n" not in str(error.value)


def test_train_distribute_names_a_strategy() -> None:
    assert parse_params({}).train.distribute == "auto"
    with pytest.raises(ConfigError, match="train.distribute must be one of auto, none, mirrored, multi_worker"):
        parse_params({"train": {"distribute": "horovod"}})


@pytest.mark.parametrize("setting", ["auto", "none", "mirrored"])
def test_on_this_machine_each_setting_trains_on_its_devices(setting: str) -> None:
    gpus = len(tf.config.list_physical_devices("GPU"))
    distribution = start_distribution(setting)
    assert distribution.is_chief and distribution.workers == 1
    assert distribution.replicas == (max(1, gpus) if distribution.kind == "mirrored" else 1)
    assert distribution.describe(16) == {
        "strategy": distribution.kind, "replicas": distribution.replicas, "workers": 1,
        "batch_size_per_replica": 16, "global_batch_size": 16 * distribution.replicas}


def test_one_device_gets_the_datasets_own_batches(pairs_dir: Path) -> None:  # noqa: F811
    shards = read_index(pairs_dir.parent / "shards")

    def dataset(pipeline: int, _pipelines: int) -> tf.data.Dataset:
        return training_dataset(shards, 4, 16, 2, seed=7 + pipeline)

    lr, hr = next(Distribution.single_device().batches(dataset))
    expected_lr, expected_hr = next(iter(dataset(0, 1)))
    assert isinstance(lr, tf.Tensor)
    np.testing.assert_array_equal(lr, expected_lr)
    np.testing.assert_array_equal(hr, expected_hr)


# --- two replicas on one host: the same training as one device on the global batch ----------


@pytest.fixture(scope="module")
def two_replicas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """tests/mirrored_steps.py's results: every step kind on 2 logical CPUs and on one device."""
    out = tmp_path_factory.mktemp("mirrored") / "steps.npz"
    done = subprocess.run([sys.executable, str(HERE / "mirrored_steps.py"), str(out)], env=script_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out) as arrays:
        return dict(arrays)


def variables(result: dict[str, np.ndarray], case: str, run: str) -> dict[str, np.ndarray]:
    prefix = f"{case}/{run}/"
    return {key[len(prefix):]: value for key, value in result.items() if key.startswith(prefix)}


@pytest.mark.parametrize("case", STEP_CASES)
def test_two_replicas_train_like_one_device_on_the_global_batch(two_replicas: dict[str, np.ndarray],
                                                                case: str) -> None:
    single, mirrored = variables(two_replicas, case, "single"), variables(two_replicas, case, "mirrored")
    initial = variables(two_replicas, case, "initial")
    assert set(single) == set(mirrored) and initial
    moved = max(float(np.max(np.abs(single[name] - value))) for name, value in initial.items())
    assert moved > 0.05  # the steps trained...
    for name, value in single.items():  # ...and two replicas trained alike (SGD: gradients must be exact)
        np.testing.assert_allclose(mirrored[name], value, rtol=1e-5, atol=1e-5, err_msg=name)


def test_every_replica_ends_with_the_same_weights_ema_and_power_iterations(
        two_replicas: dict[str, np.ndarray]) -> None:
    spread = variables(two_replicas, "gan", "spread")
    assert any("vector_u" in name for name in spread) and any(name.startswith("ema/") for name in spread)
    for case in (*STEP_CASES, "half_nan", "float16_overflow"):
        for name, value in variables(two_replicas, case, "spread").items():
            assert value == 0, f"{case}: replicas disagree on {name}"


def test_a_nan_on_one_replica_stops_the_update_on_both(two_replicas: dict[str, np.ndarray]) -> None:
    initial, mirrored = variables(two_replicas, "half_nan", "initial"), variables(two_replicas, "half_nan", "mirrored")
    for name, value in initial.items():
        np.testing.assert_array_equal(mirrored[name], value, err_msg=name)
    assert mirrored["optimizer/sgd/iteration"] == 0


def test_a_float16_overflow_on_one_replica_skips_the_step_on_both(two_replicas: dict[str, np.ndarray]) -> None:
    initial = variables(two_replicas, "float16_overflow", "initial")
    single = variables(two_replicas, "float16_overflow", "single")
    mirrored = variables(two_replicas, "float16_overflow", "mirrored")
    for name, value in initial.items():
        np.testing.assert_array_equal(mirrored[name], value, err_msg=name)
    for result in (single, mirrored):
        assert result["optimizer/lso/iteration"] == 0
        assert result["optimizer/lso/dynamic_scale"] == 2.0**19  # halved from 2**20, as on one device


# --- two workers on 127.0.0.1 ---------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def run_workers(tmp_path: Path, pairs: Path, round_name: str, checkpoints: list[Path],
                stop_at: int | None = None) -> list[dict[str, Any]]:
    """Run tests/multi_worker_phase.py as worker 0 (the chief) and worker 1; return what each did."""
    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes, outcomes = [], []
    for index, checkpoint_dir in enumerate(checkpoints):
        work = tmp_path / f"worker{index}"
        (work / "tmp").mkdir(parents=True, exist_ok=True)
        tf_config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
        result = work / f"{round_name}.json"
        command = [sys.executable, str(HERE / "multi_worker_phase.py"), str(tmp_path / "params.json"), str(pairs),
                   str(work / "models" / "psnr"), str(checkpoint_dir), str(result),
                   *([str(stop_at)] if stop_at else [])]
        env = script_env(TF_CONFIG=json.dumps(tf_config), TMPDIR=str(work / "tmp"),
                         MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
        processes.append((subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                           text=True), result, work))
    try:
        for process, result, work in processes:
            output, _ = process.communicate(timeout=MULTI_WORKER_TIMEOUT_S)
            outcomes.append({"returncode": process.returncode, "output": output, "work": work,
                             **(json.loads(result.read_text()) if result.is_file() else {})})
    finally:
        for process, _, _ in processes:
            process.kill()
    return outcomes


def test_two_workers_train_in_step_and_only_the_chief_writes(pairs_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    params = {**TINY, "train": {**TINY["train"], "pretrain_steps": 8, "checkpoint_every": 2, "distribute": "auto"}}
    (tmp_path / "params.json").write_text(json.dumps(params))
    shared = tmp_path / "checkpoints"  # what a shared filesystem gives every host

    # Both workers stop before their 5th step, as if killed: the chief has saved steps 2 and 4.
    stopped = run_workers(tmp_path, pairs_dir, "stopped", [shared, shared], stop_at=5)
    assert [w["returncode"] for w in stopped] == [3, 3], stopped[0]["output"][-3000:]
    (checkpoint_dir,) = shared.iterdir()
    assert sorted(p.name for p in checkpoint_dir.glob("ckpt-*.index")) == ["ckpt-2.index", "ckpt-4.index"]

    # A worker that cannot read the chief's checkpoints stops both, saying why.
    apart = run_workers(tmp_path, pairs_dir, "apart", [shared, tmp_path / "elsewhere"])
    for worker in apart:
        assert worker["returncode"] != 0
        assert "workers resumed from different steps [0, 4]" in worker["output"], worker["output"][-3000:]

    chief, worker = run_workers(tmp_path, pairs_dir, "resumed", [shared, shared])
    # Each worker reads its own shards of the three training pairs.
    assert "input pipeline 0 of 2: 2 shard(s), 2 training pairs" in chief["output"]
    assert "input pipeline 1 of 2: 1 shard(s), 1 training pairs" in worker["output"]
    for each in (chief, worker):
        assert each["returncode"] == 0, each["output"][-3000:]
        assert "resumed pretrain from step 4" in each["output"]
        assert each["summary"]["replicas"] == 2 and each["summary"]["workers"] == 2
        assert each["summary"]["global_batch_size"] == 2 * TINY["train"]["batch_size"]
        assert each["scratch_left"] == []  # the worker's temporary checkpoints are gone
    assert chief["weights"] == worker["weights"]  # generator and EMA identical on both workers
    assert chief["summary"]["final_losses"] == worker["summary"]["final_losses"]

    # The chief saved its checkpoints where every worker resumes from, the worker in a temp folder.
    assert chief["scratch_checkpoints"] == [] and worker["scratch_checkpoints"] == ["ckpt-6.index"]
    # Only the chief wrote outputs and an MLflow run; its checkpoints went once the outputs were in place.
    assert not (worker["work"] / "models").exists()
    out = chief["work"] / "models" / "psnr"
    written = json.loads((out / "training.json").read_text())
    assert written == {k: v for k, v in chief["summary"].items() if k not in ("run_id", "seconds_this_attempt")}
    assert weights_hash(load_generator(out / "generator.keras")) == chief["ema"]
    assert not checkpoint_dir.exists()
    assert worker["summary"]["run_id"] is None
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name(TINY["tracking"]["experiment"]).experiment_id])
    assert run.info.run_id == chief["summary"]["run_id"] and run.info.status == "FINISHED"
    assert run.data.params["train.replicas"] == "2" and run.data.params["train.workers"] == "2"
    assert run.data.params["train.global_batch_size"] == "4" and run.data.tags["gansr.strategy"] == "multi_worker"
