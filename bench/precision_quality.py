"""Does mixed precision train as well as float32? Same run, two precisions, side by side.

    python bench/precision_quality.py [--steps 2000] [--precisions float32 mixed_bfloat16]

Runs the PSNR-oriented pretraining step (the one `dvc repro` uses: same
model, schedule, seed and tf.data crops from the validated manifest) once per
precision and prints the EMA generator's test-split Y-PSNR gain over bicubic
and the wall time. Needs `dvc repro validate` to have run.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import _quiet  # noqa: F401  (first: quiets TensorFlow before anything loads it)
import keras

from gansr.config import Params, load_params
from gansr.data.dataset import training_dataset
from gansr.data.pairs import read_manifest
from gansr.evaluation import load_pairs, mean_gain_db
from gansr.models.generator import build_generator
from gansr.training.precision import apply_precision, float32_policy, make_optimizer
from gansr.training.steps import make_pretrain_step


def train_and_score(params: Params, precision: str, steps: int,
                    validated: Path) -> tuple[str, float, float, float]:
    """Pretrain for ``steps`` in ``precision``; return (policy, Y-PSNR, gain, seconds)."""
    train = params.train
    policy = apply_precision(precision)
    keras.utils.set_random_seed(params.seed)
    generator = build_generator(params.scale, params.model.channels, params.model.blocks)
    with float32_policy():
        ema = build_generator(params.scale, params.model.channels, params.model.blocks, name="ema")
    ema.set_weights(generator.get_weights())
    warmup = max(1, steps // 50)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, max(1, steps - warmup), alpha=0.01, warmup_target=train.pretrain_lr, warmup_steps=warmup)
    optimizer = make_optimizer(schedule, policy)
    optimizer.build(generator.trainable_variables)
    step = make_pretrain_step(generator, ema, optimizer, params.loss.pixel, train.ema_decay)
    manifest = read_manifest(validated)
    batches = training_dataset(manifest, validated, params.scale, train.patch_size, train.batch_size,
                               params.seed)
    started = time.perf_counter()
    for lr, hr in itertools.islice(batches, steps):
        step(lr, hr)
    seconds = time.perf_counter() - started
    y_psnr, gain = mean_gain_db(ema, load_pairs(manifest, validated, "test"), params.scale)
    return policy, y_psnr, gain, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"])
    args = parser.parse_args()
    params = load_params("params.yaml")
    rows = [train_and_score(params, p, args.steps, Path("data/validated")) for p in args.precisions]
    print(f"pretraining, {args.steps} steps each, test split, ×{params.scale}")
    print(f"{'policy':<16} {'Y-PSNR (dB)':>12} {'gain (dB)':>10} {'seconds':>8}")
    for policy, y_psnr, gain, seconds in rows:
        print(f"{policy:<16} {y_psnr:>12.2f} {gain:>+10.2f} {seconds:>8.0f}")


if __name__ == "__main__":
    main()
