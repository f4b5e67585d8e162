"""Realistic degradations: Real-ESRGAN's blur, resize, noise and JPEG, drawn reproducibly."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gansr.config import PairsConfig, RealConfig, parse_params
from gansr.data.degradations import (
    apply_steps,
    crop_steps,
    degradation_rng,
    degrade_crop,
    draw_steps,
    gaussian_kernel,
)
from gansr.errors import ConfigError

CFG = PairsConfig(degradation="realistic")


def _random_image(height: int = 40, width: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _spread(kernel: np.ndarray, axis: int) -> float:
    """Standard deviation of the kernel's mass along one axis (0: rows/y, 1: columns/x)."""
    radius = kernel.shape[0] // 2
    offsets = np.arange(-radius, radius + 1)
    return math.sqrt(float((kernel.sum(axis=1 - axis) * offsets**2).sum()))


def test_kernels_are_normalised_and_elongated_along_their_angle():
    isotropic = gaussian_kernel(21, 2.0, 2.0, 0.0)
    assert isotropic.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(isotropic, isotropic.T, atol=1e-15)
    assert _spread(isotropic, 1) == pytest.approx(2.0, rel=0.01)

    wide = gaussian_kernel(21, 3.0, 1.0, 0.0)
    assert _spread(wide, 1) == pytest.approx(3.0, rel=0.05) and _spread(wide, 0) == pytest.approx(1.0, rel=0.01)
    np.testing.assert_allclose(gaussian_kernel(21, 3.0, 1.0, math.pi / 2), wide.T, atol=1e-12)


def test_blur_is_the_reflect_padded_filter_of_the_kernel():
    image = _random_image()
    step = {"op": "blur", "kernel_size": 7, "sigma_x": 2.0, "sigma_y": 0.7, "angle": 0.6}
    kernel = gaussian_kernel(7, 2.0, 0.7, 0.6)
    padded = np.pad(image.astype(np.float64), ((3, 3), (3, 3), (0, 0)), mode="reflect")
    direct = sum(kernel[dy, dx] * padded[dy:dy + 40, dx:dx + 48] for dy in range(7) for dx in range(7))
    blurred = apply_steps(image, [step]).astype(float)
    assert np.abs(blurred - np.rint(direct)).max() <= 1  # FFT rounding may tip a .5 either way
    assert np.abs(blurred - np.rint(direct)).mean() < 0.01


def test_blur_keeps_a_flat_image_flat_up_to_its_edges():
    flat = np.full((20, 24, 3), 200, np.uint8)
    step = {"op": "blur", "kernel_size": 21, "sigma_x": 3.0, "sigma_y": 3.0, "angle": 0.0}
    np.testing.assert_array_equal(apply_steps(flat, [step]), flat)


@pytest.mark.parametrize("gray", [True, False])
def test_noise_has_its_sigma_and_is_gray_or_colour(gray):
    image = np.full((64, 64, 3), 128, np.uint8)
    noisy = apply_steps(image, [{"op": "noise", "sigma": 10.0, "gray": gray, "seed": 3}]).astype(float) - 128
    assert noisy.std() == pytest.approx(10.0, rel=0.05)
    same_in_rgb = np.array_equal(noisy[..., 0], noisy[..., 1]) and np.array_equal(noisy[..., 1], noisy[..., 2])
    assert same_in_rgb is gray


def test_lower_jpeg_quality_loses_more():
    image = apply_steps(_random_image(64, 64), [{"op": "blur", "kernel_size": 5, "sigma_x": 1.0,
                                                 "sigma_y": 1.0, "angle": 0.0}])
    errors = [np.abs(apply_steps(image, [{"op": "jpeg", "quality": q}]).astype(float) - image).mean()
              for q in (90, 50, 10)]
    assert errors == sorted(errors) and errors[0] > 0


def test_resize_modes_give_the_requested_size():
    image = _random_image(40, 48)
    for mode in ("area", "bilinear", "bicubic"):
        out = apply_steps(image, [{"op": "resize", "mode": mode, "height": 10, "width": 12}])
        assert out.shape == (10, 12, 3) and out.dtype == np.uint8


def test_draws_stay_in_the_configured_ranges():
    cfg = PairsConfig(degradation="realistic", second_order=True, blur_kernel_size=(5, 9),
                      blur_sigma=(0.5, 1.5), noise_sigma=(2.0, 4.0), jpeg_quality=(60, 70))
    for seed in range(40):
        steps = draw_steps(np.random.default_rng(seed), (97, 130), 4, cfg)
        assert [s["op"] for s in steps] == ["blur", "resize", "noise", "jpeg"] * 2
        for step in steps:
            match step["op"]:
                case "blur":
                    assert step["kernel_size"] in (5, 7, 9)
                    assert 0.5 <= min(step["sigma_x"], step["sigma_y"]) <= max(step["sigma_x"], step["sigma_y"]) <= 1.5
                case "noise":
                    assert 2.0 <= step["sigma"] <= 4.0
                case "jpeg":
                    assert 60 <= step["quality"] <= 70
        first, last = steps[1], steps[5]
        assert (last["height"], last["width"]) == (24, 32)  # LR = HR // scale
        assert 24 <= first["height"] <= 97 and 32 <= first["width"] <= 130
        assert last["mode"] in ("area", "bilinear", "bicubic")


def test_first_order_only_goes_straight_to_lr_size():
    steps = draw_steps(np.random.default_rng(0), (64, 48), 4, CFG)
    assert [s["op"] for s in steps] == ["blur", "resize", "noise", "jpeg"]
    assert (steps[1]["height"], steps[1]["width"]) == (16, 12)


def test_isotropic_and_anisotropic_kernels_are_both_drawn():
    kinds = {draw_steps(np.random.default_rng(seed), (64, 64), 4, CFG)[0]["sigma_x"]
             == draw_steps(np.random.default_rng(seed), (64, 64), 4, CFG)[0]["sigma_y"] for seed in range(30)}
    assert kinds == {True, False}
    never = PairsConfig(degradation="realistic", anisotropic_prob=0.0)
    assert all(draw_steps(np.random.default_rng(s), (64, 64), 4, never)[0]["angle"] == 0.0 for s in range(10))


def test_the_generator_depends_on_seed_and_name_only():
    def first_draws(seed: int, name: str) -> list[float]:
        return degradation_rng(seed, name).random(4).tolist()

    assert first_draws(0, "cat") == first_draws(0, "cat")
    assert first_draws(0, "cat") != first_draws(0, "dog")
    assert first_draws(0, "cat") != first_draws(1, "cat")


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ({"degradation": "fancy"}, "pairs.degradation must be one of bicubic, realistic"),
        ({"second_order": "yes"}, "pairs.second_order must be a bool"),
        ({"blur_sigma": [3.0]}, "pairs.blur_sigma must be a list of 2 values"),
        ({"blur_sigma": [3.0, 1.0]}, r"pairs.blur_sigma must be \[min, max\]"),
        ({"blur_kernel_size": [8, 21]}, "pairs.blur_kernel_size must be odd"),
        ({"jpeg_quality": [30, 101]}, r"pairs.jpeg_quality must be \[min, max\] with 1 <= min"),
        ({"jpeg_quality": [30.5, 90]}, r"pairs.jpeg_quality\[0\] must be a int"),
        ({"noise_sigma": [-1, 5]}, r"pairs.noise_sigma must be \[min, max\]"),
        ({"gray_noise_prob": 1.5}, r"pairs.gray_noise_prob must be in \[0, 1\]"),
    ],
)
def test_bad_degradation_settings_name_the_key(pairs, message):
    with pytest.raises(ConfigError, match=message):
        parse_params({"pairs": pairs})


def test_yaml_ranges_and_switches_parse():
    params = parse_params({"pairs": {"degradation": "realistic", "second_order": True,
                                     "blur_sigma": [0.5, 2], "jpeg_quality": [40, 90]}})
    assert params.pairs.second_order is True
    assert params.pairs.blur_sigma == (0.5, 2.0) and params.pairs.jpeg_quality == (40, 90)


def test_crop_steps_take_each_step_with_its_own_probability() -> None:
    probs = RealConfig(blur_prob=0.2, noise_prob=0.5, jpeg_prob=0.8)
    rng = np.random.default_rng(0)
    chains = [crop_steps(rng, (96, 96), 4, PairsConfig(), probs) for _ in range(2000)]
    for op, prob in (("blur", 0.2), ("noise", 0.5), ("jpeg", 0.8)):
        share = np.mean([any(step["op"] == op for step in chain) for chain in chains])
        assert abs(share - prob) < 0.04, op
    # Independent steps: every combination occurs, clean crops included; the order is always the same.
    combinations = {tuple(step["op"] for step in chain) for chain in chains}
    assert len(combinations) == 8 and ("resize",) in combinations
    assert ("blur", "resize", "noise", "jpeg") in combinations
    assert all(step["mode"] == "bicubic" and (step["height"], step["width"]) == (24, 24)
               for chain in chains for step in chain if step["op"] == "resize")


def test_a_crop_degradation_depends_on_its_seed_alone() -> None:
    hr = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    first = [degrade_crop(hr, seed, 4, PairsConfig(), RealConfig()) for seed in range(6)]
    again = [degrade_crop(hr, seed, 4, PairsConfig(), RealConfig()) for seed in range(6)]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert len({a.tobytes() for a in first}) > 1
    assert all(a.shape == (8, 8, 3) and a.dtype == np.uint8 for a in first)
