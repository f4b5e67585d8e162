"""The style branch on a user's paintings: train it on a folder of them, score it, and draw the picture.

    python bench/paintings.py [--folder ../shared/styles] [--picture docs/img/paintings.png]

Trains the style phase exactly as `dvc repro` does (params.yaml's style
section, with ``style.source: folder``) on top of the GAN generator in
models/gan, in a scratch folder with its own MLflow store, then scores it on
the test split as the evaluate stage does: the independent score, the
shift / two-photo / pan measures and the controls. Prints the figures and
writes a picture of every test image in every painting (full-resolution
crops). Needs `dvc repro train_gan`.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import _quiet  # noqa: F401  (first: quiets TensorFlow before anything loads it)

from gansr.config import load_params
from gansr.data.pairs import read_manifest
from gansr.evaluation import load_pairs
from gansr.inference import load_generator
from gansr.layout import GENERATOR_FILE, STYLES_PLOT, Layout
from gansr.models.backbone import build_backbone
from gansr.style.evaluation import evaluate_styles
from gansr.style.images import load_styles
from gansr.style.training import style_phase
from gansr.tracking.runs import MlflowRunLog
from gansr.training.phases import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("..") / "shared" / "styles")
    parser.add_argument("--picture", type=Path, default=Path("docs") / "img" / "paintings.png")
    args = parser.parse_args()
    params = load_params("params.yaml")
    params = dataclasses.replace(params, style=dataclasses.replace(params.style, source="folder",
                                                                   folder=str(args.folder)))
    layout = Layout.at(Path.cwd())
    styles = load_styles(params.style)
    pairs = load_pairs(read_manifest(layout.validated), layout.validated, "test")
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        summary = train("style", style_phase, params, layout.validated, layout.gan, work / "style",
                        work / "checkpoints", MlflowRunLog(work, params.tracking.experiment))
        model = load_generator(work / "style" / GENERATOR_FILE)
        scores = evaluate_styles(model, pairs, styles, build_backbone(params.loss.backbone, params.loss.vgg19_weights),
                                 params.scale, params.evaluate, work, work)
        args.picture.parent.mkdir(parents=True, exist_ok=True)
        args.picture.write_bytes((work / STYLES_PLOT).read_bytes())
    print(f"style phase on {', '.join(s.name for s in styles)}: {summary['steps']} steps, "
          f"{summary['seconds_this_attempt']:.0f} s")
    print(f"identified (moved most towards its own painting, drawn from the photo): {scores['own_style_rate']:.0%} "
          f"of {scores['pairs']} pairs; by the statistics alone {scores['statistics_rate']:.0%}; "
          f"moved {scores['mean_moved']:.0%} of the way; content SSIM at LR scale >= {scores['min_content_ssim']:.2f}")
    photos = len(pairs)
    for name, entry in scores["follow"].items():
        identified = round(scores["styles"][name]["towards_own"] * photos)
        print(f"  {name:<14} identified {identified} of {photos}, moved {scores['styles'][name]['moved']:.0%}; "
              f"shift 16: along {entry['shift_16_along_min']:.2f}, in place "
              f"{entry['shift_16_in_place_max']:.2f}; shift 13: along {entry['shift_13_along_min']:.2f}, in place "
              f"{entry['shift_13_in_place_max']:.2f}; two photos {entry['fixed_pattern']:.3f}; pan error "
              f"{entry['pan_motion_error']:.2f} px, flicker {entry['pan_flicker']:.2f} (unstyled "
              f"{entry['pan_flicker_unstyled']:.2f})")
    for name, control in scores["controls"].items():
        print(f"  control {name:<15} identified {control['own_style_rate']:.0%}, by the statistics alone "
              f"{control['statistics_rate']:.0%}")
    print(f"picture: {args.picture}")


if __name__ == "__main__":
    main()
