"""The pipeline's stages as functions of (params, layout), one per DVC stage.

``dvc.yaml`` runs ``stages/<name>.py``, which hands one of these functions to
:func:`run_stage`. Paths live in :class:`Layout` so tests can run any stage
against a temporary repository.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gansr.config import Params, load_params
from gansr.errors import exit_on_error

log = logging.getLogger("gansr")


@dataclass(frozen=True)
class Layout:
    """Where each stage reads and writes; the same relative paths as in dvc.yaml.

    Training and evaluation read the manifest in ``validated`` (the validate
    stage's copy, without any dropped pairs), whose paths lead into ``pairs``.
    """

    root: Path
    raw: Path
    pairs: Path
    validation: Path
    validated: Path
    checkpoints: Path
    psnr: Path
    gan: Path
    style: Path
    export: Path
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
            checkpoints=root / "models" / "checkpoints",
            psnr=root / "models" / "psnr",
            gan=root / "models" / "gan",
            style=root / "models" / "style",
            export=root / "models" / "export",
            metrics=root / "metrics",
            plots=root / "plots",
        )


def download(params: Params, layout: Layout) -> None:
    """Assemble the raw images named by ``data`` into data/raw/."""
    from gansr.data.sources import fetch_raw

    sources = fetch_raw(params.data, layout.raw)
    log.info("download: %d images from source %r into %s", len(sources), params.data.source, layout.raw)


def pairs(params: Params, layout: Layout) -> None:
    """Make HR/LR pairs, the split and the manifest in data/pairs/."""
    from gansr.data.pairs import build_pairs

    manifest = build_pairs(layout.raw, layout.pairs, params.scale, params.seed, params.pairs)
    counts = manifest["split"].value_counts().to_dict()
    log.info("pairs: %d pairs (%s) in %s", len(manifest), _counts(counts), layout.pairs)


def validate(params: Params, layout: Layout) -> None:
    """Run the Great Expectations suite over the manifest and the image files."""
    from gansr.atomic import write_json
    from gansr.validation import validate_pairs

    summary = validate_pairs(layout.pairs, layout.validation, layout.validated, params.scale,
                             params.pairs, params.validate)
    # Deterministic counts only, so downstream stages rerun when the data changes, not the docs.
    write_json(layout.metrics / "validation.json", summary)
    if summary["quarantined"]:
        log.warning("validate: %d bad pairs dropped (validate.on_bad: drop), listed in %s",
                    summary["quarantined"], layout.validation / "quarantine.csv")
    else:
        log.info("validate: all expectations met")
    log.info("validate: manifest for training (%s) in %s; data docs at %s",
             _counts(summary["kept_per_split"]), layout.validated, layout.validation / "index.html")


def pretrain(params: Params, layout: Layout) -> None:
    """PSNR-oriented pretraining → models/psnr/."""
    from gansr.training.phases import train_psnr

    summary = train_psnr(params, layout.validated, layout.psnr, layout.checkpoints, layout.root)
    log.info("pretrain: done, %s", _run_note(summary))


def train_gan(params: Params, layout: Layout) -> None:
    """Adversarial fine-tuning from the pretrained generator → models/gan/."""
    from gansr.training import phases

    summary = phases.train_gan(params, layout.validated, layout.psnr, layout.gan, layout.checkpoints,
                               layout.root)
    log.info("train_gan: done, %s", _run_note(summary))


def train_style(params: Params, layout: Layout) -> None:
    """Style modulations on top of the frozen GAN generator → models/style/."""
    from gansr.training import phases

    summary = phases.train_style(params, layout.validated, layout.gan, layout.style,
                                 layout.checkpoints, layout.root)
    log.info("train_style: done (styles %s), %s", summary["styles"], _run_note(summary))


def _run_note(summary: dict[str, Any]) -> str:
    if summary["run_id"] is None:  # a worker of a multi-worker run
        return "outputs and MLflow run written by the chief"
    return f"MLflow run {summary['run_id']}"


VARIANTS = ("psnr", "gan")
EXPORTED_VARIANTS = (*VARIANTS, "style")
MAIN_VARIANT = "gan"  # models/export/generator.keras and the registered model tracking.registered_model


def evaluate(params: Params, layout: Layout) -> None:
    """Score every variant against bicubic, and the styles, on the test split; log to their runs."""
    from gansr.data.pairs import read_manifest
    from gansr.evaluation import load_pairs

    test_pairs = load_pairs(read_manifest(layout.validated), layout.validated, "test")
    summary = _evaluate_variants(params, layout, test_pairs)
    style_summary = _evaluate_styles(params, layout, test_pairs)
    log.info("evaluate:\n%s\nstyle: %s", format_eval_table(summary), format_style_scores(style_summary))


def _evaluate_variants(params: Params, layout: Layout, test_pairs: list) -> dict[str, Any]:
    import mlflow

    from gansr import tracking
    from gansr.evaluation import evaluate as run_evaluation
    from gansr.evaluation import evaluate_extra_sets
    from gansr.inference import load_generator

    variant_dirs = {name: getattr(layout, name) for name in VARIANTS}
    models = {name: load_generator(path / "generator.keras") for name, path in variant_dirs.items()}
    summary, speed = run_evaluation(models, test_pairs, params.scale, params.evaluate, layout.metrics,
                                    layout.plots)
    extra = evaluate_extra_sets(models, params.evaluate.extra_sets, params.scale, layout.metrics)
    for set_name, scores in extra.items():
        log.info("evaluate: %s (%d images)\n%s", set_name, scores["images"], format_eval_table(scores))
    for name, path in variant_dirs.items():
        with tracking.start_run(layout.root, params.tracking.experiment, run_name=name,
                                resume_run_id=_run_id(path)):
            mlflow.log_metrics({f"test/{k}": v for k, v in summary[name].items()})
            mlflow.log_metric("test/megapixels_per_s", speed["megapixels_per_s"][name])
            mlflow.log_metrics({f"test/bicubic_{k}": v for k, v in summary["bicubic"].items()})
            for set_name, scores in extra.items():
                mlflow.log_metrics({f"{set_name}/{k}": v for k, v in scores[name].items()})
            mlflow.log_artifact(str(layout.plots / "samples.png"), "evaluation")
            mlflow.log_artifact(str(layout.plots / "per_image.png"), "evaluation")
            mlflow.log_artifact(str(layout.metrics / "per_image.csv"), "evaluation")
    return summary


def _evaluate_styles(params: Params, layout: Layout, test_pairs: list) -> dict[str, Any]:
    import mlflow

    from gansr import tracking
    from gansr.data.styles import load_styles
    from gansr.evaluation import evaluate_styles
    from gansr.inference import load_generator
    from gansr.models.backbone import build_backbone
    from gansr.style_score import headline

    backbone = build_backbone(params.loss.backbone, params.loss.vgg19_weights)
    scores = evaluate_styles(load_generator(layout.style / "generator.keras"), test_pairs,
                             load_styles(params.style), backbone, params.evaluate, layout.metrics,
                             layout.plots)
    with tracking.start_run(layout.root, params.tracking.experiment, run_name="style",
                            resume_run_id=_run_id(layout.style)):
        mlflow.log_metrics({f"test/{name}_{key}": value for name, entry in scores["styles"].items()
                            for key, value in entry.items()})
        mlflow.log_metrics({f"test/{key}": value for key, value in headline(scores).items()})
        mlflow.log_metrics({f"test/control_{control}_{key}": value
                            for control, entry in scores["controls"].items() for key, value in entry.items()})
        mlflow.log_metrics({f"test/{name}_training_loss_reduction": value
                            for name, value in scores["training_loss_reduction"].items()})
        mlflow.log_artifact(str(layout.metrics / "style.json"), "evaluation")
        mlflow.log_artifact(str(layout.plots / "styles.png"), "evaluation")
    return scores


def export(params: Params, layout: Layout) -> None:
    """Write every generator in ``export.formats`` to models/export/<variant>/, check, and register each."""
    from gansr.atomic import atomic_path, write_json
    from gansr.export import FILES, describe, export_generator
    from gansr.inference import load_generator

    models = {name: load_generator(getattr(layout, name) / "generator.keras") for name in EXPORTED_VARIANTS}
    with atomic_path(layout.export) as tmp:
        tmp.mkdir()
        errors = {}
        for name, model in models.items():
            errors[name] = export_generator(model, tmp / name, params.export.formats)
            log.info("export: %s written and reloaded, max |error|: %s", name, describe(errors[name]))
        models[MAIN_VARIANT].save(tmp / "generator.keras")  # `gansr upscale`'s default model
        registrations = {
            name: {**_register(params, layout, name, model), "max_error": errors[name],
                   "files": {fmt: f"{name}/{FILES[fmt]}" for fmt in params.export.formats}}
            for name, model in models.items()
        }
        # The main (GAN) registration stays at the top level, where `gansr summary` reads it.
        write_json(tmp / "registry.json", {**registrations[MAIN_VARIANT], "variants": registrations})
    for name, registration in registrations.items():
        log.info("export: %s v%d: %s", registration["name"], registration["version"], registration["decision"])


def _register(params: Params, layout: Layout, variant: str, model: Any) -> dict[str, Any]:
    """Register ``variant`` as a new version of its own registered model, with its test metrics."""
    from gansr import tracking

    scores = json.loads((layout.metrics / "eval.json").read_text())
    if variant == "style":
        from gansr.style_score import headline

        # Style 0 is the GAN generator bit for bit, so it shares the GAN's image scores.
        style_scores = json.loads((layout.metrics / "style.json").read_text())
        metrics = {**scores[MAIN_VARIANT], **headline(style_scores)}
    else:
        metrics = scores[variant]
    name = params.tracking.registered_model
    cfg = replace(params.tracking, registered_model=name if variant == MAIN_VARIANT else f"{name}-{variant}")
    run_id = _run_id(getattr(layout, variant))
    return {"run_id": run_id, **tracking.register_generator(model, run_id, metrics, cfg, layout.root)}


def format_eval_table(summary: dict[str, Any]) -> str:
    """The evaluation summary as a small aligned text table."""
    methods = [m for m in ("bicubic", *VARIANTS) if m in summary]
    lines = [f"{'method':<10} {'Y-PSNR (dB)':>12} {'SSIM':>8} {'gain (dB)':>10} {'detail':>7} {'grid':>6}"]
    for method in methods:
        entry = summary[method]
        gain = f"{entry['gain_db']:+.2f}" if "gain_db" in entry else ""
        detail = f"{entry['detail']:.2f}" if "detail" in entry else ""
        grid = f"{entry['grid']:.3f}" if "grid" in entry else ""
        lines.append(f"{method:<10} {entry['y_psnr']:>12.2f} {entry['ssim']:>8.4f} {gain:>10} {detail:>7} {grid:>6}")
    return "\n".join(lines)


def format_style_scores(scores: dict[str, Any]) -> str:
    """The independent style score in one line, with its positive and negative control."""
    controls = scores["controls"]
    return (f"moved most towards its own style in {scores['own_style_rate']:.0%} of (image, style) pairs "
            f"(blend control {controls['positive_blend']['own_style_rate']:.0%}, unstyled control "
            f"{controls['negative_unstyled']['own_style_rate']:.0%}); moved {scores['mean_moved']:.0%} of the way "
            f"on average; content SSIM at LR scale >= {scores['min_content_ssim']:.2f}")


def _run_id(variant_dir: Path) -> str:
    return json.loads((variant_dir / "training.json").read_text())["run_id"]


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{split} {n}" for split, n in sorted(counts.items()))


def run_stage(stage: Callable[[Params, Layout], None], root: Path | None = None) -> None:
    """Entry point of a DVC stage script: load params, run, turn errors into one line."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("mlflow", "alembic", "great_expectations", "absl", "h5py", "tensorflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    root = root or Path.cwd()
    with exit_on_error(f"gansr {stage.__name__}"):
        params = load_params(root / "params.yaml")
        check_inputs(params)
        stage(params, Layout.at(root))


def check_inputs(params: Params) -> None:
    """Fail before any stage works on an input a later stage would refuse: a style folder without images.

    DVC may run several stages (pretraining, GAN training) before ``train_style``
    reads ``style.folder``; listing the folder costs next to nothing.
    """
    if params.style.source == "folder":
        from gansr.data.sources import check_image_folder

        check_image_folder(Path(params.style.folder), "style.folder")
