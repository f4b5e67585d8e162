"""The compiled train steps of PSNR-oriented pretraining and GAN fine-tuning, and the parts every step shares.

The style phase's step (:mod:`gansr.style.training`) is built from the same parts.

Each step runs under a tf.distribute strategy (the default one: a single
device). Every replica computes its losses on its own batch, each divided by
the number of replicas, so that the gradients the optimizer sums across
replicas are those of the mean loss over the global batch, as on one device.
The losses the step returns are those global means.

A step whose losses are not finite changes nothing: no optimizer update, no
EMA update, on any replica. The loop then stops or skips the batch
(``train.nan_policy``), and either way the weights in memory are the last good ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf

from gansr import losses
from gansr.config import LossConfig
from gansr.models.backbone import Backbone
from gansr.training.ema import ema_decay_at, update_ema

Losses = dict[str, tf.Tensor]
Step = Callable[[Any, Any], Losses]
SUM = tf.distribute.ReduceOp.SUM


@dataclass(frozen=True)
class GanWeights:
    """Weights of the generator's loss terms in the adversarial phase."""

    pixel: float
    perceptual: float
    adversarial: float
    artifact: float

    @classmethod
    def of(cls, loss: LossConfig) -> GanWeights:
        """The weights ``loss`` (params.yaml's ``loss:``) sets."""
        return cls(loss.pixel_weight, loss.perceptual_weight, loss.adversarial_weight, loss.artifact_weight)


def only_if_finite(losses: Sequence[tf.Tensor], update: Callable[[], tf.Tensor]) -> tf.Tensor:
    """Run ``update`` only when every loss is finite; return whether it ran.

    Give it losses already reduced over replicas, so that every replica (and
    every worker) takes the same decision.
    """
    finite = tf.reduce_all([tf.math.is_finite(loss) for loss in losses])
    return tf.cond(finite, update, lambda: tf.constant(False))


def replica_share(loss: tf.Tensor) -> tf.Tensor:
    """This replica's share of the global-batch mean of a per-replica mean loss.

    Every replica holds the same number of crops, so the sum of the shares
    over replicas is the mean over the global batch.
    """
    return loss / tf.distribute.get_replica_context().num_replicas_in_sync


def global_batch_mean(values: tf.Tensor) -> tf.Tensor:
    """The mean of ``values`` over all replicas' batches (differentiable; a plain mean on one replica)."""
    context = tf.distribute.get_replica_context()
    if context.num_replicas_in_sync == 1:
        return tf.reduce_mean(values)
    total = context.all_reduce(SUM, tf.reduce_sum(values))
    return total / tf.cast(tf.size(values) * context.num_replicas_in_sync, values.dtype)


def agree_on_finite_gradients(optimizer: keras.optimizers.Optimizer, grads: list[tf.Tensor]) -> list[tf.Tensor]:
    """Make a loss-scaled optimizer see non-finite gradients on every replica if on any.

    Keras' LossScaleOptimizer decides from the first local replica's gradients
    before they are summed, so an overflow elsewhere would reach the weights
    (or, across workers, split the replicas). Unchanged otherwise.
    """
    context = tf.distribute.get_replica_context()
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer) or context.num_replicas_in_sync == 1:
        return grads
    local = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads if g is not None])
    overflows = context.all_reduce(SUM, tf.cast(tf.logical_not(local), tf.float32))
    factor = tf.where(overflows > 0, float("nan"), 1.0)
    return [None if g is None else g * tf.cast(factor, g.dtype) for g in grads]


def distributed_step(strategy: tf.distribute.Strategy,
                     compute: Callable[[tf.Tensor, tf.Tensor], tuple[Losses, Any]],
                     apply: Callable[[Any], None], after: Callable[[], None]) -> Step:
    """Compile a step from its parts.

    ``compute(lr, hr)`` runs on each replica and returns its loss shares and
    gradients; ``apply(grads)`` runs on each replica if the global losses are
    finite (the optimizers sum the gradients over replicas); ``after()`` then
    runs once, outside the replicas (the EMA update, written to every copy).
    """

    def update(grads: Any) -> tf.Tensor:
        strategy.run(apply, args=(grads,))
        after()
        return tf.constant(True)

    @tf.function(jit_compile=False, reduce_retracing=True)
    def step(lr: Any, hr: Any) -> Losses:
        shares, grads = strategy.run(compute, args=(lr, hr))
        totals = {name: strategy.reduce(SUM, share, axis=None) for name, share in shares.items()}
        only_if_finite(list(totals.values()), lambda: update(grads))
        return totals

    return step


def make_pretrain_step(generator: keras.Model, ema: keras.Model, optimizer: keras.optimizers.Optimizer,
                       pixel_kind: str, ema_decay: float, strategy: tf.distribute.Strategy | None = None,
                       balanced: bool = False) -> Step:
    """One step of L_resolution minimisation, then an EMA update.

    ``balanced``: each crop's loss counts on a log scale (:func:`~gansr.losses.balanced_pixel_loss`),
    reported as ``log_pixel``.
    """
    strategy = strategy or tf.distribute.get_strategy()
    name, pixel_loss = ("log_pixel", losses.balanced_pixel_loss) if balanced else ("pixel", losses.pixel_loss)

    def compute(lr: tf.Tensor, hr: tf.Tensor) -> tuple[Losses, list[tf.Tensor]]:
        with tf.GradientTape() as tape:
            sr = generator(lr, training=True)
            loss = replica_share(pixel_loss(sr, hr, pixel_kind))
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, generator.trainable_variables)
        return {name: loss}, agree_on_finite_gradients(optimizer, grads)

    return distributed_step(strategy, compute, gradient_update(optimizer, generator),
                            ema_update(ema, generator, optimizer, ema_decay))


def make_gan_step(generator: keras.Model, ema: keras.Model, discriminator: keras.Model,
                  g_optimizer: keras.optimizers.Optimizer, d_optimizer: keras.optimizers.Optimizer,
                  backbone: Backbone, weights: GanWeights, pixel_kind: str, gan_type: str,
                  ema_decay: float, strategy: tf.distribute.Strategy | None = None) -> Step:
    """One simultaneous G/D update on a shared forward pass, then an EMA update.

    The relativistic loss compares each logit with the mean over the global
    batch, so it too is what one device would compute on the global batch.
    """
    strategy = strategy or tf.distribute.get_strategy()

    def compute(lr: tf.Tensor, hr: tf.Tensor) -> tuple[Losses, tuple[list[tf.Tensor], list[tf.Tensor]]]:
        sr_ema = ema(lr, training=False)  # the artifact map's reference
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            sr = generator(lr, training=True)
            # One discriminator call on [real; fake] keeps spectral-norm
            # power iterations to one per step.
            logits = discriminator(tf.concat([tf.cast(hr, sr.dtype), sr], axis=0), training=True)
            real_logits, fake_logits = tf.split(logits, 2, axis=0)
            d_loss = replica_share(losses.discriminator_loss(real_logits, fake_logits, gan_type,
                                                             batch_mean=global_batch_mean))
            pixel = replica_share(losses.pixel_loss(sr, hr, pixel_kind))
            perceptual = replica_share(losses.perceptual_loss(backbone.content(sr), backbone.content(hr)))
            adversarial = replica_share(losses.generator_adversarial_loss(
                real_logits, fake_logits, gan_type, batch_mean=global_batch_mean))
            artifact = replica_share(losses.artifact_loss(sr, hr, sr_ema))
            g_loss = (weights.pixel * pixel + weights.perceptual * perceptual
                      + weights.adversarial * adversarial + weights.artifact * artifact)
            g_scaled = g_optimizer.scale_loss(g_loss)
            d_scaled = d_optimizer.scale_loss(d_loss)
        g_grads = g_tape.gradient(g_scaled, generator.trainable_variables)
        d_grads = d_tape.gradient(d_scaled, discriminator.trainable_variables)
        shares = {"g_total": g_loss, "pixel": pixel, "perceptual": perceptual,
                  "adversarial": adversarial, "artifact": artifact, "d_loss": d_loss}
        return shares, (agree_on_finite_gradients(g_optimizer, g_grads),
                        agree_on_finite_gradients(d_optimizer, d_grads))

    apply_g, apply_d = gradient_update(g_optimizer, generator), gradient_update(d_optimizer, discriminator)

    def apply(grads: tuple[list[tf.Tensor], list[tf.Tensor]]) -> None:
        apply_g(grads[0])
        apply_d(grads[1])

    return distributed_step(strategy, compute, apply, ema_update(ema, generator, g_optimizer, ema_decay))


def gradient_update(optimizer: keras.optimizers.Optimizer, model: keras.Model) -> Callable[[list[tf.Tensor]], None]:
    """The update that applies gradients to ``model``'s trainable weights."""

    def apply(grads: list[tf.Tensor]) -> None:
        optimizer.apply_gradients(zip(grads, model.trainable_variables))

    return apply


def ema_update(ema: keras.Model, generator: keras.Model, optimizer: keras.optimizers.Optimizer,
               decay: float) -> Callable[[], None]:
    """The update that moves ``ema`` towards ``generator``, with the decay warmed up by the optimizer's step."""

    def after() -> None:
        update_ema(ema, generator, ema_decay_at(optimizer.iterations, decay))

    return after
