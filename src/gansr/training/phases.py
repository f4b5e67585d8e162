"""The training phases' skeleton (:func:`train`), and the super-resolution phases it runs.

1. ``psnr`` (stage ``pretrain``, :func:`psnr_phase`): PSNR-oriented
   pretraining with the pixel loss only.
2. ``gan`` (stage ``train_gan``, :func:`gan_phase`): adversarial fine-tuning
   from the pretrained EMA weights, with pixel + perceptual + adversarial +
   artifact losses.
3. ``real_psnr`` and ``real`` (stages ``finetune_real`` and ``train_real``,
   :func:`real_psnr_phase`, :func:`real_phase`): the same two phases again,
   from the ``psnr`` generator, on crops whose LR is degraded anew (blur,
   noise, JPEG, each with its own probability), for real-world photos; the
   pixel phase weighs each crop's error on a log scale, so clean crops keep
   their detail while noisy ones are cleaned.
4. ``style`` (stage ``train_style``): the style branch on the frozen GAN
   generator, described in :mod:`gansr.style.training`, so that style code
   is no part of the super-resolution phases.

A phase's builder says what it builds under the distribution strategy, which
losses its step minimises and which weights train. :func:`train` does the rest,
the same for all: the tf.distribute strategy (``train.distribute``), the
precision policy, the seed, the crops, the checkpoint, the run's record and the
outputs. The checkpoint holds every piece of resumable state (models, EMA,
optimizers, step and the id of the run that records the phase) in a folder keyed
by everything that determines the result, so a killed run resumes in the same
run and a changed one starts fresh; the random draws are stateless functions of
the seed and the step. The EMA generator is saved as
``<out_dir>/generator.keras`` with ``training.json`` beside it.

Under several workers only the chief writes the outputs and records the run;
the others train in step with it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from gansr.atomic import atomic_path
from gansr.config import Params
from gansr.data.dataset import CropDegrader, stream_buffer, training_dataset
from gansr.data.degradations import degrade_crop
from gansr.data.pairs import read_manifest
from gansr.data.shards import read_index
from gansr.evaluation import iter_pairs, score_each
from gansr.inference import load_generator
from gansr.layout import GENERATOR_FILE, MANIFEST_FILE, SUMMARY_FILE
from gansr.models.archive import save_generator
from gansr.models.backbone import build_backbone
from gansr.models.discriminator import build_discriminator
from gansr.models.generator import build_generator, freeze_subpixel_head
from gansr.training.distribute import Distribution, start_distribution
from gansr.training.loop import LoopSettings, StepFn, run_loop
from gansr.training.precision import apply_precision, float32_policy, make_optimizer
from gansr.training.run_log import RunLog
from gansr.training.steps import GanWeights, make_gan_step, make_pretrain_step

log = logging.getLogger(__name__)

# Input pipeline i (one per worker) draws its crops from seed + i × this.
PIPELINE_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class Phase:
    """What a phase trains, as its builder made it under the distribution strategy."""

    steps: int
    step: StepFn  # one update on a batch of (LR, HR) crops; returns the losses
    state: dict[str, Any]  # every model and optimizer the checkpoint keeps
    ema: keras.Model  # the generator that is saved, scored and exported
    determined_by: tuple[Any, ...]  # the params beyond seed, scale, model and train that fix the result
    tags: dict[str, str] = field(default_factory=dict)  # for the run and training.json
    score_val: bool = True  # score the val split at the end
    degrade: CropDegrader | None = None  # makes each LR crop from its HR crop (the real phases)


# A phase builder: (params, the generator it starts from or None, precision policy, distribution) -> Phase.
Builder = Callable[[Params, keras.Model | None, str, Distribution], Phase]


def psnr_phase(params: Params, _init: keras.Model | None, policy: str, distribution: Distribution) -> Phase:
    """The generator from scratch on the pixel loss."""
    return _pixel_phase(params, None, policy, distribution, params.train.pretrain_steps, params.train.pretrain_lr)


def gan_phase(params: Params, pretrained: keras.Model | None, policy: str, distribution: Distribution) -> Phase:
    """The pretrained generator against a discriminator."""
    return _adversarial_phase(params, pretrained, policy, distribution, params.train.gan_steps)


def real_psnr_phase(params: Params, pretrained: keras.Model | None, policy: str,
                    distribution: Distribution) -> Phase:
    """The PSNR-oriented generator fine-tuned on the pixel loss, on crops degraded anew (:func:`real_crops`)."""
    phase = _pixel_phase(params, pretrained, policy, distribution, params.real.pixel_steps, params.real.lr,
                         balanced=True)
    return _on_real_crops(phase, params)


def real_phase(params: Params, pretrained: keras.Model | None, policy: str, distribution: Distribution) -> Phase:
    """The ``real_psnr`` generator against a discriminator, on crops degraded anew (:func:`real_crops`)."""
    return _on_real_crops(_adversarial_phase(params, pretrained, policy, distribution, params.real.gan_steps),
                          params)


def real_crops(params: Params) -> CropDegrader:
    """The ``real`` phases' LR crops: each HR crop degraded as its own seed draws (:func:`crop_steps`)."""
    return functools.partial(degrade_crop, scale=params.scale, cfg=params.pairs, probs=params.real)


def _on_real_crops(phase: Phase, params: Params) -> Phase:
    return dataclasses.replace(phase, degrade=real_crops(params),
                               determined_by=(*phase.determined_by, params.pairs, params.real))


def _pixel_phase(params: Params, init: keras.Model | None, policy: str, distribution: Distribution, steps: int,
                 peak_lr: float, balanced: bool = False) -> Phase:
    """The generator (from ``init``'s weights, else from scratch) on the pixel loss (``balanced``: per crop, logged).

    The learning rate follows a cosine schedule after a short warm-up.
    """
    train = params.train
    with distribution.strategy.scope():
        generator = plain_generator(params)
        if init is not None:
            generator.set_weights(init.get_weights())
        ema = ema_of(generator, lambda name: plain_generator(params, name))
        warmup = max(1, steps // 50)
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0, max(1, steps - warmup), alpha=0.01, warmup_target=peak_lr, warmup_steps=warmup,
        )
        optimizer = make_optimizer(schedule, policy)
        optimizer.build(generator.trainable_variables)
    step = make_pretrain_step(generator, ema, optimizer, params.loss.pixel, train.ema_decay,
                              distribution.strategy, balanced)
    return Phase(steps, step, {"generator": generator, "ema": ema, "optimizer": optimizer}, ema,
                 (params.loss.pixel,))


def _adversarial_phase(params: Params, pretrained: keras.Model | None, policy: str, distribution: Distribution,
                       steps: int) -> Phase:
    """The pretrained generator against a discriminator; both train, each with its own optimizer.

    The generator's sub-pixel head stays as pretrained (:func:`freeze_subpixel_head`).
    """
    train, loss = params.train, params.loss
    with distribution.strategy.scope():
        generator = plain_generator(params)
        generator.set_weights(pretrained.get_weights())
        freeze_subpixel_head(generator)
        ema = ema_of(generator, lambda name: plain_generator(params, name))
        discriminator = build_discriminator(params.model.disc_channels)
        backbone = build_backbone(loss.backbone, loss.vgg19_weights)
        g_optimizer = make_optimizer(train.gan_lr, policy, beta_1=0.9, beta_2=0.99)
        d_optimizer = make_optimizer(train.gan_lr, policy, beta_1=0.9, beta_2=0.99)
        g_optimizer.build(generator.trainable_variables)
        d_optimizer.build(discriminator.trainable_variables)
    step = make_gan_step(generator, ema, discriminator, g_optimizer, d_optimizer, backbone,
                         GanWeights.of(loss), loss.pixel, loss.gan_type, train.ema_decay, distribution.strategy)
    state = {"generator": generator, "ema": ema, "discriminator": discriminator,
             "g_optimizer": g_optimizer, "d_optimizer": d_optimizer}
    return Phase(steps, step, state, ema, (loss,), {"backbone": backbone.kind})


def train(name: str, build: Builder, params: Params, pairs_dir: Path, shards_dir: Path, init_dir: Path | None,
          out_dir: Path, checkpoints: Path, run_log: RunLog) -> dict[str, Any]:
    """Train phase ``name`` as ``build`` describes it (from the generator in ``init_dir``, if any).

    Crops come from the training pairs packed in ``shards_dir``; the val split
    of ``pairs_dir``'s manifest scores the result. Saves the phase's EMA
    generator to ``out_dir``.

    ``run_log`` records the run (the pipeline's: MLflow). Returns the summary
    written to ``training.json``, plus the run id and this attempt's seconds.
    """
    train_cfg = params.train
    distribution = start_distribution(train_cfg.distribute)
    manifest = read_manifest(pairs_dir)
    init = load_generator(init_dir / GENERATOR_FILE) if init_dir is not None else None
    policy = apply_precision(train_cfg.precision)
    keras.utils.set_random_seed(params.seed)
    phase = build(params, init, policy, distribution)
    init_file = () if init_dir is None else (init_dir / GENERATOR_FILE,)
    key = _checkpoint_key(name, params.seed, params.scale, params.model, train_cfg, *phase.determined_by,
                          distribution.replicas, pairs_dir / MANIFEST_FILE, *init_file)
    checkpoint_dir = checkpoints / f"{name}-{key}"
    run_id = tf.Variable("", dtype=tf.string, trainable=False, name="run_id")
    state = {**phase.state, "run_id": run_id}
    settings = LoopSettings(phase.steps, train_cfg.checkpoint_every, train_cfg.log_every,
                            "pretrain" if name == "psnr" else name, train_cfg.nan_policy)
    spread = distribution.describe(train_cfg.batch_size)
    log.info("%s: batch %d per replica × %d replica(s) = %d crops per step", name,
             train_cfg.batch_size, distribution.replicas, spread["global_batch_size"])
    about = {"phase": name, "steps": phase.steps, "precision": policy, **spread, **phase.tags}

    shards = read_index(shards_dir)
    # Every worker reads the same way, decided on the first worker's share (the largest).
    buffer = stream_buffer(shards.for_pipeline(0, distribution.workers), train_cfg)

    def batches(start: int) -> Iterator[Any]:
        # A resumed run goes on with the crops an uninterrupted run would take from step `start`,
        # so it ends with the same weights. Each step takes one batch per replica of a pipeline.
        taken = start * (distribution.replicas // distribution.workers)

        def pipeline_batches(pipeline: int, pipelines: int) -> tf.data.Dataset:
            own = shards.for_pipeline(pipeline, pipelines)
            if pipelines > 1:
                log.info("input pipeline %d of %d: %d shard(s), %d training pairs", pipeline, pipelines,
                         len(own.shards), own.records)
            return training_dataset(own, params.scale, train_cfg.patch_size, train_cfg.batch_size,
                                    seed=params.seed + pipeline * PIPELINE_SEED_STRIDE, buffer=buffer,
                                    degrade=phase.degrade, skip_batches=taken)

        return distribution.batches(pipeline_batches)

    if not distribution.is_chief:
        final = run_loop(phase.step, batches, state, checkpoint_dir, settings, lambda *_: None, distribution)
        log.info("%s: done on this worker; the chief writes the outputs and records the run", name)
        return {**about, "run_id": None, "final_losses": final}

    started = time.monotonic()
    with run_log.run(name, _recorded_run_id(checkpoint_dir)) as (current_id, is_new):
        if is_new:
            run_log.record_inputs(
                {**_flat_params(params), "train.replicas": distribution.replicas,
                 "train.workers": distribution.workers, "train.global_batch_size": spread["global_batch_size"]},
                {"gansr.phase": name, "gansr.precision": policy, "gansr.strategy": distribution.kind,
                 "gansr.input": "memory" if buffer is None else f"stream (shuffle buffer {buffer})",
                 **{f"gansr.{k}": v for k, v in phase.tags.items()}},
                manifest, pairs_dir)
        if phase.tags.get("backbone") == "random":
            run_log.tags({"gansr.warning": "VGG19 weights unavailable: random-filter backbone used"})

        def record_run(start: int) -> None:  # the restored checkpoint may name a run that is gone
            run_id.assign(current_id)

        def on_log(current: int, values: dict[str, float]) -> None:
            run_log.metrics({f"{name}/{k}": v for k, v in values.items()}, step=current)

        final = run_loop(phase.step, batches, state, checkpoint_dir, settings, on_log, distribution,
                         on_start=record_run)
        seconds = time.monotonic() - started
        # What the outputs record is determined by the inputs alone; the run id and the time are the run's.
        summary = {**about, "final_losses": final}
        if phase.score_val:
            summary.update(_validate(phase.ema, manifest, pairs_dir, params.scale, name, phase.steps, run_log))
        run_log.metrics({f"{name}/train_seconds": seconds})
        with atomic_path(out_dir) as tmp:
            tmp.mkdir()
            save_generator(phase.ema, tmp / GENERATOR_FILE)
            (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
            run_log.generator(tmp / GENERATOR_FILE)
    summary = {**summary, "run_id": current_id, "seconds_this_attempt": round(seconds, 1)}
    # The outputs are in place: the checkpoints have served their purpose.
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return summary


def plain_generator(params: Params, name: str = "generator") -> keras.Model:
    """The super-resolution generator ``params.model`` describes."""
    return build_generator(params.scale, params.model.channels, params.model.blocks, name=name)


def ema_of(generator: keras.Model, build: Callable[[str], keras.Model]) -> keras.Model:
    """A float32 twin of ``generator``, made by ``build(name)``, holding its weights: the EMA the step updates."""
    with float32_policy():
        ema = build("generator_ema")
    ema.set_weights(generator.get_weights())
    return ema


def _recorded_run_id(checkpoint_dir: Path) -> str | None:
    """The run id in the latest checkpoint in ``checkpoint_dir``, if there is one."""
    latest = tf.train.latest_checkpoint(str(checkpoint_dir))
    if latest is None:
        return None
    run_id = tf.Variable("", dtype=tf.string, trainable=False)
    tf.train.Checkpoint(run_id=run_id).read(latest).expect_partial()
    return run_id.numpy().decode() or None


def _validate(ema: keras.Model, manifest: Any, pairs_dir: Path, scale: int, phase: str, step: int,
              run_log: RunLog) -> dict[str, float]:
    """Score the EMA generator on the val split, image by image; record the figures and a sample image."""
    if not (manifest["split"] == "val").any():
        return {}
    scores, sample = score_each(ema, iter_pairs(manifest, pairs_dir, "val"), scale, name=phase)
    run_log.metrics({f"{phase}/val_{key}": value for key, value in scores.items()}, step=step)
    first = manifest[manifest["split"] == "val"].iloc[0]["name"]
    run_log.image(sample, f"samples/{phase}_{first}.png")
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
