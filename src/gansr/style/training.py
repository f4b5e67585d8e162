"""The style phase (stage ``train_style``): the style branch on the frozen GAN generator, over every style.

Only the branch's network trains: the style swap holds the style images'
patches, set once, and the super-resolution layers keep the GAN weights,
so style 0 of the result is the GAN generator bit for bit. The phase runs
in the same skeleton as the others (:func:`gansr.training.phases.train`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import keras
import tensorflow as tf

from gansr import losses
from gansr.config import Params, StyleConfig
from gansr.models.backbone import Backbone, build_backbone
from gansr.models.generator import copy_shared_weights
from gansr.style.images import load_styles
from gansr.style.losses import StyleTargets, style_losses, style_targets
from gansr.style.network import build_styled_generator, freeze_all_but_style, set_style_images, sr_and_styled
from gansr.training.distribute import Distribution
from gansr.training.phases import Phase, ema_of
from gansr.training.precision import make_optimizer
from gansr.training.steps import (
    Losses,
    Step,
    agree_on_finite_gradients,
    distributed_step,
    ema_update,
    gradient_update,
    replica_share,
)


@dataclass(frozen=True)
class StyleWeights:
    """Weights of the style phase's loss terms."""

    content: float
    style: float
    palette: float

    @classmethod
    def of(cls, style: StyleConfig) -> StyleWeights:
        """The weights ``style`` (params.yaml's ``style:``) sets."""
        return cls(style.content_weight, style.style_weight, style.palette_weight)


def style_phase(params: Params, base: keras.Model | None, policy: str, distribution: Distribution) -> Phase:
    """The style branch on the GAN generator ``base``, trained jointly over the configured styles."""
    style = params.style
    styles = load_styles(style)
    names = tuple(s.name for s in styles)

    def build(name: str) -> keras.Model:
        model = build_styled_generator(params.scale, params.model.channels, params.model.blocks, names,
                                       style.channels, style.blocks, style.patches, style.shading, name=name)
        set_style_images(model, [s.image for s in styles])
        return model

    with distribution.strategy.scope():
        generator = build("generator")
        copy_shared_weights(base, generator)
        freeze_all_but_style(generator)
        ema = ema_of(generator, build)
        backbone = build_backbone(params.loss.backbone, params.loss.vgg19_weights)
        targets = style_targets(backbone, styles, params.scale)
        optimizer = make_optimizer(style.lr, policy)
        optimizer.build(generator.trainable_variables)
    step = make_style_step(generator, ema, optimizer, backbone, targets, StyleWeights.of(style),
                           params.train.ema_decay, distribution.strategy)
    # The images themselves, not only the folder's name, decide what a resumed run may continue.
    images = hashlib.sha256(b"".join(s.image.tobytes() for s in styles)).hexdigest()
    return Phase(style.steps, step, {"generator": generator, "ema": ema, "optimizer": optimizer}, ema,
                 (params.loss, style, names, images), {"backbone": backbone.kind, "styles": ",".join(names)},
                 score_val=False)


def make_style_step(generator: keras.Model, ema: keras.Model, optimizer: keras.optimizers.Optimizer,
                    backbone: Backbone, targets: StyleTargets, weights: StyleWeights, ema_decay: float,
                    strategy: tf.distribute.Strategy | None = None) -> Step:
    """One step of style training: each image in the batch gets a random style 1..N.

    L = w_content · L_content(G(x, s), G(x, 0)) + w_style · L_texture(Y(G(x, s)), Y(S_s))
        + w_palette · L_palette(G(x, s), S_s).

    Content, texture and colour each have their own term, as in style
    transfer with colour matching (Gatys et al. 2017): the content target is
    the unstyled super-resolved image's features; texture and palette are
    distances between distributions (:func:`~gansr.style.losses.style_losses`).
    The network only holds back the swapped strokes' detail and shifts their
    colour; light and shade are the composite's.
    """
    strategy = strategy or tf.distribute.get_strategy()
    num_styles = int(targets.palettes.shape[0])
    both = sr_and_styled(generator)

    def compute(lr: tf.Tensor, hr: tf.Tensor) -> tuple[Losses, list[tf.Tensor]]:
        # Drawn from the step number and the replica, not a random state: a rerun or a resumed run
        # draws the same styles at the same step.
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        seed = tf.stack([tf.cast(optimizer.iterations, tf.int32), tf.cast(replica, tf.int32)])
        style = tf.random.stateless_uniform([tf.shape(lr)[0]], seed, 1, num_styles + 1, dtype=tf.int32)
        with tf.GradientTape() as tape:
            sr, styled = both([lr, style], training=True)
            sr = tf.stop_gradient(sr)
            content = replica_share(losses.perceptual_loss(backbone.content(styled), backbone.content(sr)))
            texture, palette = (replica_share(term) for term in style_losses(backbone, styled, targets, style, seed))
            total = weights.content * content + weights.style * texture + weights.palette * palette
            scaled = optimizer.scale_loss(total)
        grads = tape.gradient(scaled, generator.trainable_variables)
        return ({"total": total, "content": content, "texture": texture, "palette": palette},
                agree_on_finite_gradients(optimizer, grads))

    return distributed_step(strategy, compute, gradient_update(optimizer, generator),
                            ema_update(ema, generator, optimizer, ema_decay))
