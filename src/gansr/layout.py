"""Where each pipeline stage reads and writes: the same relative paths as in dvc.yaml, and their file names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gansr.errors import ConfigError

VARIANTS = ("psnr", "gan", "real")  # the generators scored against bicubic
EXPORTED_VARIANTS = (*VARIANTS, "style")
MAIN_VARIANT = "gan"  # models/export/generator.keras and the registered model tracking.registered_model

GENERATOR_FILE = "generator.keras"  # in each variant's folder and in models/export/
SUMMARY_FILE = "training.json"  # beside a training phase's generator
SOURCES_FILE = "sources.csv"  # in data/raw/
MANIFEST_FILE = "manifest.parquet"  # in data/pairs/ and data/validated/
QUARANTINE_FILE = "quarantine.csv"  # in reports/validation/
# In metrics/ (DVC metrics, kept in git) and plots/, as the validate and evaluate stages write them.
EVAL_FILE = "eval.json"  # Y-PSNR, SSIM, detail, grid, streaks per method
STYLE_SCORES_FILE = "style.json"  # the style score and its controls
REAL_SCORES_FILE = "real.json"  # Y-PSNR, SSIM and gain over bicubic on the degraded test split
SPEED_FILE = "speed.json"  # each generator's throughput: the one output that varies between runs
EXTRA_SETS_FILE = "extra_sets.json"  # evaluate.extra_sets
PER_IMAGE_FILE = "per_image.csv"
VALIDATION_FILE = "validation.json"
SAMPLES_PLOT = "samples.png"
PER_IMAGE_PLOT = "per_image.png"
STYLES_PLOT = "styles.png"
REAL_PLOT = "real.png"
DATA_DOCS_INDEX = "index.html"  # the validation report's front page, in reports/validation/
DOWNLOAD_CACHE = Path(".cache") / "downloads"  # url sources' archives, under the root; git-ignored
STORE_FILE = "mlflow.db"  # the default MLflow store at the root, with its artifacts in ARTIFACTS_DIR beside it
ARTIFACTS_DIR = "mlartifacts"
# In each variant's folder under models/export/, by export format (export.formats).
EXPORT_FILES = {"keras": GENERATOR_FILE, "saved_model": "saved_model", "tflite": "generator_fp16.tflite"}
RUNTIME_INFO_FILE = "generator.json"  # beside them: scale, styles and tiling needs, for the light runtime
PARAMS_FILE = "params.yaml"  # at the root, as are:
PIPELINE_FILE = "dvc.yaml"
DVC_LOCK_FILE = "dvc.lock"
ROOT_MARKERS = (PARAMS_FILE, PIPELINE_FILE)


# src/gansr/layout.py -> the checkout gansr is installed from (`make install` installs it editable).
INSTALLED_FROM = Path(__file__).resolve().parents[2]


def project_root(root: Path | None = None) -> Path:
    """The gansr project a command works on, found the same way by every command and stage.

    ``root`` (a ``--root`` option) must hold params.yaml or dvc.yaml. Without
    it: the nearest folder at or above the CWD that holds one (as git finds
    its repository), else the checkout gansr was installed from, so the
    ``gansr`` command works from any folder with the venv active.
    """
    if root is not None:
        if not _is_project(root):
            raise ConfigError(f"--root {root}: no {PARAMS_FILE} or {PIPELINE_FILE} there")
        return root.resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents, INSTALLED_FROM):
        if _is_project(folder):
            return folder
    raise ConfigError(f"no gansr project (a folder with {PARAMS_FILE} or {PIPELINE_FILE}) at or above {here}, "
                      f"and gansr was not installed from one: pass --root with the project's folder")


def _is_project(folder: Path) -> bool:
    return any((folder / marker).is_file() for marker in ROOT_MARKERS)


@dataclass(frozen=True)
class Layout:
    """The pipeline's paths under one repository root, so tests can run any stage in a temporary one.

    Training and evaluation read the manifest in ``validated`` (the validate
    stage's copy, without any dropped pairs), whose paths lead into ``pairs``;
    training reads its pairs from ``shards``, packed from that manifest.
    """

    root: Path
    raw: Path
    pairs: Path
    validation: Path
    validated: Path
    shards: Path
    checkpoints: Path
    psnr: Path
    gan: Path
    real_psnr: Path
    real: Path
    style: Path
    export: Path
    registry: Path
    metrics: Path
    plots: Path

    @classmethod
    def at(cls, root: Path) -> Layout:
        """The layout of the repository at ``root``."""
        return cls(
            root=root,
            raw=root / "data" / "raw",
            pairs=root / "data" / "pairs",
            validation=root / "reports" / "validation",
            validated=root / "data" / "validated",
            shards=root / "data" / "shards",
            checkpoints=root / "models" / "checkpoints",
            psnr=root / "models" / "psnr",
            gan=root / "models" / "gan",
            real_psnr=root / "models" / "real_psnr",
            real=root / "models" / "real",
            style=root / "models" / "style",
            export=root / "models" / "export",
            # What export registered in the MLflow store: a record of the store, like mlflow.db, so
            # neither DVC nor git tracks it (its run ids and versions differ from store to store).
            registry=root / "models" / "registry.json",
            metrics=root / "metrics",
            plots=root / "plots",
        )

    def generator(self, variant: str) -> Path:
        """The generator file of ``variant`` (psnr, gan, real or style), as its training stage wrote it."""
        if variant not in EXPORTED_VARIANTS:
            raise ValueError(f"no variant named {variant!r}; the variants are {', '.join(EXPORTED_VARIANTS)}")
        return getattr(self, variant) / GENERATOR_FILE

    def exported(self, variant: str, fmt: str) -> Path:
        """``variant``'s export in format ``fmt`` (keras, saved_model, tflite), as the export stage wrote it."""
        return self.export / variant / EXPORT_FILES[fmt]

    @property
    def exported_generator(self) -> Path:
        """``gansr upscale``'s default model: the main variant, as the export stage wrote it."""
        return self.export / GENERATOR_FILE

