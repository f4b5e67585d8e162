"""The two compiled train steps: PSNR-oriented pretraining and GAN fine-tuning.

A step whose losses are not finite changes nothing: no optimizer update, no
EMA update. The loop then stops or skips the batch (``train.nan_policy``),
and either way the weights in memory are the last good ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import tensorflow as tf

from gansr import losses
from gansr.models.backbone import Backbone
from gansr.training.ema import ema_decay_at, update_ema


@dataclass(frozen=True)
class GanWeights:
    """Weights of the generator's loss terms in the adversarial phase."""

    pixel: float
    perceptual: float
    adversarial: float


def only_if_finite(losses: list[tf.Tensor], update: Callable[[], tf.Tensor]) -> tf.Tensor:
    """Run ``update`` only when every loss is finite; return whether it ran."""
    finite = tf.reduce_all([tf.math.is_finite(loss) for loss in losses])
    return tf.cond(finite, update, lambda: tf.constant(False))


def update_if_finite(losses: list[tf.Tensor], optimizer: keras.optimizers.Optimizer,
                     grads: list[tf.Tensor], generator: keras.Model, ema: keras.Model,
                     ema_decay: float) -> None:
    """Apply ``grads`` to the generator's trainable weights, then its EMA, if the losses are finite."""

    def update() -> tf.Tensor:
        optimizer.apply_gradients(zip(grads, generator.trainable_variables))
        update_ema(ema, generator, ema_decay_at(optimizer.iterations, ema_decay))
        return tf.constant(True)

    only_if_finite(losses, update)


def make_pretrain_step(generator: keras.Model, ema: keras.Model, optimizer: keras.optimizers.Optimizer,
                       pixel_kind: str, ema_decay: float):
    """One step of L_resolution minimisation, then an EMA update."""

    @tf.function(jit_compile=False, reduce_retracing=True)
    def step(lr: tf.Tensor, hr: tf.Tensor) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as tape:
            sr = generator(lr, training=True)
            loss = losses.pixel_loss(sr, hr, pixel_kind)
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, generator.trainable_variables)
        update_if_finite([loss], optimizer, grads, generator, ema, ema_decay)
        return {"pixel": loss}

    return step


def make_gan_step(generator: keras.Model, ema: keras.Model, discriminator: keras.Model,
                  g_optimizer: keras.optimizers.Optimizer, d_optimizer: keras.optimizers.Optimizer,
                  backbone: Backbone, weights: GanWeights, pixel_kind: str, gan_type: str,
                  ema_decay: float):
    """One simultaneous G/D update on a shared forward pass, then an EMA update."""

    @tf.function(jit_compile=False, reduce_retracing=True)
    def step(lr: tf.Tensor, hr: tf.Tensor) -> dict[str, tf.Tensor]:
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            sr = generator(lr, training=True)
            # One discriminator call on [real; fake] keeps spectral-norm
            # power iterations to one per step.
            logits = discriminator(tf.concat([tf.cast(hr, sr.dtype), sr], axis=0), training=True)
            real_logits, fake_logits = tf.split(logits, 2, axis=0)
            d_loss = losses.discriminator_loss(real_logits, fake_logits, gan_type)
            pixel = losses.pixel_loss(sr, hr, pixel_kind)
            perceptual = losses.perceptual_loss(backbone(sr), backbone(hr))
            adversarial = losses.generator_adversarial_loss(real_logits, fake_logits, gan_type)
            g_loss = (weights.pixel * pixel + weights.perceptual * perceptual
                      + weights.adversarial * adversarial)
            g_scaled = g_optimizer.scale_loss(g_loss)
            d_scaled = d_optimizer.scale_loss(d_loss)
        g_grads = g_tape.gradient(g_scaled, generator.trainable_variables)
        d_grads = d_tape.gradient(d_scaled, discriminator.trainable_variables)

        def update() -> tf.Tensor:
            g_optimizer.apply_gradients(zip(g_grads, generator.trainable_variables))
            d_optimizer.apply_gradients(zip(d_grads, discriminator.trainable_variables))
            update_ema(ema, generator, ema_decay_at(g_optimizer.iterations, ema_decay))
            return tf.constant(True)

        only_if_finite([g_loss, d_loss], update)
        return {"g_total": g_loss, "pixel": pixel, "perceptual": perceptual,
                "adversarial": adversarial, "d_loss": d_loss}

    return step


def make_style_step(generator: keras.Model, ema: keras.Model, optimizer: keras.optimizers.Optimizer,
                    backbone: Backbone, style_grams: list[tf.Tensor], content_weight: float,
                    style_weight: float, ema_decay: float):
    """One step of style fine-tuning: each image in the batch gets a random style 1..N.

    L = content_weight · L_content(G(x, s), x_HR) + style_weight · L_style(G(x, s), style s),
    with ``style_grams[layer][s - 1]`` the Gram matrices of style image s.
    """
    num_styles = int(style_grams[0].shape[0])

    @tf.function(jit_compile=False, reduce_retracing=True)
    def step(lr: tf.Tensor, hr: tf.Tensor) -> dict[str, tf.Tensor]:
        style = tf.random.uniform([tf.shape(lr)[0]], 1, num_styles + 1, dtype=tf.int32)
        with tf.GradientTape() as tape:
            sr = generator([lr, style], training=True)
            features = backbone(sr)
            content = losses.perceptual_loss(features, backbone(hr))
            targets = [tf.gather(grams, style - 1) for grams in style_grams]
            style_loss = losses.gram_style_loss(features, targets)
            total = content_weight * content + style_weight * style_loss
            scaled = optimizer.scale_loss(total)
        grads = tape.gradient(scaled, generator.trainable_variables)
        update_if_finite([total], optimizer, grads, generator, ema, ema_decay)
        return {"total": total, "content": content, "style": style_loss}

    return step
