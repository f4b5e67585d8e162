"""tf.data input pipelines over the pairs manifest.

Training: decode every pair once and cache it in memory as 8-bit RGB (a
quarter of float32's footprint: DIV2K's 800 pairs take 7 GB, not 29), then
draw aligned random LR/HR crops, each in one of the 8 flips/rotations, in
parallel, batched, converted to float32 one batch at a time and prefetched, so
the train step never waits on input and the input work takes little CPU from
it. Images are sampled in proportion to their area, so a large photo yields
more crops than a small one. The ``real`` generator's LR crops are degraded
anew from their HR crops, each by a draw from its own seed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

AUTOTUNE = tf.data.AUTOTUNE
CropDegrader = Callable[[np.ndarray, int], np.ndarray]  # (HR crop, uint8; a seed) -> its LR, uint8


def split_pairs(manifest: pd.DataFrame, pairs_dir: Path, split: str) -> tuple[list[str], list[str]]:
    """Absolute LR and HR paths of one split, in manifest order."""
    rows = manifest[manifest["split"] == split]
    return ([str(pairs_dir / p) for p in rows["lr_path"]], [str(pairs_dir / p) for p in rows["hr_path"]])


def decode_png(path: tf.Tensor) -> tf.Tensor:
    """PNG file → uint8 RGB."""
    return tf.io.decode_png(tf.io.read_file(path), channels=3)


def to_unit_float(lr: tf.Tensor, hr: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """uint8 batches → float32 in [0, 1]."""
    return tf.image.convert_image_dtype(lr, tf.float32), tf.image.convert_image_dtype(hr, tf.float32)


def crops_per_image(manifest: pd.DataFrame, split: str, patch_size: int) -> list[int]:
    """How often each image is visited per pass: its area in patches (at least 1)."""
    rows = manifest[manifest["split"] == split]
    areas = rows["hr_height"].to_numpy() * rows["hr_width"].to_numpy()
    return np.maximum(1, areas // (patch_size * patch_size * 4)).astype(int).tolist()


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


def training_dataset(manifest: pd.DataFrame, pairs_dir: Path, scale: int, patch_size: int,
                     batch_size: int, seed: int, split: str = "train",
                     degrade: CropDegrader | None = None) -> tf.data.Dataset:
    """Endless batches of (LR, HR) float32 crops; HR crops are ``patch_size``².

    With ``degrade``, each LR crop is made anew from its HR crop (for the
    ``real`` generator) instead of cut from the pair's LR.
    """
    lr_paths, hr_paths = split_pairs(manifest, pairs_dir, split)
    repeats = crops_per_image(manifest, split, patch_size)
    lr_patch = patch_size // scale
    images = tf.data.Dataset.from_tensor_slices((lr_paths, hr_paths, repeats))
    images = images.map(lambda lr, hr, n: (decode_png(lr), decode_png(hr), n),
                        num_parallel_calls=AUTOTUNE).cache()
    crops = images.flat_map(
        lambda lr, hr, n: tf.data.Dataset.from_tensors((lr, hr)).repeat(tf.cast(n, tf.int64))
    )
    crops = crops.shuffle(sum(repeats), seed=seed, reshuffle_each_iteration=True).repeat()
    seeds = tf.data.Dataset.random(seed=seed).batch(2)

    def crop(pair: tuple[tf.Tensor, tf.Tensor], s: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        lr, hr = random_crop_pair(pair[0], pair[1], s, lr_patch, scale)
        return (lr if degrade is None else degraded_lr(hr, s, lr_patch, degrade)), hr

    return (
        tf.data.Dataset.zip(crops, seeds)
        .map(lambda pair, s: crop(pair, s), num_parallel_calls=AUTOTUNE)
        .batch(batch_size, drop_remainder=True)
        .map(to_unit_float)
        .prefetch(AUTOTUNE)
    )
