"""Stage `shards`: the validated training pairs packed into TFRecord shards -> data/shards/."""

import logging

from gansr.config import Params
from gansr.data.pairs import read_manifest
from gansr.data.shards import write_shards
from gansr.layout import Layout

log = logging.getLogger("gansr")


def run(params: Params, layout: Layout) -> None:
    """Pack the training pairs of the validated manifest."""
    index = write_shards(read_manifest(layout.validated), layout.validated, layout.shards, params.scale,
                         params.shards.count)
    log.info("shards: %d training pairs in %d shard(s) in %s, %.0f MB decoded", index.records,
             len(index.shards), layout.shards, index.decoded_bytes / 2**20)
