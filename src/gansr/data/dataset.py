"""tf.data input pipelines over the training shards (:mod:`gansr.data.shards`).

Training draws aligned random LR/HR crops, each in one of the 8
flips/rotations, in parallel, batched, converted to float32 one batch at a
time and prefetched, so the train step never waits on input. Each pass
visits a pair in proportion to its area, so a large photo yields more crops
than a small one. The ``real`` generator's LR crops are degraded anew from
their HR crops, each by a draw from its own seed. The pairs come one of two
ways (``train.input``):

- ``memory``: decoded once and cached as 8-bit RGB, every visit of a pass
  shuffled with every other. Fast, and the default while the decoded pairs
  fit in ``train.memory_limit_mb``.
- ``stream``: read from the shards anew every pass, still PNG-encoded, through
  a shuffle buffer of ``train.shuffle_buffer`` visits, decoded in parallel as
  each crop is cut, so memory does not grow with the data. With a buffer
  that holds a whole pass it gives exactly the ``memory`` batches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from gansr.config import TrainConfig
from gansr.data.shards import ShardIndex, record_order, records

log = logging.getLogger("gansr")

AUTOTUNE = tf.data.AUTOTUNE
MB = 1024 * 1024
CropDegrader = Callable[[np.ndarray, int], np.ndarray]  # (HR crop, uint8; a seed) -> its LR, uint8
WHOLE_IMAGE_VISITS = 8  # streaming pairs this many patches large on average: suggest tiles


def decode_png(data: tf.Tensor) -> tf.Tensor:
    """PNG bytes → uint8 RGB."""
    return tf.io.decode_png(data, channels=3)


def to_unit_float(lr: tf.Tensor, hr: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """uint8 batches → float32 in [0, 1]."""
    return tf.image.convert_image_dtype(lr, tf.float32), tf.image.convert_image_dtype(hr, tf.float32)


def visits_per_pass(index: ShardIndex, patch_size: int) -> list[int]:
    """How often each record is visited per pass, in reading order: its area in patches, at least 1."""
    areas = np.array([index.shards[j].hr_sizes[i][0] * index.shards[j].hr_sizes[i][1]
                      for j, i in record_order(index)])
    return np.maximum(1, areas // (patch_size * patch_size * 4)).astype(int).tolist()


def stream_buffer(index: ShardIndex, cfg: TrainConfig) -> int | None:
    """``train.input`` resolved for these shards: a shuffle buffer to stream through, or None to cache.

    ``auto`` caches while the decoded pairs fit in ``train.memory_limit_mb``.
    Logs which way was taken and why.
    """
    decoded_mb = index.decoded_bytes / MB
    fits = decoded_mb <= cfg.memory_limit_mb
    if cfg.input == "memory" or (cfg.input == "auto" and fits):
        log.info("input: %d training pairs, %.0f MB decoded: cached in memory (train.input %s, "
                 "train.memory_limit_mb %d)", index.records, decoded_mb, cfg.input, cfg.memory_limit_mb)
        return None
    log.info("input: %d training pairs, %.0f MB decoded: streamed from %d shard(s) through a shuffle buffer "
             "of %d crops (train.input %s, train.memory_limit_mb %d)", index.records, decoded_mb,
             len(index.shards), cfg.shuffle_buffer, cfg.input, cfg.memory_limit_mb)
    visits = visits_per_pass(index, cfg.patch_size)
    if sum(visits) / len(visits) >= WHOLE_IMAGE_VISITS:
        log.warning("input: training pairs average %.0f crops each, and each crop decodes its whole pair: "
                    "set pairs.tile_size (e.g. 256) so that streaming decodes small tiles",
                    sum(visits) / len(visits))
    return cfg.shuffle_buffer


def orient(image: tf.Tensor, flips: tf.Tensor, transpose: tf.Tensor) -> tf.Tensor:
    """Mirror rows and/or columns (``flips``: two 0/1 flags), then swap the axes if ``transpose``.

    The three flags drawn uniformly give each of the square's 8 symmetries
    (flips and 90° rotations) with equal chance, with no branching.
    """
    image = tf.reverse(image, tf.boolean_mask([0, 1], tf.cast(flips, tf.bool)))
    return tf.transpose(image, tf.where(transpose, [1, 0, 2], [0, 1, 2]))


def random_crop_pair(lr: tf.Tensor, hr: tf.Tensor, seed: tf.Tensor, lr_patch: int,
                     scale: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Aligned random crop of an LR/HR pair in a random one of its 8 flips/rotations.

    ``seed`` is a shape-[2] int tensor: stateless ops make the stream
    reproducible even with parallel map.
    """
    seeds = tf.random.experimental.stateless_split(seed, 4)
    shape = tf.shape(lr)
    top = tf.random.stateless_uniform([], seeds[0], 0, shape[0] - lr_patch + 1, tf.int32)
    left = tf.random.stateless_uniform([], seeds[1], 0, shape[1] - lr_patch + 1, tf.int32)
    flips = tf.random.stateless_uniform([2], seeds[2], 0, 2, tf.int32)
    transpose = tf.random.stateless_uniform([], seeds[3], 0, 2, tf.int32) > 0
    lr = lr[top : top + lr_patch, left : left + lr_patch]
    hr_patch = lr_patch * scale
    hr = hr[top * scale : top * scale + hr_patch, left * scale : left * scale + hr_patch]
    return orient(lr, flips, transpose), orient(hr, flips, transpose)


def degraded_lr(hr: tf.Tensor, seed: tf.Tensor, lr_patch: int, degrade: CropDegrader) -> tf.Tensor:
    """``hr``'s LR as ``degrade`` makes it from a number drawn from ``seed`` (a shape-[2] int tensor)."""
    number = tf.random.stateless_uniform([], tf.random.experimental.stateless_fold_in(seed, 1),
                                         minval=None, maxval=None, dtype=tf.int64)
    lr = tf.numpy_function(lambda image, n: degrade(image, int(n) % 2**63), [hr, number], tf.uint8,
                           stateful=False)
    lr.set_shape([lr_patch, lr_patch, 3])
    return lr


def training_dataset(index: ShardIndex, scale: int, patch_size: int, batch_size: int, seed: int,
                     buffer: int | None = None, degrade: CropDegrader | None = None,
                     skip_batches: int = 0) -> tf.data.Dataset:
    """Endless batches of (LR, HR) float32 crops from ``index``'s shards; HR crops are ``patch_size``².

    ``buffer``: None caches the decoded pairs; a number streams them through
    a shuffle buffer of that many visits (:func:`stream_buffer`). With
    ``degrade``, each LR crop is made anew from its HR crop (for the ``real``
    generator) instead of cut from the pair's LR. The first ``skip_batches``
    batches are skipped before any crop is cut, as a resumed run needs.
    """
    visits = visits_per_pass(index, patch_size)
    lr_patch = patch_size // scale
    pairs = tf.data.Dataset.zip(records(index), tf.data.Dataset.from_tensor_slices(visits))
    if buffer is None:
        pairs = pairs.map(lambda r, n: (decode_png(r["lr"]), decode_png(r["hr"]), n),
                          num_parallel_calls=AUTOTUNE).cache()
    else:
        pairs = pairs.map(lambda r, n: (r["lr"], r["hr"], n))
    crops = pairs.flat_map(
        lambda lr, hr, n: tf.data.Dataset.from_tensors((lr, hr)).repeat(tf.cast(n, tf.int64))
    )
    window = sum(visits) if buffer is None else min(sum(visits), buffer)
    crops = crops.shuffle(window, seed=seed, reshuffle_each_iteration=True).repeat()
    seeds = tf.data.Dataset.random(seed=seed).batch(2)

    def crop(pair: tuple[tf.Tensor, tf.Tensor], s: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        lr, hr = pair if buffer is None else (decode_png(pair[0]), decode_png(pair[1]))
        lr, hr = random_crop_pair(lr, hr, s, lr_patch, scale)
        return (lr if degrade is None else degraded_lr(hr, s, lr_patch, degrade)), hr

    return (
        tf.data.Dataset.zip(crops, seeds)
        .skip(skip_batches * batch_size)
        .map(crop, num_parallel_calls=AUTOTUNE)
        .batch(batch_size, drop_remainder=True)
        .map(to_unit_float)
        .prefetch(AUTOTUNE)
    )
