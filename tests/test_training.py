"""Training: input crops, the train steps, EMA, the resumable loop and both phases end to end.

Everything is real but tiny: 64×64 photos → ×4 pairs, a 4-channel 1-block
generator, 16² HR crops in batches of 2, a SQLite MLflow store in tmp_path.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from mlflow import MlflowClient
from PIL import Image

from gansr import tracking
from gansr.config import DataConfig, Params, TrainConfig, parse_params
from gansr.data.dataset import random_crop_pair, stream_buffer, training_dataset
from gansr.data.fetch import fetch_raw
from gansr.data.pairs import build_pairs, read_manifest
from gansr.data.shards import ShardIndex, read_index, write_shards
from gansr.errors import DataError, GansrError
from gansr.imageio import read_rgb
from gansr.inference import load_generator
from gansr.models.generator import SUBPIXEL_HEAD, build_generator
from gansr.style.training import style_phase
from gansr.training import loop, phases
from gansr.training.ema import ema_decay_at, update_ema
from gansr.training.loop import LoopSettings, NonFiniteLossError, run_loop
from gansr.training.precision import make_optimizer
from gansr.training.steps import make_pretrain_step

SCALE, PATCH, BATCH = 4, 16, 2
TINY = {
    "seed": 0,
    "scale": SCALE,
    "pairs": {"val_fraction": 0.0, "test_fraction": 0.25, "min_hr_size": 16},
    "model": {"channels": 4, "blocks": 1, "disc_channels": 4},
    "train": {"patch_size": PATCH, "batch_size": BATCH, "pretrain_steps": 6, "gan_steps": 3,
              "checkpoint_every": 2, "log_every": 2, "precision": "float32", "distribute": "none"},
    "loss": {"backbone": "random"},
    "style": {"image_size": 32, "patches": 64, "steps": 12, "lr": 0.003},
    "tracking": {"experiment": "gansr-test"},
}
PSNR_LOSSES = {"pixel"}
GAN_LOSSES = {"g_total", "pixel", "perceptual", "adversarial", "d_loss", "artifact"}


def tiny_params(**train: Any) -> Params:
    return parse_params({**TINY, "train": {**TINY["train"], **train}})


def tiny_generator(name: str = "generator") -> keras.Model:
    return build_generator(SCALE, channels=4, blocks=1, name=name)


def train(phase: str, params: Params, pairs_dir: Path, init_dir: Path | None, out_dir: Path, checkpoints: Path,
          root: Path) -> dict[str, Any]:
    """One training phase, recorded in the MLflow store of the repository at ``root`` as its stage does.

    It reads the shards beside ``pairs_dir`` (:func:`pairs_dir` packs them).
    """
    builders = {"psnr": phases.psnr_phase, "gan": phases.gan_phase, "real_psnr": phases.real_psnr_phase,
                "real": phases.real_phase, "style": style_phase}
    return phases.train(phase, builders[phase], params, pairs_dir, shards_beside(pairs_dir), init_dir, out_dir,
                        checkpoints, tracking.MlflowRunLog(root, params.tracking.experiment))


def shards_beside(pairs_dir: Path) -> Path:
    return pairs_dir.parent / "shards"


def recorded_run_id(checkpoints: Path) -> str:
    """The run id in the checkpoint of the one killed phase under ``checkpoints``."""
    (kept,) = checkpoints.iterdir()
    run_id = tf.Variable("", dtype=tf.string)
    tf.train.Checkpoint(run_id=run_id).read(tf.train.latest_checkpoint(str(kept))).expect_partial()
    return run_id.numpy().decode()


def dihedral(image: np.ndarray) -> Iterator[tuple[tuple[bool, int], np.ndarray]]:
    """The 8 flips/rotations the crop sampler can apply, each with its key."""
    for flip, turns in itertools.product((False, True), range(4)):
        yield (flip, turns), np.rot90(image[:, ::-1] if flip else image, turns)


def to_u8(image: tf.Tensor | np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(image) * 255).astype(np.uint8)


@pytest.fixture(autouse=True)
def float32_afterwards() -> Iterator[None]:
    yield
    keras.mixed_precision.set_global_policy("float32")  # the phases set it globally


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four smooth random 64×64 photos through the real download, pairs and shards stages: 3 train, 1 test."""
    root = tmp_path_factory.mktemp("data")
    photos = root / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((64, 64), Image.Resampling.BICUBIC).save(photos / f"photo{i}.png")
    params = tiny_params()
    fetch_raw(DataConfig(source="folder", folder=str(photos)), root / "raw")
    manifest = build_pairs(root / "raw", root / "pairs", SCALE, params.seed, params.pairs)
    assert manifest["split"].value_counts().to_dict() == {"train": 3, "test": 1}
    write_shards(manifest, root / "pairs", shards_beside(root / "pairs"), SCALE, params.shards.count)
    return root / "pairs"


@pytest.fixture(scope="module")
def shards(pairs_dir: Path) -> ShardIndex:
    return read_index(shards_beside(pairs_dir))


@pytest.fixture(scope="module")
def fixed_batch(shards: ShardIndex) -> tuple[tf.Tensor, tf.Tensor]:
    return next(iter(training_dataset(shards, SCALE, PATCH, BATCH, seed=0)))


@pytest.fixture(scope="module")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        yield uri


@pytest.fixture(scope="module")
def psnr_run(pairs_dir: Path, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One complete pretraining phase, shared by the tests that read its outputs."""
    root = tmp_path_factory.mktemp("psnr")
    summary = train("psnr", tiny_params(), pairs_dir, None, root / "models" / "psnr", root / "checkpoints", root)
    keras.mixed_precision.set_global_policy("float32")
    return {"summary": summary, "out": root / "models" / "psnr", "checkpoints": root / "checkpoints",
            "root": root}


# --- input pipeline -------------------------------------------------------------------------


def test_training_batches_are_float_crops_in_unit_range(shards: ShardIndex) -> None:
    for lr, hr in training_dataset(shards, SCALE, PATCH, BATCH, seed=0).take(3):
        assert lr.shape == (BATCH, PATCH // SCALE, PATCH // SCALE, 3) and lr.dtype == tf.float32
        assert hr.shape == (BATCH, PATCH, PATCH, 3) and hr.dtype == tf.float32
        for image in (lr, hr):
            assert 0.0 <= float(tf.reduce_min(image)) and float(tf.reduce_max(image)) <= 1.0


def test_lr_crop_is_the_counterpart_of_the_hr_crop(pairs_dir: Path, shards: ShardIndex) -> None:
    manifest = read_manifest(pairs_dir)
    train = manifest[manifest["split"] == "train"]
    images = [(read_rgb(pairs_dir / row.hr_path)[0], read_rgb(pairs_dir / row.lr_path)[0])
              for row in train.itertuples()]
    lr_patch = PATCH // SCALE
    for lr_batch, hr_batch in training_dataset(shards, SCALE, PATCH, BATCH, seed=3).take(4):
        for lr_crop, hr_crop in zip(to_u8(lr_batch), to_u8(hr_batch)):
            # Find where (and how flipped/rotated) the HR crop was cut from its HR image...
            found = [
                (lr_image, top, left, key)
                for hr_image, lr_image in images
                for top in range(lr_image.shape[0] - lr_patch + 1)
                for left in range(lr_image.shape[1] - lr_patch + 1)
                for key, window in dihedral(hr_image[top * SCALE:(top + lr_patch) * SCALE,
                                                     left * SCALE:(left + lr_patch) * SCALE])
                if np.array_equal(window, hr_crop)
            ]
            assert found, "HR crop is not an aligned window of any training image"
            # ...then the LR crop is the same LR window under the same flip/rotation.
            for lr_image, top, left, key in found:
                expected = dict(dihedral(lr_image[top:top + lr_patch, left:left + lr_patch]))[key]
                np.testing.assert_array_equal(lr_crop, expected)
            # And it looks like the bicubic-downscaled HR crop (crop borders differ slightly).
            downscaled = np.asarray(Image.fromarray(hr_crop).resize((lr_patch, lr_patch),
                                                                   Image.Resampling.BICUBIC), float)
            error = np.abs(downscaled - lr_crop)
            assert error.mean() < 4 and error.max() <= 12


def test_crops_take_each_of_the_8_flips_and_rotations_equally_often() -> None:
    lr = tf.constant(np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3))
    hr = tf.constant(np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3))
    orientations = dict(dihedral(lr.numpy()))
    hr_orientations = dict(dihedral(hr.numpy()))
    counts = dict.fromkeys(orientations, 0)
    crop = tf.function(lambda seed: random_crop_pair(lr, hr, seed, 4, 4))
    for i in range(800):
        lr_crop, hr_crop = (x.numpy() for x in crop(tf.constant([i, 0])))
        key = next(k for k, window in orientations.items() if np.array_equal(window, lr_crop))
        np.testing.assert_array_equal(hr_crop, hr_orientations[key])
        counts[key] += 1
    assert min(counts.values()) > 60 and max(counts.values()) < 140  # 100 expected each


def test_crops_are_reproducible_per_seed(shards: ShardIndex) -> None:
    def first(seed: int) -> np.ndarray:
        return next(iter(training_dataset(shards, SCALE, PATCH, BATCH, seed=seed)))[1].numpy()

    np.testing.assert_array_equal(first(5), first(5))
    assert not np.array_equal(first(5), first(6))  # a resumed run (seed + step) draws fresh crops


def as_arrays(dataset: tf.data.Dataset, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(to_u8(lr), to_u8(hr)) for lr, hr in dataset.take(count)]


def test_streaming_gives_the_cached_batches_when_its_buffer_holds_a_pass(shards: ShardIndex) -> None:
    # Three pairs of 64² at PATCH 16: 4 visits each, so a pass is 12 visits.
    cached = as_arrays(training_dataset(shards, SCALE, PATCH, BATCH, seed=4), 12)
    streamed = as_arrays(training_dataset(shards, SCALE, PATCH, BATCH, seed=4, buffer=12), 12)
    for (lr, hr), (lr_streamed, hr_streamed) in zip(cached, streamed, strict=True):
        np.testing.assert_array_equal(lr_streamed, lr)
        np.testing.assert_array_equal(hr_streamed, hr)
    # A buffer smaller than a pass mixes fewer visits: other batches, the same on every run.
    small = as_arrays(training_dataset(shards, SCALE, PATCH, BATCH, seed=4, buffer=2), 12)
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(cached, small))
    for (lr, hr), (lr_again, hr_again) in zip(small, as_arrays(
            training_dataset(shards, SCALE, PATCH, BATCH, seed=4, buffer=2), 12), strict=True):
        np.testing.assert_array_equal(lr_again, lr)
        np.testing.assert_array_equal(hr_again, hr)


@pytest.mark.parametrize("buffer", [None, 2])
def test_skipped_batches_are_the_ones_an_unbroken_run_took(shards: ShardIndex, buffer: int | None) -> None:
    unbroken = as_arrays(training_dataset(shards, SCALE, PATCH, BATCH, seed=4, buffer=buffer), 9)
    resumed = as_arrays(training_dataset(shards, SCALE, PATCH, BATCH, seed=4, buffer=buffer, skip_batches=5), 4)
    for (lr, hr), (lr_resumed, hr_resumed) in zip(unbroken[5:], resumed, strict=True):
        np.testing.assert_array_equal(lr_resumed, lr)
        np.testing.assert_array_equal(hr_resumed, hr)


def test_auto_caches_pairs_that_fit_and_streams_the_rest(shards: ShardIndex,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    many = ShardIndex(shards.folder, shards.shards * 100, shards.scale)
    assert shards.decoded_bytes < 2**20 < many.decoded_bytes < 5 * 2**20  # 3 pairs: 0.04 MB; 300: 4 MB
    with caplog.at_level(logging.INFO, logger="gansr"):
        assert stream_buffer(shards, TrainConfig(memory_limit_mb=1)) is None
        assert "3 training pairs, 0 MB decoded: cached in memory (train.input auto" in caplog.text
        assert stream_buffer(many, TrainConfig(memory_limit_mb=1, shuffle_buffer=64)) == 64
        assert ("300 training pairs, 4 MB decoded: streamed from 300 shard(s) through a shuffle buffer of 64 "
                "crops (train.input auto, train.memory_limit_mb 1)") in caplog.text
        assert stream_buffer(many, TrainConfig(memory_limit_mb=5)) is None
        # Either way can be asked for whatever the size.
        assert stream_buffer(shards, TrainConfig(input="stream", shuffle_buffer=64)) == 64
        assert stream_buffer(many, TrainConfig(input="memory", memory_limit_mb=1)) is None
    assert "pairs.tile_size" not in caplog.text  # 4 crops per 64² pair at PATCH 16: no need for tiles


def test_streaming_whole_large_images_suggests_tiles(shards: ShardIndex, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gansr"):
        stream_buffer(shards, TrainConfig(input="stream", patch_size=16))  # 4 crops per 64² pair: fine
        assert not caplog.records
        stream_buffer(shards, TrainConfig(input="stream", patch_size=8))  # 16 crops per pair
    assert "average 16 crops each" in caplog.text and "set pairs.tile_size" in caplog.text


def test_real_crops_are_made_from_the_hr_crop_and_reproducible(shards: ShardIndex) -> None:
    params = tiny_params()

    def batches(seed: int, degrade: Any, count: int = 4) -> list[tuple[np.ndarray, np.ndarray]]:
        dataset = training_dataset(shards, SCALE, PATCH, BATCH, seed=seed, degrade=degrade)
        return [(to_u8(lr), to_u8(hr)) for lr, hr in dataset.take(count)]

    plain, real = batches(5, None), batches(5, phases.real_crops(params))
    again = batches(5, phases.real_crops(params))
    for (plain_lr, plain_hr), (real_lr, real_hr), (again_lr, _) in zip(plain, real, again):
        np.testing.assert_array_equal(real_hr, plain_hr)  # the same crops ...
        np.testing.assert_array_equal(real_lr, again_lr)  # ... degraded the same way on every run
        assert real_lr.shape == plain_lr.shape
    # Some crops are blurred, noised or compressed, so their LR differs from the pair's.
    differences = [np.abs(r[0].astype(int) - p[0]).mean() for p, r in zip(plain, real)]
    assert max(differences) > 2
    # With every step switched off, each LR is the bicubic downscale of its HR crop, as the pair's LR is.
    clean = parse_params({**TINY, "real": {"blur_prob": 0.0, "noise_prob": 0.0, "jpeg_prob": 0.0}})
    for (lr, hr), _ in zip(batches(5, phases.real_crops(clean)), plain):
        for lr_crop, hr_crop in zip(lr, hr):
            downscaled = np.asarray(Image.fromarray(hr_crop).resize(lr_crop.shape[1::-1],
                                                                   Image.Resampling.BICUBIC), int)
            assert np.abs(downscaled - lr_crop).max() <= 1


# --- steps and EMA --------------------------------------------------------------------------


def test_ema_decay_warms_up_to_the_configured_decay() -> None:
    assert float(ema_decay_at(tf.constant(0), 0.999)) == pytest.approx(0.1)
    assert float(ema_decay_at(tf.constant(90, tf.int64), 0.999)) == pytest.approx(0.91)
    assert float(ema_decay_at(tf.constant(10**6), 0.999)) == pytest.approx(0.999)
    assert float(ema_decay_at(tf.constant(10**6), 0.0)) == 0.0  # decay 0: EMA = latest weights


def test_update_ema_blends_each_weight() -> None:
    model, ema = tiny_generator(), tiny_generator("ema")
    model.set_weights([np.ones(w.shape, np.float32) for w in model.get_weights()])
    ema.set_weights([np.zeros(w.shape, np.float32) for w in ema.get_weights()])
    update_ema(ema, model, tf.constant(0.9))
    for weight in ema.get_weights():
        np.testing.assert_allclose(weight, 0.1, rtol=1e-6)
    assert all((w == 1).all() for w in model.get_weights())  # the model itself is untouched


def test_update_ema_leaves_frozen_weights_bit_for_bit() -> None:
    model, ema = tiny_generator(), tiny_generator("ema")
    model.set_weights([np.full(w.shape, 0.3, np.float32) for w in model.get_weights()])
    ema.set_weights(model.get_weights())
    model.get_layer(SUBPIXEL_HEAD).trainable = False
    model.get_layer("head").set_weights([np.ones(w.shape, np.float32) for w in model.get_layer("head").get_weights()])
    update_ema(ema, model, tf.constant(0.999))
    for weight in ema.get_layer(SUBPIXEL_HEAD).get_weights():
        assert (weight == np.float32(0.3)).all()  # frozen: not even rounded
    assert all((w > 0.3).all() for w in ema.get_layer("head").get_weights())  # still training: averaged in


def test_pretrain_step_lowers_the_pixel_loss_and_ema_follows(fixed_batch: tuple[tf.Tensor, tf.Tensor]) -> None:
    keras.utils.set_random_seed(0)
    generator, ema = tiny_generator(), tiny_generator("ema")
    ema.set_weights(generator.get_weights())
    initial = generator.get_weights()
    optimizer = make_optimizer(1e-2, "float32")
    step = make_pretrain_step(generator, ema, optimizer, "l1", ema_decay=0.999)
    losses = [float(step(*fixed_batch)["pixel"]) for _ in range(30)]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.6 * losses[0]
    assert int(optimizer.iterations) == 30

    def distance(a: list[np.ndarray], b: list[np.ndarray]) -> float:
        return math.sqrt(sum(float(np.sum((x - y) ** 2)) for x, y in zip(a, b)))

    trained, averaged = generator.get_weights(), ema.get_weights()
    assert distance(averaged, initial) > 0  # the EMA moved...
    assert distance(averaged, trained) < distance(initial, trained)  # ...toward the trained weights
    assert distance(averaged, trained) > 0  # but is an average, not a copy


def test_pretrain_step_under_bfloat16_keeps_a_float32_ema(fixed_batch: tuple[tf.Tensor, tf.Tensor]) -> None:
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    generator = tiny_generator()
    keras.mixed_precision.set_global_policy("float32")
    ema = tiny_generator("ema")
    ema.set_weights(generator.get_weights())
    step = make_pretrain_step(generator, ema, make_optimizer(1e-3, "mixed_bfloat16"), "l1", 0.999)
    assert math.isfinite(float(step(*fixed_batch)["pixel"]))
    assert all(w.dtype == "float32" for w in ema.weights)
    assert ema(fixed_batch[0]).dtype == "float32"


# --- the loop: resume and guard ------------------------------------------------------------


class Recorder:
    """A step function wrapper that counts calls and can fail at a given step."""

    def __init__(self, step_fn, first_step: int = 1, interrupt_at: int | None = None,
                 losses_at: dict[int, dict[str, float]] | None = None, before_first=None) -> None:
        self.step_fn, self.next_step = step_fn, first_step
        self.interrupt_at, self.losses_at, self.before_first = interrupt_at, losses_at or {}, before_first
        self.steps: list[int] = []

    def __call__(self, lr: tf.Tensor, hr: tf.Tensor) -> dict[str, Any]:
        step, self.next_step = self.next_step, self.next_step + 1
        if not self.steps and self.before_first:
            self.before_first()
        if step == self.interrupt_at:
            raise KeyboardInterrupt
        self.steps.append(step)
        out = self.step_fn(lr, hr)
        return self.losses_at.get(step, out)


def counter_state() -> tuple[dict[str, tf.Variable], Any]:
    """Trackable state a fake step advances: enough to see what a checkpoint held."""
    total = tf.Variable(0.0)

    def step_fn(lr: tf.Tensor, hr: tf.Tensor) -> dict[str, tf.Tensor]:
        total.assign_add(1.0)
        return {"pixel": tf.constant(0.5), "d_loss": tf.constant(1.0)}

    return {"total": total}, step_fn


def settings(steps: int, checkpoint_every: int = 3, log_every: int = 1,
             nan_policy: str = "stop") -> LoopSettings:
    return LoopSettings(steps=steps, checkpoint_every=checkpoint_every, log_every=log_every,
                        description="test", nan_policy=nan_policy)


def test_an_interrupted_run_resumes_from_its_last_checkpoint(fixed_batch, tmp_path: Path) -> None:
    def fresh() -> dict[str, Any]:
        generator, ema = tiny_generator(), tiny_generator("ema")
        ema.set_weights(generator.get_weights())
        optimizer = make_optimizer(1e-2, "float32")
        optimizer.build(generator.trainable_variables)
        return {"generator": generator, "ema": ema, "optimizer": optimizer}

    def weights(state: dict[str, Any]) -> list[np.ndarray]:
        return state["generator"].get_weights() + state["ema"].get_weights()

    starts: list[int] = []

    def batches(start: int) -> Iterator[tuple[tf.Tensor, tf.Tensor]]:
        starts.append(start)
        return itertools.repeat(fixed_batch)

    def pretrain_step(state: dict[str, Any]):
        return make_pretrain_step(state["generator"], state["ema"], state["optimizer"], "l1", 0.9)

    first, saved = fresh(), {}
    first_step = Recorder(pretrain_step(first), interrupt_at=8)

    def snapshot(step: int, losses: dict[str, float]) -> None:
        saved[step] = weights(first)

    with pytest.raises(KeyboardInterrupt):
        run_loop(first_step, batches, first, tmp_path, settings(10), snapshot)
    assert first_step.steps == [1, 2, 3, 4, 5, 6, 7]
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-6")

    second = fresh()
    assert not all(np.array_equal(a, b) for a, b in zip(weights(second), saved[6]))

    def restored_as_saved() -> None:
        for restored, expected in zip(weights(second), saved[6]):
            np.testing.assert_array_equal(restored, expected)
        assert int(second["optimizer"].iterations) == 6

    second_step = Recorder(pretrain_step(second), first_step=7, before_first=restored_as_saved)
    logged: list[int] = []
    losses = run_loop(second_step, batches, second, tmp_path, settings(10), lambda s, _: logged.append(s))
    assert starts == [0, 6]
    assert second_step.steps == [7, 8, 9, 10]  # steps 7 and 8 are redone, nothing else
    assert logged == [7, 8, 9, 10]
    assert int(second["optimizer"].iterations) == 10
    assert set(losses) == PSNR_LOSSES and math.isfinite(losses["pixel"])


def test_a_float16_run_resumes_with_its_loss_scale(fixed_batch, tmp_path: Path) -> None:
    def fresh() -> dict[str, Any]:
        keras.mixed_precision.set_global_policy("mixed_float16")
        generator = tiny_generator()
        keras.mixed_precision.set_global_policy("float32")
        optimizer = make_optimizer(1e-3, "mixed_float16")
        optimizer.build(generator.trainable_variables)
        return {"generator": generator, "ema": tiny_generator("ema"), "optimizer": optimizer}

    first = fresh()
    step = make_pretrain_step(first["generator"], first["ema"], first["optimizer"], "l1", 0.9)
    run_loop(step, lambda start: itertools.repeat(fixed_batch), first, tmp_path, settings(2, checkpoint_every=2),
             lambda *_: None)
    second = fresh()
    never = Recorder(step)
    run_loop(never, lambda start: itertools.repeat(fixed_batch), second, tmp_path, settings(2, checkpoint_every=2),
             lambda *_: None)
    assert never.steps == []  # already at its final step
    assert isinstance(second["optimizer"], keras.optimizers.LossScaleOptimizer)
    assert int(second["optimizer"].iterations) == 2
    assert float(second["optimizer"].dynamic_scale) == float(first["optimizer"].dynamic_scale)
    for restored, saved in zip(second["generator"].get_weights(), first["generator"].get_weights()):
        np.testing.assert_array_equal(restored, saved)


def test_raising_the_step_count_continues_a_finished_run(tmp_path: Path) -> None:
    state, step_fn = counter_state()
    run_loop(Recorder(step_fn), lambda start: itertools.repeat((None, None)), state, tmp_path,
             settings(4, checkpoint_every=2), lambda *_: None)
    state, step_fn = counter_state()
    longer = Recorder(step_fn, first_step=5)
    losses = run_loop(longer, lambda start: itertools.repeat((None, None)), state, tmp_path,
                      settings(7, checkpoint_every=2), lambda *_: None)
    assert longer.steps == [5, 6, 7]
    assert float(state["total"].numpy()) == 7.0  # 4 restored + 3 new
    assert losses == {"pixel": 0.5, "d_loss": 1.0}


def test_logging_and_checkpoints_follow_their_intervals(tmp_path: Path) -> None:
    state, step_fn = counter_state()
    logged: list[tuple[int, dict[str, float]]] = []
    run_loop(step_fn, lambda start: itertools.repeat((None, None)), state, tmp_path,
             settings(7, checkpoint_every=2, log_every=3), lambda s, v: logged.append((s, v)))
    assert [s for s, _ in logged] == [3, 6, 7]  # every log_every, and the last step
    assert logged[0][1] == {"pixel": 0.5, "d_loss": 1.0}
    kept = sorted(p.name for p in tmp_path.glob("ckpt-*.index"))
    assert kept == ["ckpt-4.index", "ckpt-6.index"]  # the last two are kept


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path: Path,
                                                                             bad: float) -> None:
    state, step_fn = counter_state()
    failing = Recorder(step_fn, losses_at={5: {"pixel": 0.25, "d_loss": bad}})
    with pytest.raises(NonFiniteLossError) as error:
        run_loop(failing, lambda start: itertools.repeat((None, None)), state, tmp_path,
                 settings(10, checkpoint_every=2), lambda *_: None)
    message = str(error.value)
    assert "step 5" in message and "pixel=0.25" in message and f"d_loss={bad}" in message
    assert "ckpt-4" in message
    assert isinstance(error.value, GansrError)  # reported as one line by the stage entry points
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-4")
    # The checkpoint on disk is the state after step 4, not the poisoned one.
    restored = tf.Variable(0.0)
    tf.train.Checkpoint(total=restored).restore(tf.train.latest_checkpoint(str(tmp_path))).expect_partial()
    assert float(restored.numpy()) == 4.0


def test_skip_policy_steps_over_a_bad_batch_but_stops_a_divergence(tmp_path: Path, caplog) -> None:
    state, step_fn = counter_state()
    one_bad = Recorder(step_fn, losses_at={3: {"pixel": math.nan, "d_loss": 1.0}})
    run_loop(one_bad, lambda start: itertools.repeat((None, None)), state, tmp_path / "one",
             settings(6, nan_policy="skip"), lambda *_: None)
    assert one_bad.steps == [1, 2, 3, 4, 5, 6]
    assert "step 3" in caplog.text and "skipped" in caplog.text
    state, step_fn = counter_state()
    diverged = Recorder(step_fn, losses_at={s: {"pixel": math.nan, "d_loss": 1.0} for s in range(2, 30)})
    with pytest.raises(NonFiniteLossError, match="step 12"):
        run_loop(diverged, lambda start: itertools.repeat((None, None)), state, tmp_path / "many",
                 settings(40, nan_policy="skip"), lambda *_: None)


def test_a_non_finite_step_leaves_weights_and_ema_untouched(fixed_batch) -> None:
    generator, ema = tiny_generator(), tiny_generator("ema")
    optimizer = make_optimizer(1e-2, "float32")
    optimizer.build(generator.trainable_variables)
    step = make_pretrain_step(generator, ema, optimizer, "l1", 0.9)
    lr, hr = fixed_batch
    before = [w.copy() for w in generator.get_weights()], [w.copy() for w in ema.get_weights()]
    losses = step(lr, hr * np.nan)
    assert not math.isfinite(float(losses["pixel"]))
    for now, then in zip(generator.get_weights() + ema.get_weights(), before[0] + before[1]):
        np.testing.assert_array_equal(now, then)
    assert int(optimizer.iterations) == 0
    step(lr, hr)
    assert int(optimizer.iterations) == 1  # a good batch still trains


# --- the phases end to end ------------------------------------------------------------------


@pytest.mark.slow
def test_train_psnr_writes_the_generator_and_its_summary(psnr_run: dict[str, Any], mlflow_uri: str) -> None:
    out, summary = psnr_run["out"], psnr_run["summary"]
    assert sorted(p.name for p in out.iterdir()) == ["generator.keras", "training.json"]
    written = json.loads((out / "training.json").read_text())
    # The file records what the inputs determine; the run id and the time are in the returned summary only.
    assert {**written, "run_id": summary["run_id"], "seconds_this_attempt": summary["seconds_this_attempt"]} == summary
    assert written["phase"] == "psnr" and written["steps"] == 6 and written["precision"] == "float32"
    assert written["strategy"] == "none" and written["replicas"] == 1 and written["workers"] == 1
    assert written["batch_size_per_replica"] == written["global_batch_size"] == BATCH
    assert set(written["final_losses"]) == PSNR_LOSSES and math.isfinite(written["final_losses"]["pixel"])
    generator = load_generator(out / "generator.keras")
    assert generator.name == "generator_ema"  # the EMA weights are what gets saved
    assert generator(np.zeros((1, 5, 6, 3), np.float32)).shape == (1, 20, 24, 3)
    assert all(w.dtype == "float32" for w in generator.weights)


@pytest.mark.slow
def test_train_psnr_logs_its_run_to_mlflow(psnr_run: dict[str, Any], mlflow_uri: str) -> None:
    client = MlflowClient(tracking_uri=mlflow_uri)
    run = client.get_run(psnr_run["summary"]["run_id"])
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "gansr-test"
    assert run.data.params["train.patch_size"] == str(PATCH) and run.data.params["model.channels"] == "4"
    assert run.data.tags["gansr.phase"] == "psnr" and run.data.tags["gansr.precision"] == "float32"
    assert run.data.tags["gansr.strategy"] == "none" and run.data.tags["gansr.input"] == "memory"
    assert run.data.params["train.replicas"] == "1" and run.data.params["train.workers"] == "1"
    assert run.data.params["train.global_batch_size"] == str(BATCH)
    history = client.get_metric_history(run.info.run_id, "psnr/pixel")
    assert sorted(m.step for m in history) == [2, 4, 6]
    assert run.data.metrics["psnr/pixel"] == pytest.approx(psnr_run["summary"]["final_losses"]["pixel"])
    assert run.data.metrics["psnr/train_seconds"] > 0
    # The run names the file it wrote by its MD5, which is how evaluate and export find the run.
    generator = (psnr_run["out"] / "generator.keras").read_bytes()
    assert run.data.tags[tracking.GENERATOR_TAG] == hashlib.md5(generator).hexdigest()
    (data,) = run.inputs.dataset_inputs  # the manifest it trained on
    assert data.dataset.name and data.dataset.digest


@pytest.mark.slow
def test_train_psnr_removes_its_checkpoints_once_done(psnr_run: dict[str, Any]) -> None:
    assert list(psnr_run["checkpoints"].iterdir()) == []


def interrupting_run_loop(monkeypatch: pytest.MonkeyPatch, at: int) -> None:
    """Make the phases' loop behave as if Ctrl-C were pressed just before step ``at``."""
    real = loop.run_loop

    def run_loop_until(step_fn, *args, **kwargs):
        return real(Recorder(step_fn, interrupt_at=at), *args, **kwargs)

    monkeypatch.setattr(phases, "run_loop", run_loop_until)


@pytest.mark.slow
def test_a_killed_pretraining_resumes_in_the_same_mlflow_run(
        pairs_dir: Path, mlflow_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params, out, checkpoints = tiny_params(), tmp_path / "psnr", tmp_path / "checkpoints"
    with monkeypatch.context() as patched:
        interrupting_run_loop(patched, at=5)
        with pytest.raises(KeyboardInterrupt):
            train("psnr", params, pairs_dir, None, out, checkpoints, tmp_path)
    assert not out.exists()
    first_id = recorded_run_id(checkpoints)  # the checkpoint holds the run id with the weights
    assert MlflowClient(tracking_uri=mlflow_uri).get_run(first_id).info.status == "FAILED"

    summary = train("psnr", params, pairs_dir, None, out, checkpoints, tmp_path)
    assert summary["run_id"] == first_id
    client = MlflowClient(tracking_uri=mlflow_uri)
    assert client.get_run(first_id).info.status == "FINISHED"
    # Steps 2 and 4 were logged before the kill, 6 after: each once.
    assert sorted(m.step for m in client.get_metric_history(first_id, "psnr/pixel")) == [2, 4, 6]
    assert (out / "generator.keras").is_file()
    assert list(checkpoints.iterdir()) == []


@pytest.mark.slow
def test_a_restart_whose_old_run_was_deleted_records_a_new_run_in_the_checkpoint(
        pairs_dir: Path, mlflow_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params, out, checkpoints = tiny_params(), tmp_path / "psnr", tmp_path / "checkpoints"
    client = MlflowClient(tracking_uri=mlflow_uri)
    with monkeypatch.context() as patched:
        interrupting_run_loop(patched, at=3)  # each attempt is killed at its third step
        with pytest.raises(KeyboardInterrupt):
            train("psnr", params, pairs_dir, None, out, checkpoints, tmp_path)  # checkpoint at step 2
        deleted = recorded_run_id(checkpoints)
        client.delete_run(deleted)  # tidied up in the UI
        with pytest.raises(KeyboardInterrupt):
            train("psnr", params, pairs_dir, None, out, checkpoints, tmp_path)  # from step 2; checkpoint at 4
    new = recorded_run_id(checkpoints)
    assert new != deleted
    run = client.get_run(new)
    assert run.data.tags.get("gansr.phase") == "psnr"
    assert run.data.params.get("train.patch_size") == str(PATCH)
    assert train("psnr", params, pairs_dir, None, out, checkpoints, tmp_path)["run_id"] == new


def test_pretraining_without_pairs_is_a_data_error(tmp_path: Path, mlflow_uri: str) -> None:
    (tmp_path / "pairs").mkdir()
    with pytest.raises(DataError, match="manifest"):
        train("psnr", tiny_params(), tmp_path / "pairs", None, tmp_path / "out", tmp_path / "ckpt", tmp_path)


@pytest.mark.slow
def test_a_single_pretraining_step_is_allowed(pairs_dir: Path, mlflow_uri: str, tmp_path: Path) -> None:
    summary = train("psnr", tiny_params(pretrain_steps=1), pairs_dir, None, tmp_path / "psnr",
                                tmp_path / "checkpoints", tmp_path)
    assert summary["steps"] == 1


@pytest.mark.slow
def test_a_streamed_phase_trains_the_cached_phases_weights(psnr_run: dict[str, Any], pairs_dir: Path,
                                                           mlflow_uri: str, tmp_path: Path) -> None:
    # A shuffle buffer that holds a pass (12 visits) streams exactly the cached crops.
    params = tiny_params(input="stream", shuffle_buffer=12)
    summary = train("psnr", params, pairs_dir, None, tmp_path / "psnr", tmp_path / "checkpoints", tmp_path)
    assert summary["final_losses"] == psnr_run["summary"]["final_losses"]
    streamed, cached = (load_generator(folder / "generator.keras") for folder in (tmp_path / "psnr", psnr_run["out"]))
    for a, b in zip(streamed.weights, cached.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    run = MlflowClient(tracking_uri=mlflow_uri).get_run(summary["run_id"])
    assert run.data.tags["gansr.input"] == "stream (shuffle buffer 12)"


@pytest.mark.slow
def test_train_gan_fine_tunes_the_pretrained_generator(psnr_run: dict[str, Any], pairs_dir: Path,
                                                       mlflow_uri: str, tmp_path: Path) -> None:
    out = tmp_path / "gan"
    summary = train("gan", tiny_params(), pairs_dir, psnr_run["out"], out, tmp_path / "checkpoints",
                               tmp_path)
    written = json.loads((out / "training.json").read_text())
    assert written == {k: v for k, v in summary.items() if k not in ("run_id", "seconds_this_attempt")}
    assert written["phase"] == "gan" and written["backbone"] == "random" and written["steps"] == 3
    assert set(written["final_losses"]) == GAN_LOSSES
    assert all(math.isfinite(v) for v in written["final_losses"].values())
    generator = load_generator(out / "generator.keras")
    assert generator(np.zeros((1, 4, 4, 3), np.float32)).shape == (1, 16, 16, 3)
    pretrained = load_generator(psnr_run["out"] / "generator.keras")
    for name in (SUBPIXEL_HEAD, "block0_conv1"):  # the sub-pixel head stays as pretrained, the trunk learns
        changed = [np.abs(a - b).max() for a, b in zip(generator.get_layer(name).get_weights(),
                                                      pretrained.get_layer(name).get_weights())]
        assert (max(changed) > 0) == (name != SUBPIXEL_HEAD), name
    run = MlflowClient(tracking_uri=mlflow_uri).get_run(summary["run_id"])
    assert run.data.tags["gansr.phase"] == "gan" and run.data.tags["gansr.backbone"] == "random"
    assert "random-filter backbone" in run.data.tags["gansr.warning"]  # the fallback is never silent
    assert summary["run_id"] != psnr_run["summary"]["run_id"]
    assert list((tmp_path / "checkpoints").iterdir()) == []


@pytest.mark.slow
def test_the_real_phases_fine_tune_the_pretrained_generator_on_degraded_crops(
        psnr_run: dict[str, Any], pairs_dir: Path, mlflow_uri: str, tmp_path: Path) -> None:
    params = parse_params({**TINY, "real": {"pixel_steps": 4, "gan_steps": 2}})
    pixel = train("real_psnr", params, pairs_dir, psnr_run["out"], tmp_path / "real_psnr", tmp_path / "checkpoints",
                  tmp_path)
    real = train("real", params, pairs_dir, tmp_path / "real_psnr", tmp_path / "real", tmp_path / "checkpoints",
                 tmp_path)
    assert (pixel["steps"], set(pixel["final_losses"])) == (4, {"log_pixel"})  # each crop's loss, logged
    assert (real["steps"], set(real["final_losses"])) == (2, GAN_LOSSES)
    before = load_generator(psnr_run["out"] / "generator.keras").get_layer("block0_conv1").get_weights()[0]
    for folder in ("real_psnr", "real"):
        after = load_generator(tmp_path / folder / "generator.keras").get_layer("block0_conv1").get_weights()[0]
        assert np.abs(after - before).max() > 0, folder
    client = MlflowClient(tracking_uri=mlflow_uri)
    assert client.get_run(real["run_id"]).data.params["real.noise_prob"] == "0.3"


def test_fine_tuning_without_a_pretrained_generator_is_a_gansr_error(pairs_dir: Path, mlflow_uri: str,
                                                                     tmp_path: Path) -> None:
    with pytest.raises(GansrError, match="generator.keras"):
        train("gan", tiny_params(), pairs_dir, tmp_path / "missing", tmp_path / "gan",
                         tmp_path / "checkpoints", tmp_path)


@pytest.mark.slow
def test_train_style_learns_styles_without_touching_super_resolution(
        psnr_run: dict[str, Any], pairs_dir: Path, mlflow_uri: str, tmp_path: Path) -> None:
    # Styles train on top of a finished generator; the pretrained one serves here.
    out = tmp_path / "style"
    summary = train("style", tiny_params(), pairs_dir, psnr_run["out"], out, tmp_path / "checkpoints",
                                 tmp_path)
    assert summary["styles"] == "gravel,brick,colorwheel" and summary["steps"] == 12
    assert set(summary["final_losses"]) == {"total", "content", "texture", "palette"}
    styled = load_generator(out / "generator.keras")
    plain = load_generator(psnr_run["out"] / "generator.keras")
    lr = np.random.default_rng(0).random((2, 6, 5, 3), np.float32)
    none = styled([lr, np.zeros(2, np.int32)]).numpy()
    np.testing.assert_array_equal(none, plain(lr))  # the trunk stayed frozen, bit for bit
    assert np.abs(styled([lr, np.ones(2, np.int32)]).numpy() - none).max() > 1e-4  # styles learned
    history = MlflowClient(tracking_uri=mlflow_uri).get_metric_history(summary["run_id"], "style/texture")
    assert len(history) == 6
    # The same seed gives the same style generator: the styles each step draws are part of the seed.
    again = tmp_path / "again"
    train("style", tiny_params(), pairs_dir, psnr_run["out"], again, tmp_path / "checkpoints", tmp_path)
    for first, second in zip(styled.get_weights(), load_generator(again / "generator.keras").get_weights()):
        np.testing.assert_array_equal(first, second)


@pytest.mark.slow
@pytest.mark.parametrize(("phase", "interrupt_at"), [("gan", 3), ("style", 7)])
def test_a_killed_phase_resumes_to_the_weights_of_an_uninterrupted_run(
        phase: str, interrupt_at: int, psnr_run: dict[str, Any], pairs_dir: Path, mlflow_uri: str,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Checkpoints every 2 steps: the resumed run redoes the steps after the last one, with the same crops.
    def train_into(name: str) -> dict[str, Any]:
        return train(phase, tiny_params(), pairs_dir, psnr_run["out"], tmp_path / name,
                     tmp_path / f"{name}-checkpoints", tmp_path)

    train_into("whole")
    run_loop = phases.run_loop

    def interrupted_loop(step_fn: Any, *args: Any, **kwargs: Any) -> dict[str, float]:
        calls = itertools.count(1)

        def step(lr: tf.Tensor, hr: tf.Tensor) -> Any:
            if next(calls) == interrupt_at:
                raise KeyboardInterrupt
            return step_fn(lr, hr)

        return run_loop(step, *args, **kwargs)

    with monkeypatch.context() as mp:
        mp.setattr(phases, "run_loop", interrupted_loop)
        with pytest.raises(KeyboardInterrupt):
            train_into("resumed")
    assert not (tmp_path / "resumed").exists()
    train_into("resumed")
    whole = load_generator(tmp_path / "whole" / "generator.keras").get_weights()
    resumed = load_generator(tmp_path / "resumed" / "generator.keras").get_weights()
    for expected, actual in zip(whole, resumed, strict=True):
        np.testing.assert_array_equal(actual, expected)

