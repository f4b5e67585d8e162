"""params.yaml, parsed once into frozen dataclasses and validated.

Every number the pipeline uses comes from here. A bad value fails at load
time with its dotted key in the message (``train.batch_size must be > 0, got
-5``); nothing downstream indexes raw dicts. A key left out of params.yaml
takes the default written here, which is the value the shipped file sets.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from gansr.errors import ConfigError
from gansr.layout import PARAMS_FILE

SUPPORTED_SCALES = (2, 3, 4)
Degradation = Literal["bicubic", "realistic"]
DEGRADATIONS: tuple[str, ...] = get_args(Degradation)
ExportFormat = Literal["keras", "saved_model", "tflite"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)


@dataclass(frozen=True)
class DataConfig:
    """Where raw images come from (``download`` stage), and how much a downloaded archive may unpack to."""

    source: Literal["builtin", "folder", "url"] = "builtin"
    folder: str = ""
    url: str = ""
    sha256: str = ""
    licence: str = ""  # recorded for folder/url images; empty: a note on where to look
    max_unpacked_mb: int = 20000
    max_files: int = 100000
    max_ratio: float = 200.0  # unpacked / packed bytes; a zip bomb reaches thousands

    def __post_init__(self) -> None:
        if self.source == "folder" and not self.folder:
            raise ConfigError("data.folder must be set when data.source is 'folder'")
        if self.source == "url":
            if not re.fullmatch(r"https?://[^/?#\s]+\S*", self.url):
                raise ConfigError(f"data.url must be an http:// or https:// URL when data.source is 'url', "
                                  f"got {self.url!r}")
            if not re.fullmatch(r"[0-9a-fA-F]{64}", self.sha256):
                raise ConfigError(f"data.sha256 must be the 64 hex digits of the file's SHA-256 when "
                                  f"data.source is 'url' (e.g. from sha256sum), got {self.sha256!r}")
        for key in ("max_unpacked_mb", "max_files", "max_ratio"):
            _check_positive(f"data.{key}", getattr(self, key))


@dataclass(frozen=True)
class PairsConfig:
    """How HR/LR pairs and the train/val/test split are made (``pairs`` stage)."""

    val_fraction: float = 0.1
    test_fraction: float = 0.25
    min_hr_size: int = 96
    # Images whose 64-bit perceptual hashes differ in at most this many bits (directly or
    # through others) share a split, like images of one group; 0: off.
    near_duplicate_bits: int = 6
    # HR side of the tiles large training images are cut into, each its own pair; 0: whole images.
    tile_size: int = 0
    # How LR is made. The ranges below apply to "realistic" only; each is [min, max]
    # and a value is drawn uniformly from it per image (Real-ESRGAN's first-order defaults).
    degradation: Degradation = "bicubic"
    second_order: bool = False
    blur_kernel_size: tuple[int, int] = (7, 21)  # odd sizes
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    anisotropic_prob: float = 0.4
    noise_sigma: tuple[float, float] = (1.0, 30.0)  # grey levels
    gray_noise_prob: float = 0.4
    jpeg_quality: tuple[int, int] = (30, 95)

    def __post_init__(self) -> None:
        _check_fraction("pairs.val_fraction", self.val_fraction)
        _check_fraction("pairs.test_fraction", self.test_fraction)
        if self.val_fraction + self.test_fraction >= 1:
            raise ConfigError("pairs.val_fraction + pairs.test_fraction must be < 1")
        _check_positive("pairs.min_hr_size", self.min_hr_size)
        if not 0 <= self.near_duplicate_bits <= 32:  # unrelated photos differ in about 32 of 64 bits
            raise ConfigError(
                f"pairs.near_duplicate_bits must be in [0, 32] (0: off), got {self.near_duplicate_bits}"
            )
        if self.tile_size < 0:
            raise ConfigError(f"pairs.tile_size must be 0 (off) or > 0, got {self.tile_size}")
        _check_range("pairs.blur_kernel_size", self.blur_kernel_size, 1, 99)
        if any(size % 2 == 0 for size in self.blur_kernel_size):
            raise ConfigError(f"pairs.blur_kernel_size must be odd sizes, got {list(self.blur_kernel_size)}")
        _check_range("pairs.blur_sigma", self.blur_sigma, 0.01, 50)
        _check_range("pairs.noise_sigma", self.noise_sigma, 0, 255)
        _check_range("pairs.jpeg_quality", self.jpeg_quality, 1, 100)
        for key in ("anisotropic_prob", "gray_noise_prob"):
            if not 0 <= getattr(self, key) <= 1:
                raise ConfigError(f"pairs.{key} must be in [0, 1], got {getattr(self, key)}")


@dataclass(frozen=True)
class ValidateConfig:
    """Bounds the ``validate`` stage checks the manifest against."""

    min_train_pairs: int = 3
    min_test_pairs: int = 1
    # fail: any bad pair fails the stage. drop: bad pairs are left out of the manifest
    # training reads and listed in reports/validation/quarantine.csv.
    on_bad: Literal["fail", "drop"] = "fail"

    def __post_init__(self) -> None:
        _check_positive("validate.min_train_pairs", self.min_train_pairs)
        _check_positive("validate.min_test_pairs", self.min_test_pairs)


@dataclass(frozen=True)
class ShardsConfig:
    """How the ``shards`` stage packs the training pairs (TFRecord files training reads)."""

    count: int = 32  # at most; a worker of a multi-worker run reads every workers-th shard

    def __post_init__(self) -> None:
        _check_positive("shards.count", self.count)


@dataclass(frozen=True)
class ModelConfig:
    """Generator and discriminator sizes."""

    channels: int = 48
    blocks: int = 6
    disc_channels: int = 32

    def __post_init__(self) -> None:
        _check_positive("model.channels", self.channels)
        _check_positive("model.blocks", self.blocks)
        _check_positive("model.disc_channels", self.disc_channels)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation schedule for the training phases, and how they spread over devices."""

    patch_size: int = 96
    batch_size: int = 16  # per replica: each step takes batch_size × replicas crops
    pretrain_steps: int = 5000
    gan_steps: int = 400
    pretrain_lr: float = 1e-3
    gan_lr: float = 1e-4
    ema_decay: float = 0.999
    precision: Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"] = "auto"
    checkpoint_every: int = 500
    log_every: int = 50
    nan_policy: Literal["stop", "skip"] = "stop"
    # auto: multi_worker if TF_CONFIG lists several tasks, mirrored if several GPUs, else none
    distribute: Literal["auto", "none", "mirrored", "multi_worker"] = "auto"
    # How training reads the shards: cached decoded in memory, or streamed through a shuffle
    # buffer of shuffle_buffer crops. auto: memory while the decoded pairs fit memory_limit_mb.
    input: Literal["auto", "memory", "stream"] = "auto"
    memory_limit_mb: int = 1024
    shuffle_buffer: int = 2048

    def __post_init__(self) -> None:
        for key in ("patch_size", "batch_size", "pretrain_steps", "gan_steps",
                    "checkpoint_every", "log_every", "memory_limit_mb", "shuffle_buffer"):
            _check_positive(f"train.{key}", getattr(self, key))
        _check_positive("train.pretrain_lr", self.pretrain_lr)
        _check_positive("train.gan_lr", self.gan_lr)
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"train.ema_decay must be in [0, 1), got {self.ema_decay}")


@dataclass(frozen=True)
class LossConfig:
    """Weights of the generator's loss terms in the adversarial phase."""

    pixel: Literal["l1", "l2"] = "l1"
    pixel_weight: float = 0.01
    perceptual_weight: float = 1.0
    adversarial_weight: float = 0.005
    artifact_weight: float = 100.0
    gan_type: Literal["relativistic", "nonsaturating"] = "relativistic"
    backbone: Literal["auto", "vgg19", "random"] = "auto"
    vgg19_weights: str = ""

    def __post_init__(self) -> None:
        for key in ("pixel_weight", "perceptual_weight", "adversarial_weight", "artifact_weight"):
            if getattr(self, key) < 0:
                raise ConfigError(f"loss.{key} must be >= 0, got {getattr(self, key)}")


@dataclass(frozen=True)
class RealConfig:
    """The ``real`` generator (stages ``finetune_real``, ``train_real``): the PSNR-oriented one, fine-tuned.

    Each training crop's LR is made anew from its HR crop: blur, bicubic
    downscale, noise, JPEG, each step taken with its own probability and
    drawn from the ``pairs`` ranges, so crops come clean, blurred, noisy,
    compressed or several at once.
    """

    pixel_steps: int = 1000  # pixel loss first ...
    gan_steps: int = 100  # ... then the adversarial phase, with train.gan_lr and the loss section's weights
    lr: float = 5e-5  # the pixel phase's peak learning rate
    blur_prob: float = 0.3
    noise_prob: float = 0.3
    jpeg_prob: float = 0.3

    def __post_init__(self) -> None:
        for key in ("pixel_steps", "gan_steps", "lr"):
            _check_positive(f"real.{key}", getattr(self, key))
        for key in ("blur_prob", "noise_prob", "jpeg_prob"):
            if not 0 <= getattr(self, key) <= 1:
                raise ConfigError(f"real.{key} must be in [0, 1], got {getattr(self, key)}")


@dataclass(frozen=True)
class StyleConfig:
    """Style images and the style fine-tuning phase (``train_style`` stage)."""

    source: Literal["builtin", "folder"] = "builtin"
    folder: str = ""
    image_size: int = 256
    patches: int = 1024  # candidate patches per style image the style swap matches against
    shading: float = 0.6  # share of the photo's light and shade at LR scale in a styled image
    channels: int = 32  # style network width, at LR resolution
    blocks: int = 2  # its residual blocks
    steps: int = 200
    lr: float = 0.003
    style_weight: float = 8.0
    palette_weight: float = 30.0
    content_weight: float = 0.5

    def __post_init__(self) -> None:
        if self.source == "folder" and not self.folder:
            raise ConfigError("style.folder must be set when style.source is 'folder'")
        for key in ("image_size", "patches", "channels", "blocks", "steps", "lr", "style_weight"):
            _check_positive(f"style.{key}", getattr(self, key))
        for key in ("content_weight", "palette_weight"):
            if getattr(self, key) < 0:
                raise ConfigError(f"style.{key} must be >= 0, got {getattr(self, key)}")
        if not 0.0 <= self.shading <= 1.0:
            raise ConfigError(f"style.shading must be in [0, 1], got {self.shading}")


@dataclass(frozen=True)
class EvaluateConfig:
    """What the ``evaluate`` stage reports."""

    sample_images: int = 3
    sample_crop: int = 64
    sample_zoom: int = 4  # each crop shown enlarged this many times (nearest), so detail is visible
    style_crop: int = 256  # side of the full-resolution crops in plots/styles.png
    extra_sets: tuple[str, ...] = ()  # folders of HR images scored like the test split

    def __post_init__(self) -> None:
        _check_positive("evaluate.sample_images", self.sample_images)
        _check_positive("evaluate.sample_crop", self.sample_crop)
        _check_positive("evaluate.sample_zoom", self.sample_zoom)
        _check_positive("evaluate.style_crop", self.style_crop)
        names = [Path(folder).name for folder in self.extra_sets]
        if len(set(names)) != len(names):
            raise ConfigError(f"evaluate.extra_sets: folder names must differ, got {list(self.extra_sets)}")


@dataclass(frozen=True)
class TrackingConfig:
    """MLflow experiment and registered model names, and the promotion rule."""

    experiment: str = "gansr"
    registered_model: str = "gansr"
    champion_metric: str = "y_psnr"
    champion_margin: float = 0.0
    # <registered_model>-real's rule: it is made for degraded photos, so the degraded split decides.
    real_champion_metric: str = "degraded_gain_db"

    def registered(self, name: str) -> TrackingConfig:
        """This config for registered model ``name``, with its champion rule."""
        real = name == f"{self.registered_model}-real"
        return dataclasses.replace(self, registered_model=name,
                                   champion_metric=self.real_champion_metric if real else self.champion_metric)


@dataclass(frozen=True)
class ExportConfig:
    """Which serving formats the ``export`` stage writes for each generator."""

    formats: tuple[ExportFormat, ...] = EXPORT_FORMATS

    def __post_init__(self) -> None:
        if not self.formats:
            raise ConfigError(f"export.formats must list at least one of {', '.join(EXPORT_FORMATS)}")
        if len(set(self.formats)) < len(self.formats):
            raise ConfigError(f"export.formats lists a format twice: {list(self.formats)}")


@dataclass(frozen=True)
class Params:
    """The whole of params.yaml."""

    seed: int = 0
    scale: int = 4
    data: DataConfig = field(default_factory=DataConfig)
    pairs: PairsConfig = field(default_factory=PairsConfig)
    validate: ValidateConfig = field(default_factory=ValidateConfig)
    shards: ShardsConfig = field(default_factory=ShardsConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    real: RealConfig = field(default_factory=RealConfig)
    style: StyleConfig = field(default_factory=StyleConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    export: ExportConfig = field(default_factory=ExportConfig)

    def __post_init__(self) -> None:
        if self.scale not in SUPPORTED_SCALES:
            raise ConfigError(f"scale must be one of {SUPPORTED_SCALES}, got {self.scale}")
        if self.train.patch_size % self.scale:
            raise ConfigError(
                f"train.patch_size must be a multiple of scale ({self.scale}), "
                f"got {self.train.patch_size}"
            )
        if self.evaluate.sample_crop < self.scale:
            raise ConfigError(
                f"evaluate.sample_crop must be >= scale ({self.scale}), got {self.evaluate.sample_crop}"
            )
        if self.pairs.min_hr_size < self.train.patch_size:
            raise ConfigError(
                f"pairs.min_hr_size ({self.pairs.min_hr_size}) must be >= "
                f"train.patch_size ({self.train.patch_size})"
            )
        tile = self.pairs.tile_size
        if tile and tile % self.scale:
            raise ConfigError(
                f"pairs.tile_size must be 0 (off) or a multiple of scale ({self.scale}), got {tile}"
            )
        if tile and tile < self.pairs.min_hr_size:
            raise ConfigError(  # min_hr_size >= patch_size: checked above
                f"pairs.tile_size must be 0 (off) or >= pairs.min_hr_size ({self.pairs.min_hr_size}) "
                f"and train.patch_size ({self.train.patch_size}), got {tile}"
            )


def load_params(path: str | os.PathLike[str] = PARAMS_FILE) -> Params:
    """Read and validate params.yaml."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    return parse_params(raw)


def parse_params(raw: Any) -> Params:
    """Build :class:`Params` from a nested dict, naming the dotted key on error."""
    return _build(Params, raw, prefix="")


def _build(cls: type, raw: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "params"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key {prefix}{unknown[0]} (known: {', '.join(fields)})")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(hints[name], raw[name], prefix + name) for name in fields if name in raw}
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key + ".")
    if get_origin(hint) is Literal:
        choices = get_args(hint)
        if value not in choices:
            raise ConfigError(f"{key} must be one of {', '.join(map(str, choices))}, got {value!r}")
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    if get_origin(hint) is tuple:
        return _coerce_tuple(get_args(hint), value, key)
    if hint is str and isinstance(value, str):
        return value
    if hint is str and value is None:
        return ""
    if isinstance(hint, types.UnionType) or hint not in (int, float, str, bool):
        raise TypeError(f"unsupported config type {hint!r} for {key}")  # a bug, not user input
    raise ConfigError(f"{key} must be a {hint.__name__}, got {value!r}")


def _coerce_tuple(hints: tuple[Any, ...], value: Any, key: str) -> tuple[Any, ...]:
    """A YAML list, e.g. a [min, max] range or any number of formats, with each item checked."""
    if len(hints) == 2 and hints[1] is Ellipsis:  # tuple[X, ...]: any length
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        hints = (hints[0],) * len(value)
    if not isinstance(value, (list, tuple)) or len(value) != len(hints):
        raise ConfigError(f"{key} must be a list of {len(hints)} values, got {value!r}")
    return tuple(_coerce(hint, item, f"{key}[{i}]") for i, (hint, item) in enumerate(zip(hints, value)))


def _check_range(key: str, bounds: tuple[float, float], lowest: float, highest: float) -> None:
    low, high = bounds
    if not lowest <= low <= high <= highest:
        raise ConfigError(f"{key} must be [min, max] with {lowest} <= min <= max <= {highest}, "
                          f"got {list(bounds)}")


def _check_positive(key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{key} must be > 0, got {value}")


def _check_fraction(key: str, value: float) -> None:
    if not 0 <= value < 1:
        raise ConfigError(f"{key} must be in [0, 1), got {value}")
