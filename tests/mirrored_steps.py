"""The train steps on two replicas (two logical CPUs, MirroredStrategy) and on one device.

    python tests/mirrored_steps.py OUT.npz

Run as its own process by tests/test_distribute.py: logical devices must be
configured before TensorFlow starts. In each case, both runs train from the
same initial weights on the same global batches, which the two replicas get
in halves. OUT.npz holds ``<case>/<run>/<model>/<variable path>``: the final
variables of each run (``single``, ``mirrored``), the ``initial`` generator,
and as ``spread`` the largest difference between the two replicas' copies of
each mirrored variable.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from gansr.models.backbone import random_backbone
from gansr.models.discriminator import build_discriminator
from gansr.models.generator import build_generator
from gansr.style.losses import StyleTargets, palette_directions
from gansr.style.network import build_styled_generator, freeze_all_but_style
from gansr.style.training import StyleWeights, make_style_step
from gansr.training.steps import GanWeights, make_gan_step, make_pretrain_step

SCALE, LR_SIZE, GLOBAL_BATCH, STEPS = 4, 4, 4, 3
Models = dict[str, keras.Model]
StepMaker = Callable[[Models, tf.distribute.Strategy], Any]


def global_batches(seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random images, darker in the first half of each batch than in the second.

    The halves differ so that a statistic of one replica's half (the
    relativistic loss's mean logit) differs from that of the global batch.
    """
    rng = np.random.default_rng(seed)
    brightness = np.repeat([0.0, 0.5], GLOBAL_BATCH // 2).astype(np.float32)[:, None, None, None]

    def images(size: int) -> np.ndarray:
        return 0.5 * rng.random((GLOBAL_BATCH, size, size, 3), np.float32) + brightness

    return [(images(LR_SIZE), images(LR_SIZE * SCALE)) for _ in range(STEPS)]


def sgd() -> keras.optimizers.Optimizer:
    """SGD: its update is linear in the gradient, so any mis-scaled gradient shows.

    (Adam's is not: it divides by the gradient's own magnitude.)
    """
    return keras.optimizers.SGD(0.1, momentum=0.5, name="sgd")  # same variable paths in every run


def randomised(model: keras.Model, seed: int) -> keras.Model:
    """Every weight random (the sub-pixel conv starts at zero otherwise, hiding its gradients)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.2, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def tiny_generator(styles: tuple[str, ...] = (), name: str = "generator") -> keras.Model:
    if not styles:
        return build_generator(SCALE, 4, 1, name=name)
    return build_styled_generator(SCALE, 4, 1, styles, style_channels=4, style_blocks=1, patches=8, shading=0.5,
                                  name=name)


def initial_weights(styles: tuple[str, ...] = ()) -> dict[str, list[np.ndarray]]:
    generator = randomised(tiny_generator(styles), 1)
    discriminator = randomised(build_discriminator(4), 2).get_weights()
    discriminator[-2] *= 100  # the (not normalised) logits kernel: logits far apart across images
    return {"generator": generator.get_weights(), "ema": generator.get_weights(),
            "discriminator": discriminator}


def build(strategy: tf.distribute.Strategy, weights: dict[str, list[np.ndarray]],
          styles: tuple[str, ...] = ()) -> Models:
    with strategy.scope():
        models = {"generator": tiny_generator(styles),
                  "ema": tiny_generator(styles, name="ema"),
                  "discriminator": build_discriminator(4)}
        for name, model in models.items():
            model.set_weights(weights[name])
        if styles:
            freeze_all_but_style(models["generator"])
    return models


def split(strategy: tf.distribute.Strategy, batch: tuple[np.ndarray, np.ndarray]) -> tuple[Any, Any]:
    """The global batch as it reaches the replicas: replica i gets the i-th slice."""
    if strategy.num_replicas_in_sync == 1:
        return tuple(tf.constant(a) for a in batch)
    per_replica = GLOBAL_BATCH // strategy.num_replicas_in_sync

    def part(array: np.ndarray) -> Any:
        return strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(array[ctx.replica_id_in_sync_group * per_replica:][:per_replica]))

    return part(batch[0]), part(batch[1])


def run(strategy: tf.distribute.Strategy, make_step: StepMaker, weights: dict[str, list[np.ndarray]],
        batches: list[tuple[np.ndarray, np.ndarray]], styles: tuple[str, ...] = ()) -> Models:
    models = build(strategy, weights, styles)
    step = make_step(models, strategy)
    for batch in batches:
        step(*split(strategy, batch))
    return models


def pretrain(models: Models, strategy: tf.distribute.Strategy) -> Any:
    with strategy.scope():
        optimizer = sgd()
        optimizer.build(models["generator"].trainable_variables)
    models["optimizer"] = optimizer
    return make_pretrain_step(models["generator"], models["ema"], optimizer, "l2", 0.5, strategy)


def gan(models: Models, strategy: tf.distribute.Strategy) -> Any:
    with strategy.scope():
        g_optimizer, d_optimizer = sgd(), sgd()
        g_optimizer.build(models["generator"].trainable_variables)
        d_optimizer.build(models["discriminator"].trainable_variables)
        backbone = random_backbone()
    return make_gan_step(models["generator"], models["ema"], models["discriminator"], g_optimizer,
                         d_optimizer, backbone, GanWeights(1.0, 0.5, 1.0, 1.0), "l1", "relativistic", 0.5,
                         strategy)


def style(models: Models, strategy: tf.distribute.Strategy) -> Any:
    # One style: every crop draws style 1, so both runs see the same styles.
    rng = np.random.default_rng(3)
    with strategy.scope():
        optimizer = sgd()
        optimizer.build(models["generator"].trainable_variables)
        backbone = random_backbone()
    widths = [f.shape[-1] for f in backbone.texture(tf.zeros((1, 16, 16, 3)))]
    textures = [tf.sort(tf.constant(rng.random((1, c, 64), np.float32)), axis=-1) for c in widths]
    directions = palette_directions()
    palettes = tf.sort(tf.constant(rng.random((1, directions.shape[1], 64), np.float32)), axis=-1)
    return make_style_step(models["generator"], models["ema"], optimizer, backbone,
                           StyleTargets(textures, palettes, directions, SCALE), StyleWeights(1.0, 1.0, 1.0), 0.5,
                           strategy)


def float16_generator(weights: list[np.ndarray]) -> keras.Model:
    keras.mixed_precision.set_global_policy("mixed_float16")
    generator = build_generator(SCALE, 4, 1)
    keras.mixed_precision.set_global_policy("float32")
    generator.set_weights(weights)
    return generator


def overflow_batch(lr: np.ndarray, weights: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Targets: the float16 generator's own output for replica 0's half, that plus 100 for replica 1's.

    Under a loss scale of 2**20, replica 1's gradients overflow float16 and replica 0's stay small.
    """
    output = float16_generator(weights)(lr, training=True).numpy()
    return lr, np.concatenate([output[:2], output[2:] + 100.0])


def overflowing_float16(models: Models, strategy: tf.distribute.Strategy) -> Any:
    """mixed_float16 with loss scaling; see overflow_batch."""
    with strategy.scope():
        generator = float16_generator(models["generator"].get_weights())
        optimizer = keras.optimizers.LossScaleOptimizer(sgd(), initial_scale=2.0**20, name="lso")
        optimizer.build(generator.trainable_variables)
    models.update(generator=generator, optimizer=optimizer)
    return make_pretrain_step(generator, models["ema"], optimizer, "l2", 0.5, strategy)


def variables(model: keras.Model | keras.optimizers.Optimizer) -> list[keras.Variable]:
    return model.variables if isinstance(model, keras.optimizers.Optimizer) else model.weights


def replica_spread(variable: keras.Variable) -> float:
    """The largest difference between the copies of a mirrored variable on the replicas."""
    copies = [np.asarray(copy) for copy in variable.value.values]
    return max(float(np.max(np.abs(copy - copies[0]))) for copy in copies)


def main(out: str) -> None:
    tf.get_logger().setLevel("ERROR")  # each case traces its own steps; no retracing warnings
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    single = tf.distribute.get_strategy()
    assert mirrored.num_replicas_in_sync == 2

    batches = global_batches()
    overflow = overflow_batch(batches[0][0], initial_weights()["generator"])
    half_nan = (batches[0][0], np.concatenate([batches[0][1][:2], np.full_like(batches[0][1][2:], np.nan)]))
    cases = {"pretrain": (pretrain, batches, ()), "gan": (gan, batches, ()), "style": (style, batches, ("s",)),
             "half_nan": (pretrain, [half_nan], ()), "float16_overflow": (overflowing_float16, [overflow], ())}
    arrays: dict[str, np.ndarray] = {}
    for case, (make_step, data, styles) in cases.items():
        weights = initial_weights(styles)
        for run_name, strategy in (("single", single), ("mirrored", mirrored)):
            for name, model in run(strategy, make_step, weights, data, styles).items():
                for variable in variables(model):
                    arrays[f"{case}/{run_name}/{name}/{variable.path}"] = np.asarray(variable)
                    if run_name == "mirrored":
                        arrays[f"{case}/spread/{name}/{variable.path}"] = np.asarray(replica_spread(variable))
        generator = tiny_generator(styles)
        for variable, value in zip(generator.weights, weights["generator"]):
            arrays[f"{case}/initial/generator/{variable.path}"] = value
    np.savez(out, **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
