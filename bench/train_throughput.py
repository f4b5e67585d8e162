"""Training throughput of the generator's pretraining step, three ways, side by side.

    python bench/train_throughput.py [--steps 60] [--channels 48 --blocks 6]

(a) eager:   float32, a plain Python loop calling the model eagerly, batches
             cropped in NumPy (the way a first prototype is usually written);
(b) graph:   float32, the same step compiled with tf.function, same NumPy batches;
(c) default: what `dvc repro` runs: train.precision auto (bf16 on CPUs with
             AVX512-BF16/AMX) and the tf.data pipeline from the pairs manifest.

Prints images/s, the speed-up over (b), achieved GFLOP/s (from the model's
counted multiply-adds) against a peak estimate, and the input stall: the
share of step time spent waiting for the next batch. Needs `dvc repro pairs`.

The peak estimate assumes two 256-bit FMA pipes per core (Zen 4, and AVX-512
cores that fuse their ports): 32 float32 FLOP per cycle, twice that in
bfloat16 (VDPBF16PS), at the clock /proc/cpuinfo reports.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import gansr  # noqa: F401  (quiet TensorFlow import)
import keras
import numpy as np
import tensorflow as tf

from gansr.config import load_params
from gansr.data.dataset import training_dataset
from gansr.data.pairs import read_manifest
from gansr.evaluation import load_pairs
from gansr.losses import pixel_loss
from gansr.models.generator import build_generator
from gansr.training.precision import apply_precision, make_optimizer


def conv_macs(model: keras.Model, lr_size: int) -> float:
    """Multiply-adds of one forward pass on an lr_size² input (convolutions only)."""
    total = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            total += kh * kw * cin * cout * lr_size * lr_size
    return total


FP32_FLOP_PER_CYCLE = 32


def peak_gflops(policy: str) -> float:
    """Rough peak of this CPU for ``policy`` (see the module docstring)."""
    mhz = [float(line.split(":")[1]) for line in Path("/proc/cpuinfo").read_text().splitlines()
           if line.startswith("cpu MHz")]
    per_cycle = FP32_FLOP_PER_CYCLE * (2 if "bfloat16" in policy else 1)
    return (os.cpu_count() or 1) * (max(mhz) if mhz else 0.0) / 1e3 * per_cycle


def numpy_batches(pairs_dir: Path, scale: int, patch: int, batch: int, seed: int):
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


def measure(name: str, policy: str, compiled: bool, batches, args, scale: int) -> dict:
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    model = build_generator(scale, args.channels, args.blocks)
    optimizer = make_optimizer(1e-4, policy)
    optimizer.build(model.trainable_variables)

    def step(lr, hr):
        with tf.GradientTape() as tape:
            loss = pixel_loss(model(lr, training=True), hr)
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    run = tf.function(step) if compiled else step
    for _ in range(args.warmup):
        run(*next(batches))
    waiting = 0.0
    started = time.perf_counter()
    for _ in range(args.steps):
        fetch = time.perf_counter()
        lr, hr = next(batches)
        waiting += time.perf_counter() - fetch
        float(run(lr, hr))
    seconds = time.perf_counter() - started
    images_per_s = args.steps * args.batch_size / seconds
    # Training costs about 3× the forward pass (forward + two backward products).
    flops = 3 * 2 * conv_macs(model, args.patch_size // scale) * args.batch_size * args.steps
    return {"path": name, "policy": policy, "images_per_s": images_per_s,
            "gflops": flops / seconds / 1e9, "stall": waiting / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
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

    def crops():
        return numpy_batches(pairs_dir, scale, args.patch_size, args.batch_size, params.seed)

    dataset = training_dataset(read_manifest(pairs_dir), pairs_dir, scale, args.patch_size,
                               args.batch_size, params.seed)
    results = [
        measure("(a) eager float32", "float32", False, crops(), args, scale),
        measure("(b) tf.function float32", "float32", True, crops(), args, scale),
        measure("(c) default", apply_precision(params.train.precision), True, iter(dataset), args, scale),
    ]
    baseline = results[1]["images_per_s"]
    print(f"generator {args.channels}ch × {args.blocks} blocks, batch {args.batch_size} of "
          f"{args.patch_size}² HR crops, ×{scale}, {args.steps} steps each")
    print(f"{'path':<26} {'policy':<15} {'images/s':>9} {'vs (b)':>7} {'GFLOP/s':>8} "
          f"{'of peak':>8} {'input stall':>12}")
    for r in results:
        peak = peak_gflops(r["policy"])
        share = f"{r['gflops'] / peak:>8.0%}" if peak else f"{'?':>8}"
        print(f"{r['path']:<26} {r['policy']:<15} {r['images_per_s']:>9.1f} "
              f"{r['images_per_s'] / baseline:>6.2f}× {r['gflops']:>8.1f} {share} {r['stall']:>11.1%}")


if __name__ == "__main__":
    main()
