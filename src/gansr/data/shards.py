"""The ``shards`` stage: the validated training pairs packed into TFRecord shards, which training reads.

As BasicSR cuts sub-images once and packs them for fast reading, gansr cuts
tiles in ``pairs`` (``pairs.tile_size``) and packs every training pair here:
each record holds the pair's two PNG files as they are (no re-encoding) and
the HR size. Training streams the shards, or caches them decoded in memory
where they fit (:mod:`gansr.data.dataset`).

Shard ``j`` of ``k`` holds the ``j``-th contiguous run of the manifest's
training rows. Reading the shards round-robin, one record from each in turn,
therefore yields records from ``k`` places across the data at once, so a
bounded shuffle buffer mixes many images; with no more rows than shards it
yields the manifest's order. Under several workers each reads its own shards.
``index.json`` lists the shards with the HR size of each record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf
from tqdm import tqdm

from gansr.atomic import atomic_path
from gansr.errors import ConfigError, DataError

INDEX_FILE = "index.json"
SHARD_NAME = "train-{index:05d}-of-{count:05d}.tfrecord"


@dataclass(frozen=True)
class Shard:
    """One shard file and the HR (height, width) of each of its records, in order."""

    file: str
    hr_sizes: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class ShardIndex:
    """The shards of one training set (``index.json``), in the folder that holds them."""

    folder: Path
    shards: tuple[Shard, ...]
    scale: int

    @property
    def records(self) -> int:
        return sum(len(s.hr_sizes) for s in self.shards)

    @property
    def decoded_bytes(self) -> int:
        """Memory the records take decoded to 8-bit RGB, HR and LR."""
        area = sum(h * w for s in self.shards for h, w in s.hr_sizes)
        return int(area * 3 * (1 + 1 / self.scale**2))

    def paths(self) -> list[str]:
        return [str(self.folder / s.file) for s in self.shards]

    def for_pipeline(self, pipeline: int, pipelines: int) -> ShardIndex:
        """The shards input pipeline ``pipeline`` of ``pipelines`` reads (one per worker): every ``pipelines``-th."""
        if len(self.shards) < pipelines:
            raise ConfigError(f"{self.folder}: {len(self.shards)} shard(s) for {pipelines} workers; each worker "
                              f"reads its own shards: set shards.count >= {pipelines} (and have as many "
                              f"training pairs)")
        return ShardIndex(self.folder, self.shards[pipeline::pipelines], self.scale)


def write_shards(manifest: pd.DataFrame, pairs_dir: Path, out_dir: Path, scale: int, count: int) -> ShardIndex:
    """Pack the training rows of ``manifest`` (paths under ``pairs_dir``) into ``count`` shards in ``out_dir``.

    Fewer shards when there are fewer rows; the folder is swapped in whole.
    """
    rows = manifest[manifest["split"] == "train"]
    if rows.empty:
        raise DataError(f"{pairs_dir}: no training pairs to pack")
    runs = np.array_split(np.arange(len(rows)), min(count, len(rows)))
    shards = []
    with atomic_path(out_dir) as staged, tqdm(total=len(rows), desc="shards", unit="pair", leave=False) as bar:
        staged.mkdir(parents=True)
        for j, run in enumerate(runs):
            shard = Shard(SHARD_NAME.format(index=j, count=len(runs)),
                          tuple((int(h), int(w)) for h, w in rows[["hr_height", "hr_width"]].to_numpy()[run]))
            with tf.io.TFRecordWriter(str(staged / shard.file)) as writer:
                for row in rows.iloc[run].itertuples():
                    writer.write(pair_record(_read(pairs_dir / row.lr_path), _read(pairs_dir / row.hr_path),
                                             int(row.hr_height), int(row.hr_width)))
                    bar.update()
            shards.append(shard)
        index = ShardIndex(out_dir, tuple(shards), scale)
        (staged / INDEX_FILE).write_text(json.dumps(
            {"scale": scale, "shards": [{"file": s.file, "hr_sizes": s.hr_sizes} for s in shards]},
            separators=(",", ":")) + "\n")
    return index


def read_index(shards_dir: Path) -> ShardIndex:
    """The shards in ``shards_dir``, as the shards stage wrote them."""
    path = Path(shards_dir) / INDEX_FILE
    try:
        raw = json.loads(path.read_text())
        shards = tuple(Shard(s["file"], tuple((int(h), int(w)) for h, w in s["hr_sizes"])) for s in raw["shards"])
        index = ShardIndex(Path(shards_dir), shards, int(raw["scale"]))
    except FileNotFoundError as exc:
        raise DataError(f"{path}: not found (run the shards stage first)") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: unreadable shard index ({exc})") from exc
    missing = [p for p in index.paths() if not Path(p).is_file()]
    if missing or not shards:
        raise DataError(f"{path}: {'shard ' + missing[0] + ' is missing' if missing else 'no shards'} "
                        "(run the shards stage again)")
    return index


def pair_record(lr_png: bytes, hr_png: bytes, hr_height: int, hr_width: int) -> bytes:
    """One pair as a serialized ``tf.train.Example``."""
    def data(value: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def number(value: int) -> tf.train.Feature:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    features = {"lr": data(lr_png), "hr": data(hr_png), "hr_height": number(hr_height), "hr_width": number(hr_width)}
    # Deterministic: the features are a protobuf map, whose order would otherwise follow each process's string
    # hashes, and the shards' bytes would differ from run to run.
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString(deterministic=True)


RECORD_FEATURES = {
    "lr": tf.io.FixedLenFeature([], tf.string),
    "hr": tf.io.FixedLenFeature([], tf.string),
    "hr_height": tf.io.FixedLenFeature([], tf.int64),
    "hr_width": tf.io.FixedLenFeature([], tf.int64),
}


def records(index: ShardIndex) -> tf.data.Dataset:
    """Every record of ``index``'s shards, one from each shard in turn (see the module's note), parsed."""
    files = index.paths()
    return (
        tf.data.Dataset.from_tensor_slices(files)
        .interleave(tf.data.TFRecordDataset, cycle_length=len(files), block_length=1,
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .map(lambda record: tf.io.parse_single_example(record, RECORD_FEATURES))
    )


def record_order(index: ShardIndex) -> list[tuple[int, int]]:
    """(shard, position) of each record in the order :func:`records` yields them."""
    longest = max(len(s.hr_sizes) for s in index.shards)
    return [(j, i) for i in range(longest) for j, s in enumerate(index.shards) if i < len(s.hr_sizes)]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from exc
