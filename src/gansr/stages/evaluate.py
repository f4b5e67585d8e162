"""Stage `evaluate`: each generator vs bicubic on the test split, clean and degraded, and the style score.

Writes metrics/ and plots/, and logs both to each generator's training run.
"""

import logging
from pathlib import Path
from typing import Any

from gansr import tracking
from gansr.config import Params
from gansr.data.pairs import read_manifest
from gansr.degraded import evaluate_degraded
from gansr.evaluation import evaluate, evaluate_extra_sets, load_pairs
from gansr.inference import load_generator
from gansr.layout import (
    PER_IMAGE_FILE,
    PER_IMAGE_PLOT,
    REAL_PLOT,
    REAL_SCORES_FILE,
    SAMPLES_PLOT,
    STYLE_SCORES_FILE,
    STYLES_PLOT,
    VARIANTS,
    Layout,
)
from gansr.models.backbone import build_backbone
from gansr.niqe import fit_pristine
from gansr.reporting import degraded_headline, format_eval_table, format_real_scores, format_style_scores
from gansr.style.evaluation import evaluate_styles
from gansr.style.images import load_styles
from gansr.style.score import headline

log = logging.getLogger("gansr")


def run(params: Params, layout: Layout) -> None:
    """Score every variant against bicubic, clean and degraded, and the styles; log to their runs."""
    test_pairs = load_pairs(read_manifest(layout.validated), layout.validated, "test")
    models = {name: load_generator(layout.generator(name)) for name in VARIANTS}
    summary = _evaluate_variants(params, layout, models, test_pairs)
    real = _evaluate_degraded(params, layout, models, test_pairs)
    style_summary = _evaluate_styles(params, layout, test_pairs)
    log.info("evaluate:\n%s\ndegraded test split (gain over bicubic of the same input):\n%s\nstyle: %s",
             format_eval_table(summary), format_real_scores(real), format_style_scores(style_summary))


def _evaluate_variants(params: Params, layout: Layout, models: dict, test_pairs: list) -> dict[str, Any]:
    summary, speed = evaluate(models, test_pairs, params.scale, params.evaluate, layout.metrics, layout.plots)
    extra = evaluate_extra_sets(models, params.evaluate.extra_sets, params.scale, layout.metrics)
    for set_name, scores in extra.items():
        log.info("evaluate: %s (%d images)\n%s", set_name, scores["images"], format_eval_table(scores))
    for name in VARIANTS:
        metrics = {**{f"test/{k}": v for k, v in summary[name].items()},
                   "test/megapixels_per_s": speed["megapixels_per_s"][name],
                   **{f"test/bicubic_{k}": v for k, v in summary["bicubic"].items()},
                   **{f"{set_name}/{k}": v for set_name, scores in extra.items() for k, v in scores[name].items()}}
        _record(params, layout, name, metrics, [layout.plots / SAMPLES_PLOT, layout.plots / PER_IMAGE_PLOT,
                                                layout.metrics / PER_IMAGE_FILE])
    return summary


def _evaluate_degraded(params: Params, layout: Layout, models: dict, test_pairs: list) -> dict[str, Any]:
    # NIQE's pristine model: the clean photos the generators were trained on.
    try:
        pristine = fit_pristine([p.hr for p in load_pairs(read_manifest(layout.validated), layout.validated,
                                                           "train")])
    except ValueError as exc:
        log.warning("evaluate: no NIQE on the degraded test split: %s", exc)
        pristine = None
    report = evaluate_degraded(models, test_pairs, params.scale, params.seed, pristine, params.evaluate,
                               layout.metrics, layout.plots)
    for name in VARIANTS:
        metrics = {**{f"degraded/{version}_{key}": value for version, methods in report["versions"].items()
                      for key, value in methods[name].items()},
                   "degraded/gain_db": degraded_headline(report, name)["degraded_gain_db"]}
        _record(params, layout, name, metrics, [layout.metrics / REAL_SCORES_FILE, layout.plots / REAL_PLOT])
    return report


def _evaluate_styles(params: Params, layout: Layout, test_pairs: list) -> dict[str, Any]:
    backbone = build_backbone(params.loss.backbone, params.loss.vgg19_weights)
    scores = evaluate_styles(load_generator(layout.generator("style")), test_pairs,
                             load_styles(params.style), backbone, params.scale, params.evaluate, layout.metrics,
                             layout.plots)
    metrics = {**{f"test/{name}_{key}": value for name, entry in scores["styles"].items()
                  for key, value in entry.items()},
               **{f"test/{key}": value for key, value in headline(scores).items()},
               **{f"test/control_{control}_{key}": value for control, entry in scores["controls"].items()
                  for key, value in headline(entry).items()},
               **{f"test/{name}_{key}": value for name, entry in scores["follow"].items()
                  for key, value in entry.items()},
               **{f"test/{name}_training_loss_reduction": value
                  for name, value in scores["training_loss_reduction"].items()}}
    _record(params, layout, "style", metrics, [layout.metrics / STYLE_SCORES_FILE, layout.plots / STYLES_PLOT])
    return scores


def _record(params: Params, layout: Layout, variant: str, metrics: dict[str, float], files: list[Path]) -> None:
    """Add the test figures and pictures to the run that trained ``variant``."""
    tracking.record_results(layout.root, params.tracking.experiment, variant, layout.generator(variant), metrics,
                            files, "evaluation")
