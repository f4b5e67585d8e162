"""Stage `train_real`: adversarial fine-tuning on degraded crops -> models/real/, the `real` generator."""

import logging

from gansr import tracking
from gansr.config import Params
from gansr.layout import Layout
from gansr.stages import run_note
from gansr.training.phases import real_phase, train

log = logging.getLogger("gansr")


def run(params: Params, layout: Layout) -> None:
    """Fine-tune the ``real_psnr`` generator against a discriminator on degraded crops."""
    summary = train("real", real_phase, params, layout.validated, layout.shards, layout.real_psnr, layout.real,
                    layout.checkpoints, tracking.MlflowRunLog(layout.root, params.tracking.experiment))
    log.info("train_real: done, %s", run_note(summary))
