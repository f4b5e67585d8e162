"""One worker of a multi-worker ``train_psnr`` run (MultiWorkerMirroredStrategy, TF_CONFIG).

    TF_CONFIG=... python tests/multi_worker_phase.py PARAMS.json PAIRS OUT CHECKPOINTS RESULT.json [STOP_AT]

Run by tests/test_distribute.py, one process per worker. RESULT.json gets the
phase's summary, a hash of the final generator and EMA weights, and the
checkpoint files this process had in its temporary folder before its last
step. With STOP_AT, every worker stops just before its STOP_AT-th step (as a
kill would) and exits with status 3.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np

from gansr import tracking
from gansr.config import parse_params
from gansr.training import loop, phases

SCRATCH = "gansr-worker-checkpoints-*"


class Stopped(Exception):
    """Raised by every worker at the same step."""


def weights_hash(*models: keras.Model) -> str:
    digest = hashlib.sha256()
    for model in models:
        for weight in model.get_weights():
            digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def main(params_file: str, pairs: str, out: str, checkpoints: str, result_file: str,
         stop_at: int | None = None) -> None:
    result: dict[str, Any] = {}

    def recording_run_loop(step_fn, batches, state, checkpoint_dir, settings, on_log, distribution, **hooks):
        def step(lr, hr):
            step.calls += 1
            if step.calls == stop_at:
                raise Stopped
            result["scratch_checkpoints"] = sorted(
                p.name for p in Path(tempfile.gettempdir()).glob(f"{SCRATCH}/ckpt-*.index"))
            return step_fn(lr, hr)

        step.calls = 0
        losses = loop.run_loop(step, batches, state, checkpoint_dir, settings, on_log, distribution, **hooks)
        result["weights"] = weights_hash(state["generator"], state["ema"])
        result["ema"] = weights_hash(state["ema"])
        return losses

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    phases.run_loop = recording_run_loop
    params = parse_params(json.loads(Path(params_file).read_text()))
    try:
        summary = phases.train("psnr", phases.psnr_phase, params, Path(pairs), Path(pairs).parent / "shards", None,
                               Path(out), Path(checkpoints),
                               tracking.MlflowRunLog(Path(out).parent, params.tracking.experiment))
    except Stopped:
        sys.exit(3)
    result["summary"] = summary
    result["scratch_left"] = [p.name for p in Path(tempfile.gettempdir()).glob(SCRATCH)]
    Path(result_file).write_text(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:6], *(int(a) for a in sys.argv[6:7]))
