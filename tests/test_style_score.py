"""The classical style score: distances, texture separation, and controls it must tell apart."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage import data

from gansr.style import score as style_score
from gansr.style.score import content_ssim, describe, style_distance, style_report

SIZE = 256  # photos and style images, as style.image_size in params.yaml
SCALE = 4


def _shorter_side(image: np.ndarray, size: int) -> np.ndarray:
    height, width = image.shape[:2]
    factor = size / min(height, width)
    return np.asarray(Image.fromarray(image).resize((round(width * factor), round(height * factor)),
                                                    Image.Resampling.BICUBIC))


def _rgb(grey: np.ndarray) -> np.ndarray:
    return np.stack([grey] * 3, axis=-1)


def _photo(image: np.ndarray) -> np.ndarray:
    """Centre SIZE × SIZE crop after resizing the shorter side to SIZE."""
    image = _shorter_side(image, SIZE)
    top, left = (image.shape[0] - SIZE) // 2, (image.shape[1] - SIZE) // 2
    return image[top:top + SIZE, left:left + SIZE]


def _downscale(image: np.ndarray) -> np.ndarray:
    """The LR input: antialiased bicubic ÷SCALE, as gansr.data.pairs makes it."""
    height, width = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((width // SCALE, height // SCALE), Image.Resampling.BICUBIC))


def _tile(style: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    reps = (-(-shape[0] // style.shape[0]), -(-shape[1] // style.shape[1]), 1)
    return np.tile(style, reps)[:shape[0], :shape[1]]


def _blend(photo: np.ndarray, style: np.ndarray) -> np.ndarray:
    """A stand-in for a styled output: half photo, half style texture."""
    return np.rint(0.5 * photo + 0.5 * _tile(style, photo.shape)).astype(np.uint8)


@pytest.fixture(scope="module")
def styles() -> dict[str, np.ndarray]:
    return {"gravel": _shorter_side(_rgb(data.gravel()), SIZE),
            "brick": _shorter_side(_rgb(data.brick()), SIZE),
            "colorwheel": _shorter_side(data.colorwheel(), SIZE)}


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [_photo(data.astronaut()), _photo(data.coffee()), _photo(data.chelsea())]


@pytest.fixture(scope="module")
def reports(photos, styles) -> dict[str, dict]:
    """style_report for the negative, positive and wrong-style controls (the same photos and LR)."""
    names = list(styles)
    lr = [_downscale(p) for p in photos]
    controls = {
        "unchanged": {s: photos for s in names},
        "own_style": {s: [_blend(p, styles[s]) for p in photos] for s in names},
        "next_style": {s: [_blend(p, styles[names[(i + 1) % len(names)]]) for p in photos]
                       for i, s in enumerate(names)},
    }
    return {name: style_report(photos, styled, styles, lr) for name, styled in controls.items()}


def test_distance_is_zero_to_itself_symmetric_and_bounded(styles, photos) -> None:
    gravel, brick, photo = describe(styles["gravel"]), describe(styles["brick"]), describe(photos[0])
    assert style_distance(gravel, gravel) == 0.0
    assert style_distance(gravel, brick) > 0.2
    assert style_distance(gravel, photo) == style_distance(photo, gravel)
    assert all(0.0 <= style_distance(a, b) <= 1.0 for a in (gravel, brick, photo) for b in (gravel, brick, photo))
    assert all(p.sum() == pytest.approx(1.0) for p in gravel.components().values())


def test_crops_of_one_texture_are_closer_to_each_other_than_to_any_other_image(styles) -> None:
    images = {"gravel": _rgb(data.gravel()), "brick": _rgb(data.brick()), "colorwheel": styles["colorwheel"],
              "photo": data.astronaut()}
    # Two non-overlapping 128 × 128 crops of each: top-left and bottom-right.
    first = {n: describe(image[:128, :128]) for n, image in images.items()}
    second = {n: describe(image[-128:, -128:]) for n, image in images.items()}
    for texture in ("gravel", "brick", "colorwheel"):
        same = style_distance(first[texture], second[texture])
        assert all(same < style_distance(first[texture], second[other]) for other in images if other != texture)
    assert style_distance(first["brick"], second["brick"]) < style_distance(first["brick"], second["gravel"]) / 2


def test_a_flat_image_is_far_from_a_texture_in_contrast(styles) -> None:
    flat = describe(np.full((SIZE, SIZE, 3), 128, np.uint8))
    gravel = describe(styles["gravel"])
    assert all(np.isfinite(p).all() for p in flat.components().values())
    assert flat.texture["contrast"][0] == 1.0  # every block in the flat bin
    assert gravel.texture["contrast"][0] < 0.05
    assert style_distance(flat, gravel) > 0.5


def test_unchanged_outputs_did_not_move_towards_any_style(reports) -> None:
    report = reports["unchanged"]
    assert report["mean_moved"] == 0.0
    assert report["own_style_rate"] == 0.0
    assert report["min_content_ssim"] > 0.99
    assert report["pairs"] == 9


def test_blending_in_its_own_style_moves_every_output_towards_that_style(reports) -> None:
    report, unchanged = reports["own_style"], reports["unchanged"]
    assert report["own_style_rate"] == 1.0
    for name, entry in report["styles"].items():
        assert entry["moved"] > 0.1
        assert entry["towards_own"] == 1.0
        assert entry["distance_styled"] < entry["distance_unstyled"] == unchanged["styles"][name]["distance_unstyled"]
        # Half the photo is kept: less content than unchanged, far more than a pure texture (< 0.3 below).
        assert 0.5 < entry["content_ssim"] < unchanged["styles"][name]["content_ssim"]


def test_a_pair_counts_only_where_its_style_follows_the_photo(photos, styles) -> None:
    lr = [_downscale(p) for p in photos]
    blended = {s: [_blend(p, styles[s]) for p in photos] for s in styles}
    # The blends lie over the photo: say that gravel's two first ones do not follow it.
    follows = {s: [s != "gravel" or i == 2 for i in range(len(photos))] for s in styles}
    report = style_report(photos, blended, styles, lr, follows)
    assert report["statistics_rate"] == 1.0  # the statistics alone count every blend
    assert report["own_style_rate"] == pytest.approx(7 / 9, abs=1e-4)
    assert report["styles"]["gravel"]["follows"] == pytest.approx(1 / 3, abs=1e-4)


def test_min_content_ssim_is_the_worst_single_pair_not_the_worst_style_mean(photos, styles) -> None:
    """One photo replaced by pure texture drags the minimum down though its style's mean stays high."""
    lr = [_downscale(p) for p in photos]
    styled = {s: list(photos) for s in styles}
    styled["brick"][0] = _tile(styles["brick"], photos[0].shape)
    report = style_report(photos, styled, styles, lr)
    lost = content_ssim(styled["brick"][0], lr[0])
    assert lost < 0.3
    assert report["min_content_ssim"] == round(lost, 4)
    assert report["styles"]["brick"]["content_ssim"] > 0.6 > lost


def test_blending_in_the_wrong_style_is_not_counted_as_the_right_one(reports) -> None:
    wrong, right = reports["next_style"], reports["own_style"]
    assert wrong["own_style_rate"] <= 0.2
    assert wrong["mean_moved"] < right["mean_moved"] - 0.15
    assert all(wrong["styles"][s]["moved"] < right["styles"][s]["moved"] for s in right["styles"])


def test_content_ssim_is_high_for_the_photo_and_low_for_a_pure_texture(photos, styles) -> None:
    for photo in photos:
        lr = _downscale(photo)
        assert content_ssim(photo, lr) > 0.95
        assert all(content_ssim(_tile(style, photo.shape), lr) < 0.3 for style in styles.values())


def test_style_report_describes_each_image_once(monkeypatch, photos, styles) -> None:
    calls = []

    def counting(image: np.ndarray) -> style_score.StyleDescriptor:
        calls.append(image.shape)
        return describe(image)

    monkeypatch.setattr(style_score, "describe", counting)
    small = [p[:64, :64] for p in photos[:2]]
    style_report(small, {s: small for s in styles}, styles, [_downscale(p) for p in small])
    assert len(calls) == len(small) + len(styles) + len(styles) * len(small)


@pytest.mark.parametrize("image, problem", [
    (np.zeros((64, 64), np.uint8), "H×W×3"),
    (np.zeros((64, 64, 4), np.uint8), "H×W×3"),
    (np.zeros((64, 64, 3), np.float32), "uint8"),
    (np.zeros((8, 64, 3), np.uint8), "larger than"),
])
def test_describe_rejects_what_is_not_an_rgb_uint8_image(image: np.ndarray, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        describe(image)
