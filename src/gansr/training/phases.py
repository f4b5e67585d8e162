"""The three training phases, each a DVC stage and an MLflow run.

1. ``train_psnr``: PSNR-oriented pretraining with the pixel loss only.
2. ``train_gan``: adversarial fine-tuning from the pretrained EMA weights,
   with pixel + perceptual + adversarial losses.
3. ``train_style``: a style branch on top of the frozen GAN generator, with
   content, LR-luminance, texture and palette losses.

Each phase keeps its checkpoints outside DVC's outputs, in a folder keyed by
everything that determines the result (params, data, initial weights), so a
killed run resumes and a changed one starts fresh. The EMA generator is saved
as ``<out_dir>/generator.keras`` with ``training.json`` beside it.

Each phase first creates its tf.distribute strategy (``train.distribute``),
then builds every model and optimizer under it. Under several workers only the
chief writes the outputs and the MLflow run; the others train in step with it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import mlflow
import pandas as pd

from gansr import tracking
from gansr.atomic import atomic_path
from gansr.config import Params
from gansr.data.dataset import training_dataset
from gansr.data.pairs import read_manifest
from gansr.data.styles import load_styles, style_targets
from gansr.evaluation import load_pairs, score, upscale_with_each
from gansr.inference import load_generator
from gansr.layout import GENERATOR_FILE, MANIFEST_FILE, SUMMARY_FILE
from gansr.models.archive import save_generator
from gansr.models.backbone import build_backbone
from gansr.models.discriminator import build_discriminator
from gansr.models.generator import build_generator, copy_shared_weights
from gansr.models.style_branch import exemplar_size, freeze_all_but_style, set_exemplars
from gansr.training.distribute import Distribution, start_distribution
from gansr.training.loop import LoopSettings, StepFn, run_loop
from gansr.training.precision import apply_precision, float32_policy, make_optimizer
from gansr.training.steps import GanWeights, StyleWeights, make_gan_step, make_pretrain_step, make_style_step

log = logging.getLogger(__name__)

# Input pipeline i (one per worker) draws its crops from seed + i × this.
PIPELINE_SEED_STRIDE = 1_000_003
RUN_FILE = "mlflow_run.json"


def train_psnr(params: Params, pairs_dir: Path, out_dir: Path, checkpoints: Path, root: Path) -> dict[str, Any]:
    """Pretrain the generator on the pixel loss; save its EMA weights to ``out_dir``."""
    train = params.train
    distribution = start_distribution(train.distribute)
    manifest = read_manifest(pairs_dir)
    policy = apply_precision(train.precision)
    keras.utils.set_random_seed(params.seed)
    with distribution.strategy.scope():
        generator = _generator(params)
        with float32_policy():
            ema = _generator(params, name="generator_ema")
        ema.set_weights(generator.get_weights())
        warmup = max(1, train.pretrain_steps // 50)
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0, max(1, train.pretrain_steps - warmup), alpha=0.01,
            warmup_target=train.pretrain_lr, warmup_steps=warmup,
        )
        optimizer = make_optimizer(schedule, policy)
        optimizer.build(generator.trainable_variables)
    step = make_pretrain_step(generator, ema, optimizer, params.loss.pixel, train.ema_decay,
                              distribution.strategy)
    state = {"generator": generator, "ema": ema, "optimizer": optimizer}
    key = _checkpoint_key("psnr", params.seed, params.scale, params.model, train, params.loss.pixel,
                          distribution.replicas, pairs_dir / MANIFEST_FILE)
    settings = LoopSettings(train.pretrain_steps, train.checkpoint_every, train.log_every, "pretrain",
                            train.nan_policy)
    return _run_phase("psnr", params, distribution, manifest, pairs_dir, out_dir, checkpoints / f"psnr-{key}",
                      root, step, state, ema, settings, policy, extra={})


def train_gan(params: Params, pairs_dir: Path, init_dir: Path, out_dir: Path, checkpoints: Path,
              root: Path) -> dict[str, Any]:
    """Fine-tune the pretrained generator adversarially; save its EMA weights to ``out_dir``."""
    train, loss = params.train, params.loss
    distribution = start_distribution(train.distribute)
    manifest = read_manifest(pairs_dir)
    pretrained = load_generator(init_dir / GENERATOR_FILE)
    policy = apply_precision(train.precision)
    keras.utils.set_random_seed(params.seed)
    with distribution.strategy.scope():
        generator = _generator(params)
        generator.set_weights(pretrained.get_weights())
        with float32_policy():
            ema = _generator(params, name="generator_ema")
        ema.set_weights(pretrained.get_weights())
        discriminator = build_discriminator(params.model.disc_channels)
        backbone = build_backbone(loss.backbone, loss.vgg19_weights)
        g_optimizer = make_optimizer(train.gan_lr, policy, beta_1=0.9, beta_2=0.99)
        d_optimizer = make_optimizer(train.gan_lr, policy, beta_1=0.9, beta_2=0.99)
        g_optimizer.build(generator.trainable_variables)
        d_optimizer.build(discriminator.trainable_variables)
    weights = GanWeights.of(loss)
    step = make_gan_step(generator, ema, discriminator, g_optimizer, d_optimizer, backbone,
                         weights, loss.pixel, loss.gan_type, train.ema_decay, distribution.strategy)
    state = {"generator": generator, "ema": ema, "discriminator": discriminator,
             "g_optimizer": g_optimizer, "d_optimizer": d_optimizer}
    key = _checkpoint_key("gan", params.seed, params.scale, params.model, train, loss, distribution.replicas,
                          pairs_dir / MANIFEST_FILE, init_dir / GENERATOR_FILE)
    settings = LoopSettings(train.gan_steps, train.checkpoint_every, train.log_every, "gan",
                            train.nan_policy)
    return _run_phase("gan", params, distribution, manifest, pairs_dir, out_dir, checkpoints / f"gan-{key}",
                      root, step, state, ema, settings, policy, extra={"backbone": backbone.kind})


def train_style(params: Params, pairs_dir: Path, init_dir: Path, out_dir: Path, checkpoints: Path,
                root: Path) -> dict[str, Any]:
    """Train the style branch on top of the GAN generator, jointly over the styles; save to ``out_dir``.

    Only the style branch trains: the super-resolution generator is frozen,
    so style 0 of the result reproduces the GAN generator exactly.
    """
    train, style = params.train, params.style
    distribution = start_distribution(train.distribute)
    manifest = read_manifest(pairs_dir)
    base = load_generator(init_dir / GENERATOR_FILE)
    styles = load_styles(style)
    names = tuple(s.name for s in styles)
    policy = apply_precision(train.precision)
    keras.utils.set_random_seed(params.seed)
    with distribution.strategy.scope():
        generator = _generator(params, style_names=names)
        copy_shared_weights(base, generator)
        set_exemplars(generator, [s.image for s in styles])
        freeze_all_but_style(generator)
        with float32_policy():
            ema = _generator(params, name="generator_ema", style_names=names)
        ema.set_weights(generator.get_weights())
        backbone = build_backbone(params.loss.backbone, params.loss.vgg19_weights)
        targets = style_targets(backbone, styles, params.scale)
        optimizer = make_optimizer(style.lr, policy)
        optimizer.build(generator.trainable_variables)
    weights = StyleWeights.of(style)
    step = make_style_step(generator, ema, optimizer, backbone, targets, weights, params.scale,
                           train.ema_decay, distribution.strategy)
    state = {"generator": generator, "ema": ema, "optimizer": optimizer}
    key = _checkpoint_key("style", params.seed, params.scale, params.model, train, params.loss, style,
                          distribution.replicas, pairs_dir / MANIFEST_FILE, init_dir / GENERATOR_FILE)
    settings = LoopSettings(style.steps, train.checkpoint_every, train.log_every, "style",
                            train.nan_policy)
    return _run_phase("style", params, distribution, manifest, pairs_dir, out_dir, checkpoints / f"style-{key}",
                      root, step, state, ema, settings, policy,
                      extra={"backbone": backbone.kind, "styles": ",".join(names)}, score_val=False)


def _generator(params: Params, name: str = "generator", style_names: tuple[str, ...] = ()) -> keras.Model:
    """The generator ``params.model`` describes, with a style branch only if there are styles."""
    branch = {}
    if style_names:
        branch = {"style_names": style_names, "style_channels": params.style.channels,
                  "style_blocks": params.style.blocks,
                  "exemplar_size": exemplar_size(params.style.image_size, params.scale)}
    return build_generator(params.scale, params.model.channels, params.model.blocks, name=name, **branch)


def _run_phase(phase: str, params: Params, distribution: Distribution, manifest: pd.DataFrame,
               pairs_dir: Path, out_dir: Path, checkpoint_dir: Path, root: Path, step: StepFn,
               state: dict[str, Any], ema: keras.Model, settings: LoopSettings, policy: str,
               extra: dict[str, str], score_val: bool = True) -> dict[str, Any]:
    train = params.train
    spread = distribution.describe(train.batch_size)
    log.info("%s: batch %d per replica × %d replica(s) = %d crops per step", phase,
             train.batch_size, distribution.replicas, spread["global_batch_size"])
    about = {"phase": phase, "steps": settings.steps, "precision": policy, **spread, **extra}

    def batches(start: int) -> Iterator[Any]:
        # A resumed run goes on with the crops an uninterrupted run would take from step `start`,
        # so it ends with the same weights. Each step takes one batch per replica of a pipeline.
        taken = start * (distribution.replicas // distribution.workers)
        return distribution.batches(lambda pipeline: training_dataset(
            manifest, pairs_dir, params.scale, train.patch_size, train.batch_size,
            seed=params.seed + pipeline * PIPELINE_SEED_STRIDE).skip(taken))

    if not distribution.is_chief:
        final = run_loop(step, batches, state, checkpoint_dir, settings, lambda *_: None, distribution)
        log.info("%s: done on this worker; the chief writes the outputs and the MLflow run", phase)
        return {**about, "run_id": None, "final_losses": final}

    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    run_file = checkpoint_dir / RUN_FILE
    resume_id = json.loads(run_file.read_text())["run_id"] if run_file.is_file() else None
    started = time.monotonic()
    with tracking.start_run(root, params.tracking.experiment, run_name=phase,
                            resume_run_id=resume_id) as run:
        run_file.write_text(json.dumps({"run_id": run.info.run_id}))
        if run.info.run_id != resume_id:  # a new run (the recorded one may have been deleted)
            mlflow.log_params({**_flat_params(params), "train.replicas": distribution.replicas,
                               "train.workers": distribution.workers,
                               "train.global_batch_size": spread["global_batch_size"]})
            mlflow.set_tags({"gansr.phase": phase, "gansr.precision": policy,
                             "gansr.strategy": distribution.kind,
                             **{f"gansr.{k}": v for k, v in extra.items()}})
            tracking.log_training_data(manifest, pairs_dir, root)
        if extra.get("backbone") == "random":
            mlflow.set_tag("gansr.warning", "VGG19 weights unavailable: random-filter backbone used")

        def on_log(current: int, values: dict[str, float]) -> None:
            mlflow.log_metrics({f"{phase}/{k}": v for k, v in values.items()}, step=current)

        final = run_loop(step, batches, state, checkpoint_dir, settings, on_log, distribution)
        seconds = time.monotonic() - started
        # What the outputs record is determined by the inputs alone; the run id and the time are MLflow's.
        summary = {**about, "final_losses": final}
        if score_val:
            summary.update(_validate(ema, manifest, pairs_dir, params.scale, phase, settings.steps))
        mlflow.log_metric(f"{phase}/train_seconds", seconds)
        with atomic_path(out_dir) as tmp:
            tmp.mkdir()
            save_generator(ema, tmp / GENERATOR_FILE)
            (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
            tracking.tag_generator(tmp / GENERATOR_FILE)
    summary = {**summary, "run_id": run.info.run_id, "seconds_this_attempt": round(seconds, 1)}
    # The outputs are in place: the checkpoints have served their purpose.
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return summary


def _validate(ema: keras.Model, manifest: pd.DataFrame, pairs_dir: Path, scale: int, phase: str,
              step: int) -> dict[str, float]:
    """Score the EMA generator on the val split; log the figures and a sample image to MLflow."""
    if not (manifest["split"] == "val").any():
        return {}
    pairs = load_pairs(manifest, pairs_dir, "val")
    outputs, _ = upscale_with_each({phase: ema}, pairs, scale)
    scores = score(outputs, pairs, scale)[0][phase]
    mlflow.log_metrics({f"{phase}/val_{key}": value for key, value in scores.items()}, step=step)
    mlflow.log_image(outputs[phase][0], f"samples/{phase}_{pairs[0].name}.png")
    return {f"val_{key}": value for key, value in scores.items()}


def _flat_params(params: Params) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for section, value in dataclasses.asdict(params).items():
        if isinstance(value, dict):
            flat.update({f"{section}.{k}": v for k, v in value.items()})
        else:
            flat[section] = value
    return flat


def _checkpoint_key(*parts: Any) -> str:
    """A short hash of everything that determines a phase's result."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            digest.update(hashlib.sha256(part.read_bytes()).digest())
        elif dataclasses.is_dataclass(part):
            digest.update(json.dumps(dataclasses.asdict(part), sort_keys=True).encode())
        else:
            digest.update(repr(part).encode())
    return digest.hexdigest()[:12]
