"""The ``evaluate`` stage: every generator variant against bicubic on the test split.

Writes ``eval.json`` (mean Y-PSNR, SSIM, detail ratio and sub-pixel grid strength per
method, gain over bicubic),
``speed.json`` (each variant's megapixels/s, kept apart so that the quality
figures, which decide registration, are byte-identical across reruns),
``per_image.csv`` and ``per_image.png`` (Y-PSNR per test image and method)
and a sample grid ``samples.png`` (LR ×nearest | bicubic | each variant | HR).
The style generator is scored by :mod:`gansr.style.evaluation`.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw
from tqdm import tqdm

from gansr.allocator import release_freed_memory
from gansr.atomic import atomic_path, write_json
from gansr.config import EvaluateConfig
from gansr.data.pairs import bicubic_downscale, mod_crop
from gansr.data.sources import folder_images
from gansr.errors import DataError
from gansr.imageio import read_rgb
from gansr.inference import Upscaler, bicubic_upscale
from gansr.layout import (
    EVAL_FILE,
    EXTRA_SETS_FILE,
    PER_IMAGE_FILE,
    PER_IMAGE_PLOT,
    SAMPLES_PLOT,
    SPEED_FILE,
)
from gansr.metrics import detail_ratio, periodic_artifact, streak_excess, y_psnr, y_ssim

BASELINE = "bicubic"
QUALITY_KEYS = ("y_psnr", "ssim", "detail", "grid", "streaks")
LABEL_HEIGHT = 16


@dataclass(frozen=True)
class ImagePair:
    """One test image: its name and decoded LR/HR arrays."""

    name: str
    lr: np.ndarray
    hr: np.ndarray


def iter_pairs(manifest: pd.DataFrame, pairs_dir: Path, split: str = "test") -> Iterator[ImagePair]:
    """Decode one split, one pair at a time; an empty split is an error, not a silent 0 dB."""
    rows = manifest[manifest["split"] == split]
    if rows.empty:
        raise DataError(f"the {split} split is empty: raise pairs.{split}_fraction or add images")
    for row in rows.itertuples():
        yield ImagePair(row.name, read_rgb(pairs_dir / row.lr_path)[0], read_rgb(pairs_dir / row.hr_path)[0])


def load_pairs(manifest: pd.DataFrame, pairs_dir: Path, split: str = "test") -> list[ImagePair]:
    """Decode one split (:func:`iter_pairs`) into memory."""
    return list(iter_pairs(manifest, pairs_dir, split))


def score_each(model: keras.Model, pairs: Iterable[ImagePair], scale: int,
               name: str = "model") -> tuple[dict[str, float], np.ndarray]:
    """``model``'s mean scores on ``pairs`` (:func:`score`), and its first output.

    Each pair is upscaled and scored as it comes and then let go, its memory
    handed back (:mod:`gansr.allocator`), so memory does not grow with the
    number of pairs.
    """
    upscale = Upscaler(model)
    tables, first = [], None
    for pair in pairs:
        outputs = {BASELINE: [bicubic_upscale(pair.lr, scale)], name: [upscale(pair.lr)]}
        tables.append(score_table(outputs, [pair], scale))
        first = outputs[name][0] if first is None else first
        del outputs, pair
        release_freed_memory()
    if first is None:
        raise DataError("no pairs to score")
    return mean_scores(pd.concat(tables, ignore_index=True), [BASELINE, name])[name], first


def mean_gain_db(model: keras.Model, pairs: Iterable[ImagePair], scale: int) -> tuple[float, float]:
    """Mean Y-PSNR of ``model`` on ``pairs`` and its mean gain over bicubic, in dB."""
    entry = score_each(model, pairs, scale)[0]
    return entry["y_psnr"], entry["gain_db"]


def evaluate(variants: dict[str, keras.Model], pairs: list[ImagePair], scale: int,
             cfg: EvaluateConfig, metrics_dir: Path, plots_dir: Path) -> tuple[dict, dict]:
    """Score each variant and bicubic on ``pairs``; write metrics and plots; return (quality, speed)."""
    outputs, seconds = upscale_with_each(variants, pairs, scale)
    scores, table = score(outputs, pairs, scale)
    summary = {"test_images": len(pairs), "scale": scale, **scores}
    speed = {"megapixels_per_s": throughput(seconds, pairs)}
    wide = table.pivot(index="image", columns="method", values="y_psnr")[list(outputs)].reset_index()
    write_json(metrics_dir / EVAL_FILE, summary)
    write_json(metrics_dir / SPEED_FILE, speed)
    with atomic_path(metrics_dir / PER_IMAGE_FILE) as tmp:
        wide.round(4).to_csv(tmp, index=False)
    with atomic_path(plots_dir / PER_IMAGE_PLOT) as tmp:
        per_image_chart(wide, scale).save(tmp, format="PNG")
    shown = pairs[: cfg.sample_images]
    # The crop must fit inside every shown image and map onto whole LR pixels.
    crop = min(cfg.sample_crop, *(min(p.hr.shape[:2]) for p in shown)) // scale * scale
    grid = sample_grid(shown, {m: out[: len(shown)] for m, out in outputs.items()}, scale, crop,
                       cfg.sample_zoom)
    with atomic_path(plots_dir / SAMPLES_PLOT) as tmp:
        grid.save(tmp, format="PNG")
    return summary, speed


def upscale_with_each(variants: dict[str, keras.Model], pairs: list[ImagePair],
                      scale: int) -> tuple[dict[str, list[np.ndarray]], dict[str, float]]:
    """Every pair's LR upscaled by bicubic and by each variant, and each variant's seconds."""
    outputs: dict[str, list[np.ndarray]] = {BASELINE: [bicubic_upscale(p.lr, scale) for p in pairs]}
    seconds: dict[str, float] = {}
    for name, model in variants.items():
        upscale = Upscaler(model)
        upscale(pairs[0].lr[:8, :8])  # one trace serves every size: timing measures steady-state speed
        started = time.perf_counter()
        outputs[name] = [upscale(p.lr) for p in tqdm(pairs, desc=f"evaluate {name}", leave=False)]
        seconds[name] = time.perf_counter() - started
    return outputs, seconds


def score(outputs: dict[str, list[np.ndarray]], pairs: list[ImagePair],
          scale: int) -> tuple[dict, pd.DataFrame]:
    """Mean Y-PSNR/SSIM/detail ratio/grid/streaks per method (and gain over bicubic), and the per-image table.

    ``grid`` is the RMS (grey levels) of the pattern repeating at the sub-pixel
    period, :func:`~gansr.metrics.periodic_artifact`; the HR images' own value
    is reported as ``hr_grid`` for reference. ``streaks`` is how many dB the
    output's strongest band of fine detail across rows or columns exceeds
    HR's, :func:`~gansr.metrics.streak_excess` (HR: 0).
    """
    table = score_table(outputs, pairs, scale)
    scores: dict = {"hr_grid": round(float(np.mean([periodic_artifact(p.hr, scale, scale) for p in pairs])), 4)}
    return {**scores, **mean_scores(table, list(outputs))}, table


def score_table(outputs: dict[str, list[np.ndarray]], pairs: list[ImagePair], scale: int) -> pd.DataFrame:
    """One row per image and method: its :data:`QUALITY_KEYS`."""
    return pd.DataFrame([
        {"image": p.name, "method": method, "y_psnr": y_psnr(sr[i], p.hr, scale),
         "ssim": y_ssim(sr[i], p.hr, scale), "detail": detail_ratio(sr[i], p.hr, scale),
         "grid": periodic_artifact(sr[i], scale, border=scale), "streaks": streak_excess(sr[i], p.hr, scale)}
        for method, sr in outputs.items()
        for i, p in enumerate(pairs)
    ])


def mean_scores(table: pd.DataFrame, methods: list[str]) -> dict[str, dict[str, float]]:
    """Each method's mean of every quality key in ``table`` and, but for bicubic, its gain over bicubic's mean."""
    means = table.groupby("method")[list(QUALITY_KEYS)].mean()
    scores = {}
    for method in methods:
        entry = {key: round(float(means.loc[method, key]), 4) for key in QUALITY_KEYS}
        if method != BASELINE:
            entry["gain_db"] = round(entry["y_psnr"] - float(means.loc[BASELINE, "y_psnr"]), 4)
        scores[method] = entry
    return scores


def throughput(seconds: dict[str, float], pairs: list[ImagePair]) -> dict[str, float]:
    """Output megapixels per second of each variant over ``pairs``."""
    megapixels = sum(p.hr.shape[0] * p.hr.shape[1] for p in pairs) / 1e6
    return {name: round(megapixels / elapsed, 3) for name, elapsed in seconds.items()}


def per_image_chart(wide: pd.DataFrame, scale: int) -> Image.Image:
    """Horizontal bars: each test image's Y-PSNR per method (a DVC plot that needs no network)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [column for column in wide.columns if column != "image"]
    values = wide[methods].replace(np.inf, np.nan)  # an exact output has no bar to draw
    fig, ax = plt.subplots(figsize=(7, 1.0 + 0.25 * len(wide) * len(methods)), dpi=100)
    height = 0.8 / len(methods)
    rows = np.arange(len(wide))
    for k, method in enumerate(methods):
        ax.barh(rows + k * height, values[method], height, label=method)
    ax.set_yticks(rows + 0.4 - height / 2, wide["image"])
    ax.invert_yaxis()
    ax.set_xlim(np.nanmin(values) - 1.0, np.nanmax(values) + 0.5)
    ax.set_title("Y-PSNR per test image")
    ax.set_xlabel(f"Y-PSNR (dB), ×{scale}, border {scale}")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return Image.open(buffer).convert("RGB")


def load_folder_set(folder: Path, scale: int) -> list[ImagePair]:
    """A benchmark folder of HR images (e.g. Set5) as pairs, made as the pairs stage makes them.

    HR is mod-cropped to the scale and LR is its antialiased bicubic
    downscale, the protocol behind the published Set5/Set14 tables.
    """
    pairs = []
    for image in folder_images(folder, setting="evaluate.extra_sets"):
        hr = mod_crop(read_rgb(image.path)[0], scale)
        pairs.append(ImagePair(image.name, bicubic_downscale(hr, scale), hr))
    return pairs


def evaluate_extra_sets(variants: dict[str, keras.Model], folders: tuple[str, ...], scale: int,
                        metrics_dir: Path) -> dict:
    """Score each variant and bicubic on each folder of ``evaluate.extra_sets``; write ``extra_sets.json``."""
    results = {}
    for folder in map(Path, folders):
        pairs = load_folder_set(folder, scale)
        scores, _ = score(upscale_with_each(variants, pairs, scale)[0], pairs, scale)
        results[folder.name] = {"images": len(pairs), **scores}
    write_json(metrics_dir / EXTRA_SETS_FILE, results)
    return results


def sample_grid(pairs: list[ImagePair], outputs: dict[str, list[np.ndarray]], scale: int,
                crop: int, zoom: int = 1) -> Image.Image:
    """Rows of centre crops: LR (nearest) | each method | HR, labelled, one row per image.

    Every cell shows the same ``crop``×``crop`` HR window, enlarged ``zoom``
    times by pixel repetition so that texture and blur can be told apart.
    """
    columns = ["LR (nearest)", *outputs, "HR"]
    cell = crop * zoom
    grid = Image.new("RGB", (cell * len(columns), (cell + LABEL_HEIGHT) * len(pairs)), "white")
    draw = ImageDraw.Draw(grid)
    for r, pair in enumerate(pairs):
        top, left = centre_crop_origin(pair.hr.shape, crop, scale)
        window = (slice(top, top + crop), slice(left, left + crop))
        lr_window = (slice(top // scale, (top + crop) // scale), slice(left // scale, (left + crop) // scale))
        crops = [pair.lr[lr_window], *(out[r][window] for out in outputs.values()), pair.hr[window]]
        y = r * (cell + LABEL_HEIGHT)
        for c, (label, pixels) in enumerate(zip(columns, crops)):
            image = Image.fromarray(pixels).resize((cell, cell), Image.Resampling.NEAREST)
            grid.paste(image, (c * cell, y + LABEL_HEIGHT))
            draw.text((c * cell + 2, y + 2), label, fill="black")
        # The image's name sits on a white tag in the LR cell's bottom-left corner.
        name_box = draw.textbbox((2, y + LABEL_HEIGHT + cell - 13), pair.name)
        draw.rectangle(name_box, fill="white")
        draw.text(name_box[:2], pair.name, fill="black")
    return grid


def centre_crop_origin(shape: tuple[int, ...], crop: int, scale: int) -> tuple[int, int]:
    """Top-left corner of a centred ``crop`` in an image of ``shape``, on the LR grid of ``scale``.

    Aligned to the scale so the LR window maps exactly onto the HR one.
    """
    top = max(0, (shape[0] - crop) // 2) // scale * scale
    left = max(0, (shape[1] - crop) // 2) // scale * scale
    return top, left
