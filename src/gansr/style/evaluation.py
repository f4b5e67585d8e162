"""The style generator on the test split: the independent score, whether styles follow the photo, pictures.

Writes ``style.json``: :func:`~gansr.style.score.style_report` for the
generator and for each control (:mod:`gansr.style.controls`), where a pair
counts only if its style follows the photo (:mod:`gansr.style.follow`), the
follow measures themselves, and, as a diagnostic, the training's own loss
reduction; and ``styles.png``, full-resolution crops of each test image in
each style.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw
from tqdm import tqdm

from gansr.atomic import atomic_path, write_json
from gansr.config import EvaluateConfig
from gansr.evaluation import LABEL_HEIGHT, ImagePair, centre_crop_origin
from gansr.inference import Upscaler
from gansr.layout import STYLE_SCORES_FILE, STYLES_PLOT
from gansr.models.backbone import Backbone
from gansr.style.controls import CONTROLS
from gansr.style.follow import (
    EVEN_SHIFT,
    MAX_FIXED,
    ODD_SHIFT,
    Render,
    fine_residual,
    fixed_pattern,
    pan_test,
    shift_test,
)
from gansr.style.images import StyleImage
from gansr.style.losses import style_losses, style_targets
from gansr.style.score import headline, style_report

# A control: (unstyled HR image, style image) -> the "styled" HR image.
Control = Callable[[np.ndarray, np.ndarray], np.ndarray]


class Renders:
    """The generator's renders of LR images, unstyled or in a style, each computed once."""

    def __init__(self, model: keras.Model) -> None:
        self.upscale = Upscaler(model)
        self._done: dict[tuple[int, tuple[int, ...], bytes], np.ndarray] = {}

    def style(self, index: int) -> Render:
        """The render in style ``index`` (0 = unstyled)."""
        def render(lr: np.ndarray) -> np.ndarray:
            key = (index, lr.shape, lr.tobytes())
            if key not in self._done:
                self._done[key] = self.upscale(np.ascontiguousarray(lr), style=index)
            return self._done[key]

        return render

    def control(self, control: Control, style_image: np.ndarray) -> Render:
        """``control`` applied to the unstyled render."""
        unstyled = self.style(0)
        return lambda lr: control(unstyled(lr), style_image)


def follow_measures(styles: dict[str, Render], unstyled: Render, pairs: list[ImagePair],
                    scale: int) -> tuple[dict[str, dict], dict[str, list[bool]]]:
    """Per style: the shift, fixed-pattern and pan measures, and whether each image's style follows the photo.

    An image's style follows when its even shift test passes, the style's
    residuals on different photos share no pattern, and on a pan (of the
    first photo) it moves with the scene without flickering more than the
    unstyled output: the shift and two-photo tests see fine detail only, the
    pan also a smooth overlay.
    """
    report, follows = {}, {}
    for name, render in tqdm(styles.items(), desc="style follows the photo", leave=False):
        shifts = {d: [shift_test(render, unstyled, p.lr, d, scale) for p in pairs] for d in (EVEN_SHIFT, ODD_SHIFT)}
        fixed = fixed_pattern([fine_residual(render(p.lr), unstyled(p.lr)) for p in pairs], scale)
        pan = pan_test(render, unstyled, pairs[0].lr, scale)
        report[name] = {
            **{f"shift_{d}_along_min": min(s.along for s in tests) for d, tests in shifts.items()},
            **{f"shift_{d}_in_place_max": max(s.in_place for s in tests) for d, tests in shifts.items()},
            "fixed_pattern": fixed,
            "pan_motion_error": pan.motion_error, "pan_flicker": pan.flicker,
            "pan_flicker_unstyled": pan.flicker_unstyled, "pan_follows": float(pan.follows),
        }
        follows[name] = [s.follows and fixed <= MAX_FIXED and pan.follows for s in shifts[EVEN_SHIFT]]
    return {name: {k: round(float(v), 4) for k, v in entry.items()} for name, entry in report.items()}, follows


def scored(styles: dict[str, Render], unstyled: Render, pairs: list[ImagePair],
           style_images: dict[str, np.ndarray], scale: int) -> dict:
    """The independent score of ``styles`` on ``pairs``, counting only styles that follow the photo."""
    outputs = {name: [render(p.lr) for p in pairs] for name, render in styles.items()}
    measures, follows = follow_measures(styles, unstyled, pairs, scale)
    report = style_report([unstyled(p.lr) for p in pairs], outputs, style_images, [p.lr for p in pairs], follows)
    return {**report, "follow": measures}


def training_loss_reduction(outputs: dict[str, list[np.ndarray]], styles: list[StyleImage],
                            backbone: Backbone, scale: int) -> dict[str, float]:
    """Diagnostic only: 1 − style loss (styled / unstyled) towards each style, in the training's own terms.

    Training minimises this very quantity (texture + palette of
    :func:`~gansr.style.losses.style_losses`), so it shows that training
    converged, not that a style is recognisable: that is :func:`style_report`'s job.
    """
    targets = style_targets(backbone, styles, scale)
    seed = tf.constant([0, 0])

    def loss(images: list[np.ndarray], style: int) -> float:
        batch = [tf.constant(image[None], tf.float32) / 255.0 for image in images]
        index = tf.constant([style])
        return float(np.mean([sum(style_losses(backbone, image, targets, index, seed)) for image in batch]))

    return {s.name: round(1 - loss(outputs[s.name], i) / loss(outputs["none"], i), 4)
            for i, s in enumerate(styles, start=1)}


def style_grid(pairs: list[ImagePair], outputs: dict[str, list[np.ndarray]], styles: list[StyleImage],
               cell: int) -> Image.Image:
    """A header row of style images, then per test image its unstyled and styled crops.

    Every cell is a ``cell``×``cell`` crop at full resolution (one image pixel
    per screen pixel), the style images too, so texture sizes compare directly.
    """
    columns = list(outputs)
    grid = Image.new("RGB", (cell * len(columns), (cell + LABEL_HEIGHT) * (len(pairs) + 1)), "white")
    draw = ImageDraw.Draw(grid)
    for c, name in enumerate(columns):
        draw.text((c * cell + 2, 2), "no style" if name == "none" else f"style: {name}", fill="black")
    for style in styles:
        top, left = centre_crop_origin(style.image.shape, cell, 1)
        thumbnail = style.image[top : top + cell, left : left + cell]
        grid.paste(Image.fromarray(thumbnail), (columns.index(style.name) * cell, LABEL_HEIGHT))
    for r, pair in enumerate(pairs, start=1):
        top, left = centre_crop_origin(pair.hr.shape, cell, 1)
        y = r * (cell + LABEL_HEIGHT)
        draw.text((2, y + 2), pair.name, fill="black")
        for c, name in enumerate(columns):
            crop = outputs[name][r - 1][top : top + cell, left : left + cell]
            grid.paste(Image.fromarray(crop), (c * cell, y + LABEL_HEIGHT))
    return grid


def evaluate_styles(model: keras.Model, pairs: list[ImagePair], styles: list[StyleImage], backbone: Backbone,
                    scale: int, cfg: EvaluateConfig, metrics_dir: Path, plots_dir: Path) -> dict:
    """Score the style generator on ``pairs``, next to the controls; write ``style.json`` and ``styles.png``."""
    renders = Renders(model)
    unstyled = renders.style(0)
    images = {s.name: s.image for s in styles}
    own = {s.name: renders.style(index) for index, s in enumerate(styles, start=1)}
    scores = scored(own, unstyled, pairs, images, scale)
    scores["controls"] = {}
    for name, control in CONTROLS.items():
        report = scored({s.name: renders.control(control, s.image) for s in styles}, unstyled, pairs, images, scale)
        scores["controls"][name] = {**headline(report), "statistics_rate": report["statistics_rate"],
                                    "follow": report["follow"]}
    outputs = {"none": [unstyled(p.lr) for p in pairs],
               **{name: [render(p.lr) for p in pairs] for name, render in own.items()}}
    scores["training_loss_reduction"] = training_loss_reduction(outputs, styles, backbone, scale)
    write_json(metrics_dir / STYLE_SCORES_FILE, scores)
    shown = pairs[: cfg.sample_images]
    cell = min(cfg.style_crop, *(min(p.hr.shape[:2]) for p in shown), *(min(s.image.shape[:2]) for s in styles))
    grid = style_grid(shown, {name: out[: len(shown)] for name, out in outputs.items()}, styles, cell)
    with atomic_path(plots_dir / STYLES_PLOT) as tmp:
        grid.save(tmp, format="PNG")
    return scores
