"""The evaluate stage: every variant against bicubic, per image and on average, with a sample grid."""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gansr.config import DataConfig, EvaluateConfig, PairsConfig, parse_params
from gansr.data.fetch import fetch_raw
from gansr.data.pairs import bicubic_downscale, build_pairs, read_manifest
from gansr.errors import ConfigError, DataError
from gansr.evaluation import (
    BASELINE,
    LABEL_HEIGHT,
    ImagePair,
    evaluate,
    evaluate_extra_sets,
    load_folder_set,
    load_pairs,
)
from gansr.inference import bicubic_upscale
from gansr.metrics import y_psnr
from gansr.models.generator import build_generator

SCALE = 4


def smooth_image(height: int, width: int, seed: int) -> np.ndarray:
    """A photo-like image: coarse random colours, bicubic-interpolated."""
    coarse = np.random.default_rng(seed).integers(0, 256, (height // 4, width // 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC))


def pair(name: str, height: int, width: int, seed: int) -> ImagePair:
    hr = smooth_image(height, width, seed)
    return ImagePair(name, bicubic_downscale(hr, SCALE), hr)


def untrained_generator() -> keras.Model:
    """Starts as exactly bicubic (zero-initialised sub-pixel head)."""
    return build_generator(SCALE, channels=4, blocks=1)


def scrambled_generator() -> keras.Model:
    """Random weights everywhere: far worse than bicubic."""
    model = build_generator(SCALE, channels=4, blocks=1)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in model.get_weights()])
    return model


def nearest_upsampler() -> keras.Model:
    image = keras.Input((None, None, 3))
    return keras.Model(image, keras.layers.UpSampling2D(SCALE, interpolation="nearest")(image))


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("eval")
    pairs = [pair("wide", 36, 44, 1), pair("square", 32, 32, 2)]
    variants = {"untrained": untrained_generator(), "scrambled": scrambled_generator()}
    cfg = EvaluateConfig(sample_images=3, sample_crop=96, sample_zoom=1)
    summary, speed = evaluate(variants, pairs, SCALE, cfg, out / "metrics", out / "plots")
    return {"summary": summary, "speed": speed, "pairs": pairs, "metrics": out / "metrics", "plots": out / "plots"}


def test_eval_json_has_every_method_and_the_gain_over_bicubic(scored: dict) -> None:
    summary = json.loads((scored["metrics"] / "eval.json").read_text())
    assert summary == scored["summary"]
    assert summary["test_images"] == 2 and summary["scale"] == SCALE
    assert set(summary[BASELINE]) == {"y_psnr", "ssim", "detail", "grid", "streaks"}  # no gain over itself
    assert summary["hr_grid"] >= 0
    for method in ("untrained", "scrambled"):
        entry = summary[method]
        assert set(entry) == {"y_psnr", "ssim", "detail", "grid", "streaks", "gain_db"}
        assert entry["gain_db"] == pytest.approx(entry["y_psnr"] - summary[BASELINE]["y_psnr"], abs=2e-4)
    assert summary["untrained"]["gain_db"] == 0.0  # an untrained generator is bicubic
    assert summary["untrained"]["ssim"] == summary[BASELINE]["ssim"]
    assert summary["scrambled"]["gain_db"] < -3
    assert 0 < summary["scrambled"]["ssim"] < summary[BASELINE]["ssim"] <= 1


def test_throughput_is_kept_apart_from_the_quality_figures(scored: dict) -> None:
    speed = json.loads((scored["metrics"] / "speed.json").read_text())
    assert speed == scored["speed"]
    assert set(speed["megapixels_per_s"]) == {"untrained", "scrambled"}
    assert all(value > 0 for value in speed["megapixels_per_s"].values())


def test_per_image_chart_is_a_png_plot(scored: dict) -> None:
    with Image.open(scored["plots"] / "per_image.png") as chart:
        assert chart.format == "PNG" and chart.width >= 600 and chart.height >= 100


def test_bicubic_score_is_the_mean_y_psnr_of_bicubic_upscaling(scored: dict) -> None:
    expected = [y_psnr(bicubic_upscale(p.lr, SCALE), p.hr, SCALE) for p in scored["pairs"]]
    assert scored["summary"][BASELINE]["y_psnr"] == pytest.approx(np.mean(expected), abs=1e-4)
    assert 20 < min(expected)  # smooth images: bicubic does well


def test_per_image_csv_has_one_row_per_image_and_one_column_per_method(scored: dict) -> None:
    table = pd.read_csv(scored["metrics"] / "per_image.csv")
    assert list(table.columns) == ["image", BASELINE, "untrained", "scrambled"]
    assert sorted(table["image"]) == ["square", "wide"]
    by_name = table.set_index("image")
    for p in scored["pairs"]:
        assert by_name.loc[p.name, BASELINE] == pytest.approx(
            y_psnr(bicubic_upscale(p.lr, SCALE), p.hr, SCALE), abs=1e-4)
    assert (by_name["scrambled"] < by_name[BASELINE]).all()
    assert by_name[BASELINE].mean() == pytest.approx(scored["summary"][BASELINE]["y_psnr"], abs=2e-4)


def test_sample_grid_shows_aligned_centre_crops_of_every_method(scored: dict) -> None:
    grid = np.asarray(Image.open(scored["plots"] / "samples.png"))
    # Columns: LR (nearest) | bicubic | untrained | scrambled | HR; the crop shrinks to the
    # smallest image (32) since sample_crop (96) does not fit.
    crop, columns = 32, 5
    assert grid.shape == ((crop + LABEL_HEIGHT) * 2, crop * columns, 3)
    wide = scored["pairs"][0]  # 36×44: centre crop at top 0, left 4 (aligned to the scale)
    cells = grid[LABEL_HEIGHT:LABEL_HEIGHT + crop]
    np.testing.assert_array_equal(cells[:, 4 * crop:], wide.hr[0:32, 4:36])
    np.testing.assert_array_equal(cells[:, crop:2 * crop], bicubic_upscale(wide.lr, SCALE)[0:32, 4:36])
    lr_zoom = np.repeat(np.repeat(wide.lr[0:8, 1:9], SCALE, axis=0), SCALE, axis=1)
    untagged = slice(0, crop // 2)  # the image's name is tagged in the LR cell's bottom-left corner
    np.testing.assert_array_equal(cells[untagged, :crop], lr_zoom[untagged])


def test_sample_grid_respects_the_configured_count_and_crop(tmp_path: Path) -> None:
    pairs = [pair("a", 40, 40, 3), pair("b", 40, 48, 4), pair("c", 48, 40, 5)]
    evaluate({"untrained": untrained_generator()}, pairs, SCALE,
             EvaluateConfig(sample_images=1, sample_crop=30, sample_zoom=3), tmp_path / "m", tmp_path / "p")
    with Image.open(tmp_path / "p" / "samples.png") as grid:
        assert grid.size == (28 * 3 * 4, 28 * 3 + LABEL_HEIGHT)  # 30 rounded down to whole LR pixels, ×3
        hr_cell = np.asarray(grid)[LABEL_HEIGHT:, 28 * 3 * 3:]
    centre = pairs[0].hr[4:32, 4:32]  # the centre crop, aligned to the scale
    np.testing.assert_array_equal(hr_cell, np.repeat(np.repeat(centre, 3, 0), 3, 1))
    assert len(pd.read_csv(tmp_path / "m" / "per_image.csv")) == 3  # every image is still scored


def test_a_perfect_generator_scores_infinite_psnr(tmp_path: Path) -> None:
    # HR made of 4×4 blocks of LR pixels: nearest-neighbour upscaling is exact, bicubic is not.
    pairs = []
    for i, name in enumerate(["p", "q"]):
        lr = smooth_image(32, 32, i)[::4, ::4].copy()
        pairs.append(ImagePair(name, lr, np.repeat(np.repeat(lr, SCALE, axis=0), SCALE, axis=1)))
    summary, _ = evaluate({"nearest": nearest_upsampler()}, pairs, SCALE, EvaluateConfig(sample_crop=16),
                          tmp_path / "m", tmp_path / "p")
    assert summary["nearest"]["y_psnr"] == math.inf and summary["nearest"]["ssim"] == pytest.approx(1.0)
    assert math.isfinite(summary[BASELINE]["y_psnr"]) and summary["nearest"]["gain_db"] == math.inf
    assert json.loads((tmp_path / "m" / "eval.json").read_text()) == summary


def test_a_sample_crop_below_the_scale_is_refused_at_load_time() -> None:
    with pytest.raises(ConfigError, match="evaluate.sample_crop"):
        parse_params({"scale": 4, "evaluate": {"sample_crop": 2}})
    parse_params({"scale": 4, "evaluate": {"sample_crop": 4}})  # one LR pixel per cell is enough


@pytest.fixture(scope="module")
def pairs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    (root / "photos").mkdir()
    for i in range(4):
        Image.fromarray(smooth_image(32, 40, 10 + i)).save(root / "photos" / f"img{i}.png")
    fetch_raw(DataConfig(source="folder", folder=str(root / "photos")), root / "raw")
    build_pairs(root / "raw", root / "pairs", SCALE, 0, PairsConfig(0.0, 0.5, 16))
    return root / "pairs"


def test_test_pairs_are_decoded_from_the_test_split(pairs_dir: Path) -> None:
    manifest = read_manifest(pairs_dir)
    pairs = load_pairs(manifest, pairs_dir)
    assert [p.name for p in pairs] == list(manifest.loc[manifest["split"] == "test", "name"])
    assert len(pairs) == 2
    for p in pairs:
        assert p.hr.shape == (32, 40, 3) and p.lr.shape == (8, 10, 3)
        assert p.hr.dtype == p.lr.dtype == np.uint8
        np.testing.assert_array_equal(p.lr, bicubic_downscale(p.hr, SCALE))


def test_an_empty_test_split_is_an_error_not_zero_db(pairs_dir: Path) -> None:
    manifest = read_manifest(pairs_dir).assign(split="train")
    with pytest.raises(DataError, match="test split is empty"):
        load_pairs(manifest, pairs_dir)


def test_extra_sets_are_scored_with_the_test_protocol(tmp_path: Path) -> None:
    folder = tmp_path / "Set2"
    folder.mkdir()
    for seed, (height, width) in enumerate([(30, 37), (41, 33)]):
        Image.fromarray(smooth_image(height, width, seed)).save(folder / f"img{seed}.png")
    pairs = load_folder_set(folder, 4)
    assert [p.hr.shape[:2] for p in pairs] == [(28, 36), (40, 32)]  # mod-cropped to the scale
    np.testing.assert_array_equal(pairs[0].lr, bicubic_downscale(pairs[0].hr, 4))
    results = evaluate_extra_sets({"psnr": untrained_generator()}, (str(folder),), 4, tmp_path)
    assert json.loads((tmp_path / "extra_sets.json").read_text()) == results
    assert results["Set2"]["images"] == 2
    assert results["Set2"]["psnr"]["gain_db"] == pytest.approx(0, abs=1e-3)  # untrained = bicubic
    assert evaluate_extra_sets({}, (), 4, tmp_path) == {}


def test_extra_sets_must_have_distinct_names() -> None:
    with pytest.raises(ConfigError, match="evaluate.extra_sets"):
        EvaluateConfig(extra_sets=("a/Set5", "b/Set5"))


def test_a_missing_extra_set_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="evaluate.extra_sets"):
        load_folder_set(tmp_path / "Set14", 4)
