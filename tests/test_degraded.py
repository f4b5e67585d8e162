"""The degraded test split: fixed noisy, JPEG, blurred and combined LR versions, scored against bicubic of each."""

import json
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pytest
import skimage.data
from PIL import Image

from gansr.config import EvaluateConfig
from gansr.data.degradations import BLUR_SIGMA, JPEG_QUALITY, NOISE_SIGMA, VERSIONS, degradation_steps
from gansr.data.pairs import bicubic_downscale
from gansr.degraded import degraded_pairs, evaluate_degraded
from gansr.evaluation import ImagePair
from gansr.niqe import fit_pristine
from gansr.reporting import format_real_scores

SCALE = 4


@pytest.fixture(scope="module")
def pairs() -> list[ImagePair]:
    """Two real photos, cropped to 128² so the split stays quick."""
    photos = {"astronaut": skimage.data.astronaut()[64:192, 160:288], "coffee": skimage.data.coffee()[96:224, 96:224]}
    return [ImagePair(name, bicubic_downscale(hr, SCALE), hr) for name, hr in photos.items()]


def high_frequency(image: np.ndarray) -> float:
    """RMS of the Laplacian of the grey image: how much fine detail (or noise) it holds."""
    grey = image.astype(np.float64).mean(axis=-1)
    return float(np.sqrt(np.mean((4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2]
                                  - grey[1:-1, 2:]) ** 2)))


def test_each_version_applies_its_own_degradations_drawn_within_range(pairs: list[ImagePair]) -> None:
    for version, ops in VERSIONS.items():
        steps = degradation_steps(version, (128, 128), SCALE, seed=0, name="astronaut")
        assert [s["op"] for s in steps] == [op for op in ("blur", "resize", "noise", "jpeg")
                                            if op == "resize" or op in ops]
        for step in steps:
            if step["op"] == "blur":
                assert BLUR_SIGMA[0] <= step["sigma_x"] == step["sigma_y"] <= BLUR_SIGMA[1]
            if step["op"] == "noise":
                assert NOISE_SIGMA[0] <= step["sigma"] <= NOISE_SIGMA[1]
            if step["op"] == "jpeg":
                assert JPEG_QUALITY[0] <= step["quality"] <= JPEG_QUALITY[1]
    with pytest.raises(ValueError, match="unknown degradation version 'rain'"):
        degradation_steps("rain", (128, 128), SCALE, seed=0, name="astronaut")


def test_the_split_is_fixed_by_the_seed_and_differs_per_image(pairs: list[ImagePair]) -> None:
    first, again, other_seed = (degraded_pairs(pairs, "all", SCALE, seed) for seed in (0, 0, 1))
    assert all(np.array_equal(a.lr, b.lr) for a, b in zip(first, again))
    assert not any(np.array_equal(a.lr, b.lr) for a, b in zip(first, other_seed))
    assert degradation_steps("noise", (128, 128), SCALE, 0, "astronaut") != degradation_steps(
        "noise", (128, 128), SCALE, 0, "coffee")


def test_noise_adds_detail_blur_removes_it_and_the_hr_target_stays_clean(pairs: list[ImagePair]) -> None:
    clean = [high_frequency(p.lr) for p in pairs]
    noisy, blurred = ([high_frequency(p.lr) for p in degraded_pairs(pairs, v, SCALE, 0)] for v in ("noise", "blur"))
    assert all(n > c for n, c in zip(noisy, clean)) and all(b < c for b, c in zip(blurred, clean))
    for version in VERSIONS:
        for pair, degraded in zip(pairs, degraded_pairs(pairs, version, SCALE, 0)):
            assert degraded.lr.shape == pair.lr.shape and degraded.lr.dtype == np.uint8
            assert np.array_equal(degraded.hr, pair.hr) and not np.array_equal(degraded.lr, pair.lr)


def test_evaluate_degraded_scores_every_version_against_bicubic_of_the_same_input(
        pairs: list[ImagePair], random_generator: Callable[..., keras.Model], tmp_path: Path) -> None:
    pristine = fit_pristine([skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.rocket()])
    report = evaluate_degraded({"gan": random_generator(0, scale=SCALE)}, pairs, SCALE, 0, pristine,
                               EvaluateConfig(sample_crop=32, sample_zoom=2), tmp_path, tmp_path)
    assert json.loads((tmp_path / "real.json").read_text()) == report
    assert list(report["versions"]) == list(VERSIONS)
    assert report["niqe_controls_ranked"] and report["niqe_pristine_patches"] == pristine.patches
    for methods in report["versions"].values():
        assert set(methods) == {"bicubic", "gan"} and "gain_db" not in methods["bicubic"]
        assert all(entry["niqe"] > 0 for entry in methods.values())
        gan = methods["gan"]
        assert gan["gain_db"] == pytest.approx(gan["y_psnr"] - methods["bicubic"]["y_psnr"], abs=1e-3)
    with Image.open(tmp_path / "real.png") as picture:  # one row per version: input, bicubic, gan, HR
        assert picture.size == (4 * 32 * 2, len(VERSIONS) * (32 * 2 + 16))
    table = format_real_scores(json.loads((tmp_path / "real.json").read_text()))  # its keys sorted
    assert [line.split()[0] for line in table.splitlines()[:-1]] == list(VERSIONS)


def test_without_a_pristine_model_the_split_is_scored_without_niqe(
        pairs: list[ImagePair], random_generator: Callable[..., keras.Model], tmp_path: Path) -> None:
    report = evaluate_degraded({"gan": random_generator(0, scale=SCALE)}, pairs, SCALE, 0, None,
                               EvaluateConfig(sample_crop=32, sample_zoom=2), tmp_path, tmp_path)
    assert "niqe_hr" not in report and "niqe_controls_ranked" not in report
    assert all("niqe" not in entry for methods in report["versions"].values() for entry in methods.values())
    assert "NIQE" not in format_real_scores(report)
