"""The degraded test split: the test photos as phones and the web deliver them, scored like the clean ones.

The clean test split asks a generator to undo a bicubic downscale and
nothing else. Real photos also carry sensor noise, JPEG blocks and blur, and
a generator that sharpens what it sees turns those into strokes and
ringing. Here every test image's LR is made again in four fixed versions:

- ``noise``: Gaussian colour noise of σ 5–20 grey levels;
- ``jpeg``: JPEG at quality 30–80;
- ``blur``: an isotropic Gaussian blur of σ 0.8–2 HR pixels before the downscale;
- ``all``: the three, in that order (blur → downscale → noise → JPEG).

Each draw depends only on the seed, the version and the image's name
(:func:`~gansr.data.degradations.degradation_steps`), so the split is the
same on every run. The HR target stays the clean photo, so a score says
how much of the photo a generator restores from that input; the bicubic
upscale of the same degraded LR is the baseline it must beat. Every output
also gets a no-reference score, NIQE (:mod:`gansr.niqe`), which needs no HR
and so also works on a user's own photos; its controls are the clean HR
(natural) and the bicubic upscale of the noisy input (not).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from gansr.atomic import atomic_path, write_json
from gansr.config import EvaluateConfig
from gansr.data.degradations import VERSIONS, apply_steps, degradation_steps
from gansr.evaluation import BASELINE, ImagePair, sample_grid, score, upscale_with_each
from gansr.layout import REAL_PLOT, REAL_SCORES_FILE
from gansr.niqe import PristineModel, niqe

REPORTED = ("y_psnr", "ssim", "gain_db")  # per method and version; gain_db is over bicubic of the same input


def degraded_pairs(pairs: list[ImagePair], version: str, scale: int, seed: int) -> list[ImagePair]:
    """``pairs`` with each LR made again from its HR in ``version``; the HR stays the clean target."""
    return [ImagePair(p.name, apply_steps(p.hr, degradation_steps(version, p.hr.shape[:2], scale, seed, p.name)),
                      p.hr) for p in pairs]


def evaluate_degraded(variants: dict[str, keras.Model], pairs: list[ImagePair], scale: int, seed: int,
                      pristine: PristineModel | None, cfg: EvaluateConfig, metrics_dir: Path,
                      plots_dir: Path) -> dict:
    """Score bicubic and each variant on every degraded version; write ``real.json`` and ``real.png``.

    Per version and method: Y-PSNR, SSIM, gain over bicubic and mean NIQE
    against ``pristine``; ``niqe_hr`` is the clean HR images' mean NIQE,
    and ``niqe_controls_ranked`` says whether it is below the noisy
    bicubic upscale's, as a working score must rank them. Without a
    pristine model (too few clean photos to fit one) the NIQE figures are
    left out. The picture shows, per version, the first test image's
    centre crop: the degraded input, bicubic, each variant and HR, enlarged
    as ``plots/samples.png`` is.
    """
    report: dict = {"test_images": len(pairs), "scale": scale, "versions": {}}

    def naturalness(images: list[np.ndarray]) -> dict[str, float]:
        return {} if pristine is None else {"niqe": round(float(np.mean([niqe(i, pristine) for i in images])), 4)}

    if pristine is not None:
        report |= {"niqe_hr": naturalness([p.hr for p in pairs])["niqe"], "niqe_pristine_patches": pristine.patches}
    shown: list[ImagePair] = []
    shown_outputs: dict[str, list[np.ndarray]] = {}
    for version in VERSIONS:
        degraded = degraded_pairs(pairs, version, scale, seed)
        outputs, _ = upscale_with_each(variants, degraded, scale)
        scores, _ = score(outputs, degraded, scale)
        report["versions"][version] = {
            method: {**{key: scores[method][key] for key in REPORTED if key in scores[method]}, **naturalness(images)}
            for method, images in outputs.items()}
        shown.append(ImagePair(f"{degraded[0].name}: {version}", degraded[0].lr, degraded[0].hr))
        for method, images in outputs.items():
            shown_outputs.setdefault(method, []).append(images[0])
    if pristine is not None:
        report["niqe_controls_ranked"] = report["niqe_hr"] < report["versions"]["noise"][BASELINE]["niqe"]
    write_json(metrics_dir / REAL_SCORES_FILE, report)
    crop = min(cfg.sample_crop, *(min(p.hr.shape[:2]) for p in shown)) // scale * scale
    with atomic_path(plots_dir / REAL_PLOT) as tmp:
        sample_grid(shown, shown_outputs, scale, crop, cfg.sample_zoom).save(tmp, format="PNG")
    return report
