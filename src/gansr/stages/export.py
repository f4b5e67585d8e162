"""Stage `export`: every generator as .keras, SavedModel and TFLite -> models/export/, registered in MLflow."""

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gansr import tracking
from gansr.atomic import atomic_path, write_json
from gansr.config import Params
from gansr.export import export_generator, format_errors
from gansr.inference import load_generator
from gansr.layout import (
    EVAL_FILE,
    EXPORT_FILES,
    EXPORTED_VARIANTS,
    GENERATOR_FILE,
    MAIN_VARIANT,
    REAL_SCORES_FILE,
    RUNTIME_INFO_FILE,
    STYLE_SCORES_FILE,
    Layout,
)
from gansr.models.archive import save_generator
from gansr.reporting import degraded_headline
from gansr.style.score import headline

log = logging.getLogger("gansr")


def run(params: Params, layout: Layout) -> None:
    """Write every generator in ``export.formats`` to models/export/<variant>/, check, and register each."""
    models = {name: load_generator(layout.generator(name)) for name in EXPORTED_VARIANTS}
    with atomic_path(layout.export) as tmp:
        tmp.mkdir()
        errors = {}
        for name, model in models.items():
            errors[name] = export_generator(model, tmp / name, params.export.formats)
            log.info("export: %s written and reloaded, max |error|: %s", name, format_errors(errors[name]))
        save_generator(models[MAIN_VARIANT], tmp / GENERATOR_FILE)  # `gansr upscale`'s default model
        registrations = {
            name: {**_register(params, layout, name, model, _lite_files(tmp / name, params.export.formats)),
                   "max_error": errors[name],
                   "files": {fmt: f"{name}/{EXPORT_FILES[fmt]}" for fmt in params.export.formats}}
            for name, model in models.items()
        }
    # The main (GAN) registration stays at the top level, where `gansr summary` reads it.
    write_json(layout.registry, {**registrations[MAIN_VARIANT], "variants": registrations})
    for registration in registrations.values():
        log.info("export: %s v%d: %s", registration["name"], registration["version"], registration["decision"])


def _lite_files(folder: Path, formats: Sequence[str]) -> list[Path]:
    """A variant's files LiteRT runs, where the TFLite export was written: registered with its Keras file."""
    return [folder / EXPORT_FILES["tflite"], folder / RUNTIME_INFO_FILE] if "tflite" in formats else []


def _register(params: Params, layout: Layout, variant: str, model: Any, lite: Sequence[Path]) -> dict[str, Any]:
    """Register ``variant`` (its ``lite`` files with it) as a new version of its own registered model."""
    scores = json.loads((layout.metrics / EVAL_FILE).read_text())
    if variant == "style":
        # Style 0 is the GAN generator bit for bit, so it shares the GAN's image scores.
        style_scores = json.loads((layout.metrics / STYLE_SCORES_FILE).read_text())
        metrics = {**scores[MAIN_VARIANT], **headline(style_scores)}
    else:
        degraded = json.loads((layout.metrics / REAL_SCORES_FILE).read_text())
        metrics = {**scores[variant], **degraded_headline(degraded, variant)}
    name = params.tracking.registered_model
    cfg = params.tracking.registered(name if variant == MAIN_VARIANT else f"{name}-{variant}")
    run_id = tracking.generator_run_id(layout.root, params.tracking.experiment, variant,
                                       layout.generator(variant))
    return {"run_id": run_id, **tracking.register_generator(model, run_id, metrics, cfg, layout.root, lite)}
