"""Training throughput of the generator's pretraining step, three ways, side by side.

    python bench/train_throughput.py [--rounds 5 --steps 20] [--channels 48 --blocks 6]

(a) eager:   float32, a plain Python loop calling the model eagerly, batches
             cropped in NumPy (the way a first prototype is usually written);
(b) graph:   float32, the same step compiled with tf.function, same NumPy batches;
(c) default: what `dvc repro` runs: train.precision auto (bf16 on CPUs with
             AVX512-BF16/AMX) and the tf.data pipeline over the training shards.

The three are built first, then timed in interleaved rounds of ``--steps``
steps each, and each path's median round is reported: a shared or throttled
machine then slows all three alike instead of whichever happened to run last.

Prints images/s, the speed-up over (b), achieved GFLOP/s (from the model's
counted multiply-adds) against the peak the same CPU reaches on a large
matrix product in that precision (measured here, in the same run), and the
input stall: the share of step time spent waiting for the next batch.
Needs `dvc repro shards`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import _quiet  # noqa: F401  (first: quiets TensorFlow before anything loads it)
import keras
import numpy as np
import tensorflow as tf

from gansr.config import load_params
from gansr.data.dataset import stream_buffer, training_dataset
from gansr.data.pairs import read_manifest
from gansr.data.shards import read_index
from gansr.evaluation import load_pairs
from gansr.losses import pixel_loss
from gansr.models.generator import build_generator
from gansr.training.precision import apply_precision, cpu_bf16_flags, make_optimizer

Batches = Iterator[tuple[np.ndarray | tf.Tensor, np.ndarray | tf.Tensor]]


def conv_macs(model: keras.Model, lr_size: int) -> float:
    """Multiply-adds of one forward pass on an lr_size² input (convolutions only)."""
    total = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            total += kh * kw * cin * cout * lr_size * lr_size
    return total


def matmul_peak_gflops(dtype: tf.DType, size: int = 2048, rounds: int = 5, repeats: int = 3) -> float:
    """GFLOP/s of a large square matrix product in ``dtype`` (best round): what this CPU reaches."""
    a = tf.cast(tf.random.stateless_uniform([size, size], [0, 1]), dtype)
    product = tf.function(lambda x: tf.reduce_sum(tf.cast(tf.matmul(x, x), tf.float32)))
    float(product(a))
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeats):
            float(product(a))
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 * repeats / best / 1e9


def cpu_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """Model name, core count and the bfloat16 instructions this CPU offers."""
    text = cpuinfo.read_text(encoding="utf-8", errors="replace") if cpuinfo.exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("model name")), "unknown CPU")
    bf16 = ", ".join(cpu_bf16_flags(cpuinfo)) or "none"
    return f"{model}, {os.cpu_count()} cores, bfloat16 instructions: {bf16}"


def numpy_batches(pairs_dir: Path, scale: int, patch: int, batch: int, seed: int) -> Batches:
    """Random aligned crops cut in NumPy from decoded train images, one batch at a time."""
    pairs = load_pairs(read_manifest(pairs_dir), pairs_dir, "train")
    rng = np.random.default_rng(seed)
    lr_patch = patch // scale
    while True:
        lrs, hrs = [], []
        for i in rng.integers(0, len(pairs), batch):
            lr, hr = pairs[i].lr, pairs[i].hr
            top = rng.integers(0, lr.shape[0] - lr_patch + 1)
            left = rng.integers(0, lr.shape[1] - lr_patch + 1)
            lrs.append(lr[top : top + lr_patch, left : left + lr_patch])
            hrs.append(hr[top * scale : (top + lr_patch) * scale, left * scale : (left + lr_patch) * scale])
        yield np.stack(lrs).astype(np.float32) / 255, np.stack(hrs).astype(np.float32) / 255


@dataclass
class TrainPath:
    """One way of running the pretraining step, with its timed rounds."""

    name: str
    policy: str
    step: Callable
    batches: Batches
    macs_per_step: float
    rounds: list[tuple[float, float]] = field(default_factory=list)  # (seconds, waiting)

    def run(self, steps: int) -> None:
        """Time ``steps`` steps; record the round's wall time and input wait."""
        waiting = 0.0
        started = time.perf_counter()
        for _ in range(steps):
            fetch = time.perf_counter()
            lr, hr = next(self.batches)
            waiting += time.perf_counter() - fetch
            float(self.step(lr, hr))
        self.rounds.append((time.perf_counter() - started, waiting))

    def median_seconds(self) -> float:
        return statistics.median(seconds for seconds, _ in self.rounds)

    def stall(self) -> float:
        return sum(w for _, w in self.rounds) / sum(s for s, _ in self.rounds)


def build_path(name: str, policy: str, compiled: bool, batches: Batches, args: argparse.Namespace,
               scale: int) -> TrainPath:
    """Model, optimizer and step for one path, warmed up (traced and run ``--warmup`` times)."""
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    model = build_generator(scale, args.channels, args.blocks)
    optimizer = make_optimizer(1e-4, policy)
    optimizer.build(model.trainable_variables)

    def step(lr: tf.Tensor, hr: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = pixel_loss(model(lr, training=True), hr)
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    path = TrainPath(name, policy, tf.function(step) if compiled else step, batches,
                     conv_macs(model, args.patch_size // scale) * args.batch_size)
    for _ in range(args.warmup):
        path.step(*next(batches))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="steps per path per round")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--channels", type=int)
    parser.add_argument("--blocks", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--patch-size", type=int)
    args = parser.parse_args()
    params = load_params("params.yaml")
    args.channels = args.channels or params.model.channels
    args.blocks = args.blocks or params.model.blocks
    args.batch_size = args.batch_size or params.train.batch_size
    args.patch_size = args.patch_size or params.train.patch_size
    pairs_dir = Path("data/pairs")
    scale = params.scale

    def crops() -> Batches:
        return numpy_batches(pairs_dir, scale, args.patch_size, args.batch_size, params.seed)

    shards = read_index(Path("data/shards"))
    dataset = training_dataset(shards, scale, args.patch_size, args.batch_size, params.seed,
                               buffer=stream_buffer(shards, params.train))
    paths = [
        build_path("(a) eager float32", "float32", False, crops(), args, scale),
        build_path("(b) tf.function float32", "float32", True, crops(), args, scale),
        build_path("(c) default", apply_precision(params.train.precision), True, iter(dataset), args, scale),
    ]
    for _ in range(args.rounds):
        for path in paths:
            path.run(args.steps)
    peaks = {policy: matmul_peak_gflops(tf.bfloat16 if "bfloat16" in policy else tf.float32)
             for policy in {path.policy for path in paths}}

    baseline = paths[1].median_seconds()
    print(cpu_description())
    print(f"generator {args.channels}ch × {args.blocks} blocks, batch {args.batch_size} of "
          f"{args.patch_size}² HR crops, ×{scale}; median of {args.rounds} interleaved rounds "
          f"of {args.steps} steps per path")
    print(f"{'path':<26} {'policy':<15} {'images/s':>9} {'vs (b)':>7} {'GFLOP/s':>8} "
          f"{'of peak':>8} {'input stall':>12}")
    for path in paths:
        seconds = path.median_seconds()
        # Training costs about 3× the forward pass (forward + two backward products).
        gflops = 3 * 2 * path.macs_per_step * args.steps / seconds / 1e9
        print(f"{path.name:<26} {path.policy:<15} {args.steps * args.batch_size / seconds:>9.1f} "
              f"{baseline / seconds:>6.2f}× {gflops:>8.1f} {gflops / peaks[path.policy]:>8.0%} "
              f"{path.stall():>11.1%}")
    print("peak (2048² matrix product, best of 5): " +
          ", ".join(f"{policy} {gflops:.0f} GFLOP/s" for policy, gflops in sorted(peaks.items())))


if __name__ == "__main__":
    main()
