"""Exponential moving average of generator weights (the weights we evaluate).

EMA weights average out the last steps' noise, which gives a steadier and
usually better generator than the raw weights (as in ESRGAN/BasicSR).
"""

from __future__ import annotations

import keras
import tensorflow as tf


def ema_decay_at(step: tf.Tensor, decay: float) -> tf.Tensor:
    """Decay warmed up as min(decay, (1 + t) / (10 + t)) so early averages track fast."""
    t = tf.cast(step, tf.float32)
    return tf.minimum(decay, (1.0 + t) / (10.0 + t))


def update_ema(ema: keras.Model, model: keras.Model, decay: tf.Tensor) -> None:
    """ema ← decay · ema + (1 − decay) · model, for each weight that trains.

    Frozen weights are left alone, so they stay bit for bit what they were
    (averaging a weight with itself would still round it).
    """
    for average, current in zip(ema.weights, model.weights):
        if current.trainable:
            average.assign(decay * average + (1.0 - decay) * tf.cast(current, average.dtype))
