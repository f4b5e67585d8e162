"""Stage `train_gan`: adversarial fine-tuning of the pretrained generator -> models/gan/."""

import logging

from gansr.config import Params
from gansr.layout import Layout
from gansr.stages import run_note
from gansr.training.phases import train_gan

log = logging.getLogger("gansr")


def run(params: Params, layout: Layout) -> None:
    """Fine-tune the PSNR-oriented generator against a discriminator."""
    summary = train_gan(params, layout.validated, layout.psnr, layout.gan, layout.checkpoints, layout.root)
    log.info("train_gan: done, %s", run_note(summary))
