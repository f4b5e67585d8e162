"""Stage `download`: assemble the raw images named by ``data`` into data/raw/."""

import logging

from gansr.config import Params
from gansr.data.fetch import fetch_raw
from gansr.layout import Layout

log = logging.getLogger("gansr")


def run(params: Params, layout: Layout) -> None:
    """Fetch (or copy, or unpack) the source images and list them in sources.csv."""
    sources = fetch_raw(params.data, layout.raw)
    log.info("download: %d images from source %r into %s", len(sources), params.data.source, layout.raw)
