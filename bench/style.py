"""What styling costs: the style phase's training throughput and the style branch at inference.

    python bench/style.py [--rounds 3 --steps 10] [--size 960x540] [--repeats 2]

Training, in interleaved rounds (median round reported, as in
bench/train_throughput.py): images/s of the style step (the frozen GAN
generator, the style swap, the style network, content, texture and palette
losses) next to the GAN step (generator, discriminator, pixel + perceptual
+ adversarial losses), both with the sizes, batch and precision of params.yaml.

Inference: one ``--size`` LR image (default 960×540, ×4 → 3840×2160, 4K UHD)
upscaled by the plain generator and by the style generator in a style,
each as `gansr upscale` runs it (tiles fitted to the memory budget, the overlap
each model needs), best of ``--repeats``; the ratio is the branch's cost.

Weights and the style swap's candidates are random (speed does not depend
on them) and crops are random pixels, so no pipeline output is needed.
"""

from __future__ import annotations

import argparse
import time

import _quiet  # noqa: F401  (first: quiets TensorFlow before anything loads it)
import keras
import numpy as np
import tensorflow as tf
from train_throughput import TrainPath, cpu_description

from gansr.config import load_params
from gansr.inference import Upscaler
from gansr.models.backbone import build_backbone
from gansr.models.discriminator import build_discriminator
from gansr.models.generator import build_generator
from gansr.style.losses import PALETTE_QUANTILES, StyleTargets, palette_directions
from gansr.style.network import build_styled_generator, freeze_all_but_style
from gansr.style.training import StyleWeights, make_style_step
from gansr.training.precision import apply_precision, make_optimizer
from gansr.training.steps import GanWeights, make_gan_step

STYLES = ("a", "b", "c")


def random_crops(batch: int, patch: int, scale: int):
    """Endless batches of random LR/HR crops (speed does not depend on the pixels)."""
    rng = np.random.default_rng(0)
    while True:
        hr = rng.random((batch, patch, patch, 3), np.float32)
        yield tf.constant(hr[:, ::scale, ::scale]), tf.constant(hr)


def training_paths(params, policy: str) -> list[TrainPath]:
    """The GAN and the style step at params.yaml's sizes, each warmed up."""
    train, scale, loss = params.train, params.scale, params.loss
    build = dict(scale=scale, channels=params.model.channels, blocks=params.model.blocks)
    backbone = build_backbone(loss.backbone, loss.vgg19_weights)
    generator = build_generator(**build)
    ema = build_generator(**build, name="ema")
    discriminator = build_discriminator(params.model.disc_channels)
    g_optimizer, d_optimizer = make_optimizer(1e-4, policy), make_optimizer(1e-4, policy)
    gan = make_gan_step(generator, ema, discriminator, g_optimizer, d_optimizer, backbone,
                        GanWeights.of(loss), loss.pixel, loss.gan_type, train.ema_decay)
    branch = dict(style_names=STYLES, style_channels=params.style.channels, style_blocks=params.style.blocks,
                  patches=params.style.patches, shading=params.style.shading)
    styled = build_styled_generator(**build, **branch)
    freeze_all_but_style(styled)
    styled_ema = build_styled_generator(**build, **branch, name="styled_ema")
    # Random targets: the step's cost does not depend on their values.
    widths = [f.shape[-1] for f in backbone.texture(tf.zeros((1, 32, 32, 3)))]
    textures = [tf.sort(tf.random.uniform((len(STYLES), c, PALETTE_QUANTILES)), axis=-1) for c in widths]
    directions = palette_directions()
    palettes = tf.sort(tf.random.uniform((len(STYLES), directions.shape[1], PALETTE_QUANTILES)), axis=-1)
    style = make_style_step(styled, styled_ema, make_optimizer(1e-3, policy), backbone,
                            StyleTargets(textures, palettes, directions, scale), StyleWeights.of(params.style),
                            0.999)
    paths = []
    for name, step in (("GAN step", gan), ("style step", style)):
        batches = random_crops(train.batch_size, train.patch_size, scale)
        # TrainPath waits on one loss per step; which one does not matter.
        path = TrainPath(name, policy, lambda lr, hr, step=step: next(iter(step(lr, hr).values())), batches, 0.0)
        for _ in range(3):
            path.step(*next(batches))
        paths.append(path)
    return paths


def inference_seconds(model: keras.Model, image: np.ndarray, style: int, repeats: int) -> tuple[float, str]:
    """Best wall time of upscaling ``image`` as `gansr upscale` would, and its cores (height×width)."""
    upscale = Upscaler(model, style=style)
    upscale(image[:64, :64])  # trace once: the timing is steady-state speed
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        upscale(image)
        best = min(best, time.perf_counter() - started)
    return best, "×".join(map(str, upscale.tiles(*image.shape[:2])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="steps per path per round")
    parser.add_argument("--size", default="960x540", help="LR image WIDTHxHEIGHT for inference")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    params = load_params("params.yaml")
    policy = apply_precision(params.train.precision)
    keras.utils.set_random_seed(0)
    paths = training_paths(params, policy)
    for _ in range(args.rounds):
        for path in paths:
            path.run(args.steps)
    print(cpu_description())
    print(f"training: batch {params.train.batch_size} of {params.train.patch_size}² HR crops, ×{params.scale}, "
          f"{policy}; median of {args.rounds} interleaved rounds of {args.steps} steps")
    gan_seconds = paths[0].median_seconds()
    for path in paths:
        seconds = path.median_seconds()
        print(f"  {path.name:<11} {args.steps * params.train.batch_size / seconds:>7.1f} images/s "
              f"({seconds / gan_seconds:.2f}× the GAN step's time)")

    keras.mixed_precision.set_global_policy("float32")  # `gansr upscale` runs float32 by default
    build = dict(scale=params.scale, channels=params.model.channels, blocks=params.model.blocks)
    plain = build_generator(**build)
    styled = build_styled_generator(**build, style_names=STYLES, style_channels=params.style.channels,
                                    style_blocks=params.style.blocks, patches=params.style.patches,
                                    shading=params.style.shading)
    rng = np.random.default_rng(1)
    for model in (plain, styled):  # the style network starts at zero maps; give it real work
        model.set_weights([rng.normal(0, 0.05, w.shape).astype("float32") for w in model.get_weights()])
    width, height = map(int, args.size.split("x"))
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    sr_seconds, sr_tile = inference_seconds(plain, image, 0, args.repeats)
    style_seconds, style_tile = inference_seconds(styled, image, 1, args.repeats)
    megapixels = width * height * params.scale**2 / 1e6
    print(f"inference: {width}×{height} → {width * params.scale}×{height * params.scale}, float32, "
          f"best of {args.repeats}")
    print(f"  super-resolution {sr_seconds:>6.2f} s ({megapixels / sr_seconds:.2f} MP/s, cores {sr_tile})")
    print(f"  + style branch   {style_seconds:>6.2f} s ({megapixels / style_seconds:.2f} MP/s, cores {style_tile}): "
          f"{style_seconds / sr_seconds:.2f}× the time")


if __name__ == "__main__":
    main()
