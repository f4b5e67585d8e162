"""Stage `pretrain`: PSNR-oriented (pixel loss) pretraining of the generator -> models/psnr/."""

import logging

from gansr import tracking
from gansr.config import Params
from gansr.layout import Layout
from gansr.stages import run_note
from gansr.training.phases import psnr_phase, train

log = logging.getLogger("gansr")


def run(params: Params, layout: Layout) -> None:
    """Train the generator on the pixel loss alone."""
    summary = train("psnr", psnr_phase, params, layout.validated, layout.shards, None, layout.psnr,
                    layout.checkpoints, tracking.MlflowRunLog(layout.root, params.tracking.experiment))
    log.info("pretrain: done, %s", run_note(summary))
