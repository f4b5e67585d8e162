"""Stage `pairs`: HR/LR pairs, the train/val/test split and the manifest in data/pairs/."""

import logging

from gansr.config import Params
from gansr.data.pairs import build_pairs
from gansr.layout import Layout
from gansr.stages import counts

log = logging.getLogger("gansr")


def run(params: Params, layout: Layout) -> None:
    """Degrade every raw image into its LR input and split the pairs by image."""
    manifest = build_pairs(layout.raw, layout.pairs, params.scale, params.seed, params.pairs)
    log.info("pairs: %d pairs (%s) in %s", len(manifest), counts(manifest["split"].value_counts().to_dict()),
             layout.pairs)
