"""Stage `finetune_real`: the PSNR-oriented generator fine-tuned on degraded crops -> models/real_psnr/."""

import logging

from gansr import tracking
from gansr.config import Params
from gansr.layout import Layout
from gansr.stages import run_note
from gansr.training.phases import real_psnr_phase, train

log = logging.getLogger("gansr")


def run(params: Params, layout: Layout) -> None:
    """Fine-tune the PSNR-oriented generator on the pixel loss, each LR crop blurred, noised or compressed anew."""
    summary = train("real_psnr", real_psnr_phase, params, layout.validated, layout.shards, layout.psnr,
                    layout.real_psnr, layout.checkpoints,
                    tracking.MlflowRunLog(layout.root, params.tracking.experiment))
    log.info("finetune_real: done, %s", run_note(summary))
