"""The ``download`` stage: gather raw photos into ``data/raw/`` with their provenance.

Each image of ``data.source`` (:mod:`gansr.data.sources`) is decoded to 8-bit
RGB and written as ``images/<name>.png`` with its row of ``sources.csv``, one
image per task on every core. A
``url`` source is downloaded once, checked against ``data.sha256`` and
unpacked safely (:mod:`gansr.data.download`) first.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from functools import partial
from pathlib import Path

import pandas as pd

from gansr.atomic import atomic_path
from gansr.config import DataConfig
from gansr.data.download import download, unpack
from gansr.data.near_duplicates import perceptual_hash
from gansr.data.parallel import available_cores, parallel_map
from gansr.data.sources import (
    FOLDER_LICENCE,
    SOURCES_COLUMNS,
    RawImage,
    builtin_images,
    folder_images,
    require_images,
    scan_images,
)
from gansr.errors import ConfigError
from gansr.imageio import read_image, sha256_file, write_png
from gansr.layout import DOWNLOAD_CACHE, SOURCES_FILE

URL_LICENCE = "see data.url"


def fetch_raw(cfg: DataConfig, raw_dir: Path, cache_dir: Path | None = None,
              workers: int | None = None) -> pd.DataFrame:
    """Build ``raw_dir`` (images + sources.csv) from ``cfg.source``; return the sources table.

    The directory is built aside and swapped in whole, so a failure leaves any
    existing ``raw_dir`` as it was. ``url`` downloads are kept in ``cache_dir``,
    by default ``.cache/downloads`` of the repository whose ``data/raw`` is ``raw_dir``.
    Images are decoded in ``workers`` processes (default: one per core), with
    the same result whatever their number.
    """
    raw_dir = Path(raw_dir)
    cache_dir = cache_dir or raw_dir.parent.parent / DOWNLOAD_CACHE
    with atomic_path(raw_dir) as staged:
        (staged / "images").mkdir(parents=True)
        # Archives unpack inside the staged folder (one file system, gone on failure)
        # and are removed before the swap: data/raw keeps only the decoded PNGs.
        with tempfile.TemporaryDirectory(dir=staged) as unpacked:
            images = _source_images(cfg, Path(unpacked), cache_dir)
            rows = list(parallel_map(partial(_store, staged=staged), images, workers or available_cores(),
                                     "download"))
        table = pd.DataFrame(rows, columns=SOURCES_COLUMNS)
        table.to_csv(staged / SOURCES_FILE, index=False, lineterminator="\n")
    return table


def _source_images(cfg: DataConfig, unpacked: Path, cache_dir: Path) -> list[RawImage]:
    match cfg.source:
        case "builtin":
            return builtin_images()
        case "folder":
            return folder_images(Path(cfg.folder), cfg.licence or FOLDER_LICENCE)
        case "url":
            return url_images(cfg, cache_dir, unpacked)
        case other:
            raise ConfigError(f"data.source {other!r} is not supported (builtin, folder, url)")


def url_images(cfg: DataConfig, cache_dir: Path, unpacked: Path) -> list[RawImage]:
    """The images at ``cfg.url``: downloaded once into ``cache_dir``, verified, unpacked into ``unpacked``."""
    unpack(download(cfg.url, cfg.sha256, cache_dir), unpacked, cfg)
    images = scan_images(unpacked, cfg.url, cfg.licence or URL_LICENCE)
    # The unpacked files are gone once download ends: messages name the URL and the archive entry.
    return require_images([replace(image, label=image.origin) for image in images], cfg.url)


def _store(image: RawImage, staged: Path) -> dict[str, object]:
    """Decode one image to RGB, write it as PNG under ``staged``, return its sources.csv row."""
    decoded = read_image(image.path, image.label or None)
    file = f"images/{image.name}.png"
    write_png(staged / file, decoded.rgb)
    return {
        "name": image.name, "group": image.group, "file": file,
        "origin": image.origin, "licence": image.licence,
        "width": decoded.rgb.shape[1], "height": decoded.rgb.shape[0],
        "sha256": sha256_file(staged / file), "phash": perceptual_hash(decoded.rgb),
        "mode": decoded.mode, "bit_depth": decoded.bit_depth,
        "notes": "; ".join(decoded.notes),
    }
