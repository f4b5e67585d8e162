"""Stage `pretrain`: PSNR-oriented (pixel loss) pretraining of the generator -> models/psnr/."""

import logging

from gansr.config import Params
from gansr.layout import Layout
from gansr.stages import run_note
from gansr.training.phases import train_psnr

log = logging.getLogger("gansr")


def run(params: Params, layout: Layout) -> None:
    """Train the generator on the pixel loss alone."""
    summary = train_psnr(params, layout.validated, layout.psnr, layout.checkpoints, layout.root)
    log.info("pretrain: done, %s", run_note(summary))
