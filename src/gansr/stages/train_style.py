"""Stage `train_style`: a style branch on the frozen GAN generator -> models/style/."""

import logging

from gansr import tracking
from gansr.config import Params
from gansr.layout import Layout
from gansr.stages import run_note
from gansr.style.training import style_phase
from gansr.training.phases import train

log = logging.getLogger("gansr")


def run(params: Params, layout: Layout) -> None:
    """Train the style branch over every style; style 0 stays the GAN generator."""
    summary = train("style", style_phase, params, layout.validated, layout.shards, layout.gan, layout.style,
                    layout.checkpoints, tracking.MlflowRunLog(layout.root, params.tracking.experiment))
    log.info("train_style: done (styles %s), %s", summary["styles"], run_note(summary))
