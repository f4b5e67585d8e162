"""Spreading training over devices and hosts with tf.distribute (``train.distribute``).

- ``none``: TensorFlow's default strategy, one device.
- ``mirrored``: MirroredStrategy over every GPU of this host (the CPU if none).
- ``multi_worker``: MultiWorkerMirroredStrategy over the hosts listed in
  ``TF_CONFIG``, each with all of its GPUs (or its CPU).
- ``auto``: ``multi_worker`` if ``TF_CONFIG`` lists more than one task,
  ``mirrored`` if more than one GPU is visible, else ``none``.

Every replica holds a copy of the weights and trains on its own
``train.batch_size`` crops; gradients are summed across replicas, so a step
is one step on the global batch of ``batch_size × replicas`` crops. The chief
(task ``chief``, or worker 0 if there is none) writes checkpoints, outputs and
the MLflow run; the other workers save their checkpoints to a temporary
folder they delete, and all of them resume from the chief's checkpoints.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import tensorflow as tf

from gansr.errors import ConfigError, GansrError

log = logging.getLogger(__name__)

# Task types of TF_CONFIG that MultiWorkerMirroredStrategy trains on.
TRAINING_TASKS = ("chief", "worker")


@dataclass(frozen=True)
class Distribution:
    """The strategy a phase trains under, and this process's place in it."""

    strategy: tf.distribute.Strategy
    kind: str  # none | mirrored | multi_worker
    workers: int
    is_chief: bool

    @classmethod
    def single_device(cls) -> Distribution:
        """TensorFlow's default strategy: one device, one process."""
        return cls(tf.distribute.get_strategy(), "none", 1, True)

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    def describe(self, batch_size: int) -> dict[str, Any]:
        """Strategy, replicas, workers and batch sizes, for training.json and MLflow."""
        return {"strategy": self.kind, "replicas": self.replicas, "workers": self.workers,
                "batch_size_per_replica": batch_size, "global_batch_size": batch_size * self.replicas}

    def batches(self, dataset: Callable[[int, int], tf.data.Dataset]) -> Iterator[Any]:
        """Iterate ``dataset(pipeline_id, pipelines)``, one input pipeline per worker, one batch per replica.

        Each pipeline must draw its own crops: seed it by ``pipeline_id`` and
        read its own share of the data. Within a worker, replicas take
        successive batches of its pipeline, so no two replicas see the same
        crops. tf.data's auto-sharding is off: the pipelines split the data
        themselves, and sharding an endless random stream would only discard
        batches.
        """
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF

        def pipeline(context: tf.distribute.InputContext) -> tf.data.Dataset:
            return dataset(context.input_pipeline_id, context.num_input_pipelines).with_options(options)

        return iter(self.strategy.distribute_datasets_from_function(pipeline))

    @contextmanager
    def checkpoint_save_dir(self, checkpoint_dir: Path) -> Iterator[Path]:
        """Where this process saves checkpoints: the chief in ``checkpoint_dir``, others in a temp folder.

        Every worker must save (saving may be collective); only the chief's
        copy is kept, and every worker resumes from it.
        """
        if self.is_chief:
            yield checkpoint_dir
            return
        scratch = Path(tempfile.mkdtemp(prefix="gansr-worker-checkpoints-"))
        try:
            yield scratch
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def check_same_step(self, step: int, checkpoint_dir: Path) -> None:
        """Fail on every worker unless all of them resumed from the same step."""
        if self.workers == 1:
            return
        strategy = self.strategy

        @tf.function
        def every_replicas_step() -> tf.Tensor:
            return strategy.gather(strategy.run(lambda: tf.constant([step], tf.int64)), axis=0)

        steps = sorted(set(every_replicas_step().numpy().tolist()))
        if len(steps) > 1:
            raise GansrError(f"workers resumed from different steps {steps}: every worker must read "
                             f"the chief's checkpoints in {checkpoint_dir} (a shared filesystem)")


def start_distribution(setting: str) -> Distribution:
    """The strategy ``train.distribute`` names, created once per process.

    Call it before any other TensorFlow op: MultiWorkerMirroredStrategy
    must configure the runtime before it starts.
    """
    kind = resolve_distribute(setting, training_tasks(), len(tf.config.list_physical_devices("GPU")))
    strategy = tf.distribute.get_strategy() if kind == "none" else _create_strategy(kind)
    resolver = strategy.cluster_resolver if kind == "multi_worker" else None
    workers = max(1, training_tasks(resolver.cluster_spec().as_dict())) if resolver else 1
    distribution = Distribution(strategy, kind, workers, strategy.extended.should_checkpoint)
    log.info("distribution: %s (train.distribute: %s), %d replica(s) on %d worker(s)%s", kind, setting,
             distribution.replicas, workers, "" if distribution.is_chief else ", this one not the chief")
    return distribution


def resolve_distribute(setting: str, tasks: int, gpus: int) -> str:
    """Map ``auto`` to a strategy kind from the TF_CONFIG task count and visible GPUs."""
    if setting != "auto":
        return setting
    if tasks > 1:
        return "multi_worker"
    return "mirrored" if gpus > 1 else "none"


def training_tasks(cluster: Mapping[str, Any] | None = None) -> int:
    """How many chief and worker tasks ``cluster`` (default: TF_CONFIG's) lists; 0 without TF_CONFIG."""
    if cluster is None:
        cluster = _tf_config().get("cluster", {})
    if not isinstance(cluster, Mapping):
        raise ConfigError(f"TF_CONFIG: 'cluster' must be a mapping of task type to addresses, got {cluster!r}")
    return sum(len(cluster.get(task, ())) for task in TRAINING_TASKS)


def _tf_config() -> dict[str, Any]:
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return {}
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TF_CONFIG is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"TF_CONFIG must be a JSON object with 'cluster' and 'task', got {raw!r}")
    return config


@cache
def _create_strategy(kind: str) -> tf.distribute.Strategy:
    # Cached: a process that runs several phases must reuse its MultiWorkerMirroredStrategy.
    if kind == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.MirroredStrategy()
