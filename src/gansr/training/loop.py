"""The training loop the phases share: resume, step, guard, log, checkpoint.

All resumable state (step counter, models, EMA, optimizers, the run id) lives in one
``tf.train.Checkpoint``; a killed run restarts from its last checkpoint.
Under several workers, each runs this loop in step with the others; the
chief's checkpoints are the ones kept and resumed from.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tensorflow as tf
from tqdm import tqdm

from gansr.errors import GansrError
from gansr.training.distribute import Distribution

log = logging.getLogger(__name__)

StepFn = Callable[[tf.Tensor, tf.Tensor], Mapping[str, tf.Tensor]]
LogFn = Callable[[int, dict[str, float]], None]


# With nan_policy "skip", this many non-finite steps in a row still stop training:
# the run has diverged rather than met one bad batch.
MAX_CONSECUTIVE_SKIPS = 10


@dataclass(frozen=True)
class LoopSettings:
    """How long to train, how often to log and checkpoint, what to do on NaN/Inf."""

    steps: int
    checkpoint_every: int
    log_every: int
    description: str
    nan_policy: str = "stop"


class NonFiniteLossError(GansrError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def run_loop(
    step_fn: StepFn,
    batches: Callable[[int], Iterator[tuple[tf.Tensor, tf.Tensor]]],
    state: Mapping[str, Any],
    checkpoint_dir: Path,
    settings: LoopSettings,
    on_log: LogFn,
    distribution: Distribution | None = None,
    on_start: Callable[[int], None] = lambda start: None,
) -> dict[str, float]:
    """Train until ``settings.steps``, resuming from ``checkpoint_dir`` if it holds a checkpoint.

    ``batches(start_step)`` returns the input iterator; ``state`` maps names to
    every trackable object that must survive a restart. Returns the losses of
    the last step run by this call (empty if the checkpoint was already final).
    ``distribution`` (default: one device) says where this process saves.
    ``on_start(start_step)`` runs once the checkpoint is restored, before the
    first step: the place to update restored state that the present overrides.
    """
    distribution = distribution or Distribution.single_device()
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    checkpoint = tf.train.Checkpoint(step=step, **state)
    latest = tf.train.latest_checkpoint(str(checkpoint_dir))
    if latest:
        checkpoint.restore(latest).assert_existing_objects_matched()
        log.info("resumed %s from step %d (%s)", settings.description, int(step), latest)
    start = int(step)
    distribution.check_same_step(start, checkpoint_dir)
    on_start(start)
    losses: dict[str, float] = {}
    skipped = 0
    iterator = batches(start)
    with (distribution.checkpoint_save_dir(checkpoint_dir) as save_dir,
          tqdm(total=settings.steps, initial=start, desc=settings.description, unit="step",
               dynamic_ncols=True, mininterval=1.0) as bar):
        manager = tf.train.CheckpointManager(checkpoint, str(save_dir), max_to_keep=2)
        for current in range(start + 1, settings.steps + 1):
            lr, hr = next(iterator)
            losses = {name: float(value) for name, value in step_fn(lr, hr).items()}
            if all(math.isfinite(v) for v in losses.values()):
                skipped = 0
            else:
                # The step applied no update (see steps.only_if_finite).
                skipped += 1
                problem = (f"{settings.description}: non-finite loss at step {current} "
                           f"({_fmt(losses)})")
                if settings.nan_policy == "stop" or skipped > MAX_CONSECUTIVE_SKIPS:
                    last_good = tf.train.latest_checkpoint(str(checkpoint_dir))
                    raise NonFiniteLossError(f"{problem}; last good checkpoint: {last_good or 'none'}")
                log.warning("%s; batch skipped (train.nan_policy: skip)", problem)
            step.assign(current)
            if current % settings.log_every == 0 or current == settings.steps:
                on_log(current, losses)
                bar.set_postfix_str(_fmt(losses), refresh=False)
            if current % settings.checkpoint_every == 0:
                manager.save(checkpoint_number=current)
            bar.update(1)
    return losses


def _fmt(losses: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in losses.items())
