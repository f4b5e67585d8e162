"""Stage `train_gan`: adversarial fine-tuning of the pretrained generator -> models/gan/."""

import logging

from gansr import tracking
from gansr.config import Params
from gansr.layout import Layout
from gansr.stages import run_note
from gansr.training.phases import gan_phase, train

log = logging.getLogger("gansr")


def run(params: Params, layout: Layout) -> None:
    """Fine-tune the PSNR-oriented generator against a discriminator."""
    summary = train("gan", gan_phase, params, layout.validated, layout.shards, layout.psnr, layout.gan,
                    layout.checkpoints, tracking.MlflowRunLog(layout.root, params.tracking.experiment))
    log.info("train_gan: done, %s", run_note(summary))
