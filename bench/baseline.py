"""gansr's PSNR generator against the plain baseline the quality bar is calibrated on.

    python bench/baseline.py [--minutes 10] [--channels 32] [--blocks 4]

Trains a plain tiny EDSR (Lim et al. 2017: head conv, residual blocks without
batch norm, two ×2 sub-pixel upsamplers, tail conv; no bicubic skip, no EMA)
with the L1 loss, Adam and a cosine decay, in mixed bfloat16 where the CPU
has it, on the same tf.data crops of the same training split as `dvc repro`,
for a fixed wall-clock budget. Then it scores it on the test split with the
evaluate stage's protocol (Y channel, border = scale) and prints it beside
the PSNR generator's figures from metrics/eval.json. Needs `dvc repro` (at
least `validate` for the baseline, `evaluate` for the comparison).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import _quiet  # noqa: F401  (first: quiets TensorFlow before anything loads it)
import keras
import tensorflow as tf

from gansr.config import load_params
from gansr.data.dataset import training_dataset
from gansr.data.pairs import read_manifest
from gansr.evaluation import load_pairs, mean_gain_db
from gansr.models.layers import DepthToSpace
from gansr.training.precision import apply_precision, make_optimizer

RATE_PROBE_STEPS = 30  # steps timed to turn the budget into a step count for the schedule


def plain_edsr(scale: int, channels: int, blocks: int) -> keras.Model:
    """EDSR-baseline for scale 2 or 4: the network predicts the HR image itself."""
    lr = keras.Input(shape=(None, None, 3))
    head = keras.layers.Conv2D(channels, 3, padding="same")(keras.layers.Rescaling(1.0, -0.5)(lr))
    x = head
    for _ in range(blocks):
        y = keras.layers.Conv2D(channels, 3, padding="same", activation="relu")(x)
        x = keras.layers.Add()([x, keras.layers.Conv2D(channels, 3, padding="same")(y)])
    x = keras.layers.Add()([head, keras.layers.Conv2D(channels, 3, padding="same")(x)])
    for _ in range(scale // 2):
        x = DepthToSpace(2)(keras.layers.Conv2D(4 * channels, 3, padding="same")(x))
    x = keras.layers.Conv2D(3, 3, padding="same", dtype="float32")(x)
    return keras.Model(lr, keras.layers.Rescaling(1.0, 0.5, dtype="float32")(x), name="edsr_baseline")


class BudgetCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Cosine decay over a step count that is set once the training speed is known."""

    def __init__(self, peak: float, alpha: float = 0.01) -> None:
        self.peak, self.alpha = peak, alpha
        self.total = tf.Variable(1e9, trainable=False, dtype=tf.float32)

    def __call__(self, step: tf.Tensor) -> tf.Tensor:
        progress = tf.minimum(tf.cast(step, tf.float32) / self.total, 1.0)
        return self.peak * (self.alpha + (1 - self.alpha) * 0.5 * (1 + tf.cos(math.pi * progress)))


def train_for(model: keras.Model, batches: tf.data.Dataset, minutes: float, peak_lr: float,
              policy: str) -> int:
    """Train ``model`` on L1 for ``minutes`` of wall time; return the steps run."""
    budget = minutes * 60.0
    schedule = BudgetCosine(peak_lr)
    optimizer = make_optimizer(schedule, policy)

    @tf.function(reduce_retracing=True)
    def step(lr: tf.Tensor, hr: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(tf.cast(model(lr, training=True), tf.float32) - hr))
            scaled = optimizer.scale_loss(loss)
        optimizer.apply_gradients(zip(tape.gradient(scaled, model.trainable_variables),
                                      model.trainable_variables))
        return loss

    iterator = iter(batches)
    started, steps = time.perf_counter(), 0
    while True:
        step(*next(iterator))
        steps += 1
        elapsed = time.perf_counter() - started
        if steps == RATE_PROBE_STEPS:  # now the step count that fills the budget is known
            schedule.total.assign(max(steps + 1.0, budget / elapsed * steps))
        if elapsed >= budget:
            return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()

    params = load_params(Path("params.yaml"))
    validated = Path("data/validated")
    manifest = read_manifest(validated)
    policy = apply_precision(args.precision)
    keras.utils.set_random_seed(params.seed)
    model = plain_edsr(params.scale, args.channels, args.blocks)
    batches = training_dataset(manifest, validated, params.scale, params.train.patch_size,
                               params.train.batch_size, params.seed)
    steps = train_for(model, batches, args.minutes, args.lr, policy)
    keras.mixed_precision.set_global_policy("float32")
    scored = plain_edsr(params.scale, args.channels, args.blocks)
    scored.set_weights(model.get_weights())
    y_psnr, gain = mean_gain_db(scored, load_pairs(manifest, validated, "test"), params.scale)

    print(f"test split, x{params.scale}, Y channel, border {params.scale}")
    print(f"{'model':<52} {'Y-PSNR':>8} {'gain':>8}")
    print(f"{f'plain EDSR {args.channels}x{args.blocks}, {args.minutes:g} min ({steps} steps, {policy})':<52} "
          f"{y_psnr:8.2f} {gain:+8.2f}")
    eval_file = Path("metrics/eval.json")
    if eval_file.is_file():
        ours = json.loads(eval_file.read_text())
        print(f"{'gansr psnr generator (metrics/eval.json)':<52} {ours['psnr']['y_psnr']:8.2f} "
              f"{ours['psnr']['y_psnr'] - ours['bicubic']['y_psnr']:+8.2f}")


if __name__ == "__main__":
    main()
