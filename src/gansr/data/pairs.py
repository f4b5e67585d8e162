"""The ``pairs`` stage: HR/LR image pairs and a train/val/test split by group.

``data/pairs/`` holds ``hr/<name>.png``, ``lr/<name>.png`` and
``manifest.parquet`` (one row per pair, :data:`MANIFEST_COLUMNS`; paths are
relative to the manifest's folder). A pair is a whole source image, or with
``pairs.tile_size`` one tile of a training image; validation and test images
stay whole, so they are scored the way benchmarks are. Images are processed
one per task on every core. Same raw images, scale, seed and config ⇒
byte-identical outputs, whatever the number of workers or the order they
finish in.

Images are split by group, never alone: a group is the images the source
put together (e.g. the two views of a stereo pair) plus, transitively, every
image whose perceptual hash is within ``pairs.near_duplicate_bits`` of one
of them, so a re-encoded or resized copy cannot sit in test while its
original trains.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from gansr.atomic import atomic_path
from gansr.config import SUPPORTED_SCALES, PairsConfig
from gansr.data.degradations import apply_steps, degradation_rng, draw_steps
from gansr.data.near_duplicates import connected_components, near_duplicate_links
from gansr.data.parallel import available_cores, parallel_map
from gansr.data.sources import read_sources
from gansr.errors import ConfigError, DataError
from gansr.imageio import read_rgb, sha256_file, write_png
from gansr.layout import MANIFEST_FILE, SOURCES_FILE

MANIFEST_COLUMNS = [
    "name", "source", "tile", "tile_top", "tile_left", "group", "split", "hr_path", "lr_path",
    "hr_height", "hr_width", "lr_height", "lr_width",
    "hr_sha256", "lr_sha256", "degradation", "mode", "bit_depth", "phash", "origin", "licence",
]
SPLITS = ("train", "val", "test")
# Names become file names under hr/ and lr/: nothing that could leave the folder.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def build_pairs(
    raw_dir: Path, pairs_dir: Path, scale: int, seed: int, cfg: PairsConfig, workers: int | None = None
) -> pd.DataFrame:
    """Write HR/LR pairs and the manifest for every image in ``raw_dir``; return the manifest.

    The split comes first, from the groups and perceptual hashes in
    ``sources.csv``, so that only training images are tiled. ``workers``
    processes (default: one per available core) then each make the pairs of
    one image at a time. The whole of ``pairs_dir`` is built aside and swapped
    in at the end, so a failure (e.g. an image below ``pairs.min_hr_size``)
    leaves an existing ``pairs_dir`` untouched.
    """
    if scale not in SUPPORTED_SCALES:
        raise ConfigError(f"scale must be one of {SUPPORTED_SCALES}, got {scale}")
    if cfg.tile_size % scale:
        raise ConfigError(
            f"pairs.tile_size must be 0 (off) or a multiple of scale ({scale}), got {cfg.tile_size}"
        )
    raw_dir = Path(raw_dir)
    sources = read_sources(raw_dir).sort_values("name", kind="stable")
    _check_names(sources["name"], raw_dir)
    # Fail before the work if the groups are too few already; near-duplicates only merge them.
    _check_enough_groups(sources["group"].nunique(), cfg)
    keys = split_keys(list(sources["group"]), list(sources["phash"]), cfg.near_duplicate_bits)
    split_of = split_groups(keys, seed, cfg)
    records = [source | {"split": split_of[key]}
               for source, key in zip(sources.to_dict("records"), keys, strict=True)]
    with atomic_path(pairs_dir) as staged:
        (staged / "hr").mkdir(parents=True)
        (staged / "lr").mkdir()
        make_pairs = partial(_make_pairs, raw_dir=raw_dir, staged=staged, scale=scale, seed=seed, cfg=cfg)
        per_image = parallel_map(make_pairs, records, workers or available_cores(), "pairs")
        rows = [row for image_rows in per_image for row in image_rows]
        manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
        clash = _first_duplicate(manifest["name"])
        if clash is not None:
            raise DataError(f"{raw_dir / SOURCES_FILE}: image name {clash!r} is also the name of a "
                            "tile of another image; rename it")
        write_manifest(manifest, staged)
    return manifest


def split_keys(groups: Sequence[str], phashes: Sequence[str], near_duplicate_bits: int) -> list[str]:
    """Per image, the key it is split by: the first group name among the images joined to it.

    Images are joined by sharing a group, or by perceptual hashes at most
    ``near_duplicate_bits`` apart (0: not at all), directly or through other
    images. An image joined to no other keeps its own group as its key.
    """
    first_of_group: dict[str, int] = {}
    links = [(first_of_group.setdefault(group, i), i) for i, group in enumerate(groups)]
    if near_duplicate_bits:
        links += near_duplicate_links(phashes, near_duplicate_bits)
    roots = connected_components(len(groups), links)
    key_of: dict[int, str] = {}
    for root, group in zip(roots, groups, strict=True):
        key_of[root] = min(key_of.get(root, group), group)
    return [key_of[root] for root in roots]


def tile_grid(height: int, width: int, tile_size: int) -> list[tuple[int, int, int, int]]:
    """``(top, left, height, width)`` of each tile of an HR image, row by row.

    A non-overlapping grid of ``tile_size`` squares, whose last row and column
    are moved back to end at the image's edge (overlapping their neighbours),
    so every pixel is in a tile and every tile has the full size. A side no
    longer than ``tile_size`` is not cut; ``tile_size`` 0: the whole image.
    """
    if not tile_size:
        return [(0, 0, height, width)]
    tile_height, tile_width = min(tile_size, height), min(tile_size, width)
    return [(top, left, tile_height, tile_width)
            for top in _tile_starts(height, tile_height) for left in _tile_starts(width, tile_width)]


def make_lr(hr: np.ndarray, scale: int, seed: int, name: str, cfg: PairsConfig) -> tuple[np.ndarray, str]:
    """The LR image of ``hr`` by ``pairs.degradation``, and the JSON record of how it was made.

    Realistic degradations draw from a generator seeded by (seed, name) alone,
    so an image's LR does not depend on which worker made it, or when.
    """
    if cfg.degradation == "bicubic":
        lr, record = bicubic_downscale(hr, scale), {"kind": "bicubic"}
    else:
        steps = draw_steps(degradation_rng(seed, name), hr.shape[:2], scale, cfg)
        lr, record = apply_steps(hr, steps), {"kind": "realistic", "steps": steps}
    return lr, json.dumps(record, sort_keys=True, separators=(",", ":"))


def write_manifest(manifest: pd.DataFrame, folder: Path) -> None:
    """Write ``folder/manifest.parquet``; ``folder`` is a staged (not yet renamed) directory."""
    manifest.to_parquet(Path(folder) / MANIFEST_FILE, index=False)


def read_manifest(pairs_dir: Path, check_columns: bool = True) -> pd.DataFrame:
    """Read ``pairs_dir/manifest.parquet``, checking it has :data:`MANIFEST_COLUMNS`.

    The validation suite passes ``check_columns=False``: it reports missing
    columns itself, beside every other problem.
    """
    path = Path(pairs_dir) / MANIFEST_FILE
    if not path.is_file():
        raise DataError(f"{path}: manifest not found (run the pairs stage first)")
    try:
        manifest = pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"{path}: unreadable manifest ({str(exc).splitlines()[0]})") from exc
    missing = [c for c in MANIFEST_COLUMNS if c not in manifest.columns]
    if check_columns and missing:
        raise DataError(f"{path}: manifest lacks columns {', '.join(missing)}")
    return manifest


def split_groups(groups: Iterable[str], seed: int, cfg: PairsConfig) -> dict[str, str]:
    """Map each group to "train", "val" or "test".

    Whole groups are split, never single images, so near-duplicate views of one
    scene (e.g. a stereo pair) cannot leak from train into test.
    """
    ordered = sorted(set(groups))
    shuffled = [ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))]
    _check_enough_groups(len(ordered), cfg)
    n_test = _split_size(cfg.test_fraction, len(ordered))
    n_val = _split_size(cfg.val_fraction, len(ordered))
    split_of = dict.fromkeys(shuffled[:n_test], "test")
    split_of |= dict.fromkeys(shuffled[n_test:n_test + n_val], "val")
    split_of |= dict.fromkeys(shuffled[n_test + n_val:], "train")
    return split_of


def mod_crop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right edge so height and width are multiples of ``scale``."""
    height, width = image.shape[0] - image.shape[0] % scale, image.shape[1] - image.shape[1] % scale
    return image[:height, :width]


def bicubic_downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """Antialiased bicubic downscale by ``scale``.

    Pillow's BICUBIC widens its a = -0.5 kernel by the scale factor when
    shrinking (antialiasing), as MATLAB's ``imresize`` does; it matches the
    literature's MATLAB-made LR images to within ~0.25 grey levels on average.
    """
    height, width = hr.shape[:2]
    lr = Image.fromarray(hr).resize((width // scale, height // scale), Image.Resampling.BICUBIC)
    return np.asarray(lr, dtype=np.uint8)


def _split_size(fraction: float, n_groups: int) -> int:
    # At least one group whenever the fraction asks for some, so a small data
    # set still gets a test (or val) group instead of silently none.
    return max(1, round(fraction * n_groups)) if fraction > 0 else 0


def _check_enough_groups(n_groups: int, cfg: PairsConfig) -> None:
    if _split_size(cfg.test_fraction, n_groups) + _split_size(cfg.val_fraction, n_groups) >= n_groups:
        raise DataError(
            f"{n_groups} image groups are too few for pairs.test_fraction={cfg.test_fraction} "
            f"and pairs.val_fraction={cfg.val_fraction}: no group would be left for training"
        )


def _tile_starts(length: int, tile: int) -> list[int]:
    """Offsets of tiles of side ``tile`` along ``length``, the last one flush with the end."""
    starts = list(range(0, length - tile + 1, tile))
    return starts if starts[-1] + tile == length else [*starts, length - tile]


def _make_pairs(
    source: dict[str, Any], raw_dir: Path, staged: Path, scale: int, seed: int, cfg: PairsConfig
) -> list[dict[str, object]]:
    """Write the HR/LR pairs of one source image under ``staged``; return their manifest rows.

    Runs in a worker process: it reads and writes files itself and returns
    only the small rows, so memory stays at one image per worker. ``source``
    is its sources.csv row and split. A training image is cut into tiles
    (``pairs.tile_size``), each a pair like a whole image: its LR is made
    from the HR tile alone.
    """
    name, path = source["name"], raw_dir / source["file"]
    image, _ = read_rgb(path)
    hr = mod_crop(image, scale)
    if min(hr.shape[:2]) < cfg.min_hr_size:
        raise DataError(
            f"{path}: image {name!r} is {hr.shape[1]}x{hr.shape[0]} after cropping to a "
            f"multiple of scale {scale}, smaller than pairs.min_hr_size={cfg.min_hr_size}; "
            "remove it or lower pairs.min_hr_size"
        )
    about_source = {
        "source": name, "group": source["group"], "split": source["split"], "phash": source["phash"],
        "mode": source["mode"], "bit_depth": int(source["bit_depth"]),
        "origin": source["origin"], "licence": source["licence"],
    }
    tiles = tile_grid(*hr.shape[:2], cfg.tile_size if source["split"] == "train" else 0)
    rows = []
    for index, (top, left, height, width) in enumerate(tiles):
        pair_name = name if len(tiles) == 1 else f"{name}_tile{index:03d}"
        tile = np.ascontiguousarray(hr[top:top + height, left:left + width])
        rows.append(_write_pair(tile, pair_name, staged, scale, seed, cfg)
                    | about_source | {"tile": index, "tile_top": top, "tile_left": left})
    return rows


def _write_pair(
    hr: np.ndarray, name: str, staged: Path, scale: int, seed: int, cfg: PairsConfig
) -> dict[str, object]:
    """Write ``hr`` and its LR as pair ``name`` under ``staged``; return the manifest's facts on the files."""
    lr, degradation = make_lr(hr, scale, seed, name, cfg)
    hr_path, lr_path = f"hr/{name}.png", f"lr/{name}.png"
    write_png(staged / hr_path, hr)
    write_png(staged / lr_path, lr)
    return {
        "name": name, "hr_path": hr_path, "lr_path": lr_path,
        "hr_height": hr.shape[0], "hr_width": hr.shape[1], "lr_height": lr.shape[0], "lr_width": lr.shape[1],
        "hr_sha256": sha256_file(staged / hr_path), "lr_sha256": sha256_file(staged / lr_path),
        "degradation": degradation,
    }


def _check_names(names: pd.Series, raw_dir: Path) -> None:
    bad = [name for name in names if not _SAFE_NAME.fullmatch(name)]
    if bad:
        raise DataError(f"{raw_dir / SOURCES_FILE}: unsafe image name {bad[0]!r}")
    twice = _first_duplicate(names)
    if twice is not None:
        raise DataError(f"{raw_dir / SOURCES_FILE}: image name {twice!r} appears twice")


def _first_duplicate(names: pd.Series) -> str | None:
    duplicated = names[names.duplicated()]
    return duplicated.iloc[0] if len(duplicated) else None
