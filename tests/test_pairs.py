"""The pairs stage: HR = LR × scale, split by group, reproducible and atomic."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gansr.config import DataConfig, PairsConfig
from gansr.data.degradations import apply_steps
from gansr.data.pairs import MANIFEST_COLUMNS, build_pairs, read_manifest, split_groups
from gansr.data.sources import SOURCES_COLUMNS, fetch_raw
from gansr.errors import DataError
from gansr.imageio import read_rgb, sha256_file

SMALL = PairsConfig(val_fraction=0.2, test_fraction=0.2, min_hr_size=16)
REALISTIC = replace(SMALL, degradation="realistic", second_order=True)


def _make_raw(raw_dir: Path, images: dict[str, tuple[str, tuple[int, int]]], seed: int = 0,
              pixels: dict[str, np.ndarray] | None = None) -> Path:
    """Write a raw_dir as the download stage would: ``{name: (group, (width, height))}``.

    Images are random noise unless ``pixels`` gives their content.
    """
    rng = np.random.default_rng(seed)
    (raw_dir / "images").mkdir(parents=True)
    rows = []
    for name, (group, (width, height)) in images.items():
        file = f"images/{name}.png"
        noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray((pixels or {}).get(name, noise)).save(raw_dir / file)
        rows.append([name, group, file, f"test {name}", "CC0", width, height, "", ""])
    pd.DataFrame(rows, columns=SOURCES_COLUMNS).to_csv(raw_dir / "sources.csv", index=False)
    return raw_dir


def _many_groups(n_groups: int = 10, per_group: int = 2) -> dict[str, tuple[str, tuple[int, int]]]:
    return {f"g{g}_v{v}": (f"g{g}", (24 + g, 20 + v)) for g in range(n_groups) for v in range(per_group)}


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_hr_is_lr_times_scale(tmp_path, scale):
    raw = _make_raw(tmp_path / "raw", {"odd": ("odd", (101, 99)), "even": ("even", (48, 64))})
    cfg = PairsConfig(val_fraction=0.0, test_fraction=0.4, min_hr_size=16)
    manifest = build_pairs(raw, tmp_path / "pairs", scale, 0, cfg)
    for row in manifest.itertuples():
        hr, _ = read_rgb(tmp_path / "pairs" / row.hr_path)
        lr, _ = read_rgb(tmp_path / "pairs" / row.lr_path)
        assert hr.shape == (row.hr_height, row.hr_width, 3)
        assert lr.shape == (row.lr_height, row.lr_width, 3)
        assert (lr.shape[0] * scale, lr.shape[1] * scale) == hr.shape[:2]
        raw_rgb, _ = read_rgb(raw / "images" / f"{row.name}.png")
        np.testing.assert_array_equal(hr, raw_rgb[: hr.shape[0], : hr.shape[1]])  # top-left crop
        assert raw_rgb.shape[0] - hr.shape[0] < scale and raw_rgb.shape[1] - hr.shape[1] < scale
        assert sha256_file(tmp_path / "pairs" / row.hr_path) == row.hr_sha256
        assert sha256_file(tmp_path / "pairs" / row.lr_path) == row.lr_sha256


def test_lr_is_antialiased_bicubic(tmp_path):
    raw = _make_raw(tmp_path / "raw", {"a": ("a", (64, 32)), "b": ("b", (32, 32))})
    manifest = build_pairs(raw, tmp_path / "pairs", 4, 0, PairsConfig(0.0, 0.5, 16))
    hr = Image.open(tmp_path / "pairs" / manifest.loc[0, "hr_path"])
    expected = np.asarray(hr.resize((16, 8), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(read_rgb(tmp_path / "pairs" / manifest.loc[0, "lr_path"])[0], expected)
    # antialiasing averages the noise: far smoother than point-sampling every 4th pixel
    assert expected.astype(float).std() < 0.6 * np.asarray(hr)[::4, ::4].astype(float).std()


# --- MATLAB imresize(hr, 1/scale, 'bicubic'), written out from its published algorithm ----------


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5, as in MATLAB's imresize."""
    ax = np.abs(x)
    return ((1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
            + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def _contributions(in_len: int, scale: int, antialias: bool) -> tuple[np.ndarray, np.ndarray]:
    """Weights and 0-based source indices of each output pixel (imresize's ``contributions``)."""
    s = 1 / scale
    width = 4 / s if antialias else 4.0  # antialiasing widens the kernel by the shrink factor
    u = np.arange(1, in_len // scale + 1) / s + 0.5 * (1 - 1 / s)  # 1-based source position
    left = np.floor(u - width / 2)
    indices = left[:, None] + np.arange(int(np.ceil(width)) + 2)[None, :]
    distance = u[:, None] - indices
    weights = s * _cubic(s * distance) if antialias else _cubic(distance)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(1, in_len + 1), np.arange(in_len, 0, -1)])  # symmetric padding
    return weights, mirror[np.mod(indices - 1, 2 * in_len).astype(int)] - 1


def matlab_imresize(image: np.ndarray, scale: int, antialias: bool = True) -> np.ndarray:
    """imresize(image, 1/scale, 'bicubic') of an H×W×3 uint8 image, in float64, rounded as MATLAB does."""
    out = image.astype(np.float64)
    for axis in (0, 1):
        weights, indices = _contributions(out.shape[axis], scale, antialias)
        gathered = np.moveaxis(np.take(out, indices, axis=axis), (axis, axis + 1), (0, 1))
        out = np.moveaxis(np.einsum("ij,ij...->i...", weights, gathered), 0, axis)
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)  # round half away from zero


def test_reference_imresize_keeps_matlab_pixel_centres():
    ramp = np.broadcast_to(np.arange(64, dtype=np.uint8)[None, :, None], (8, 64, 3))
    # Output pixel i covers input pixels 4i..4i+3, centred on 4i + 1.5, for a linear ramp.
    centre = matlab_imresize(ramp, 4)[1, 2:-2, 0]
    np.testing.assert_array_equal(centre, np.floor(4 * np.arange(2, 14) + 1.5 + 0.5))


def test_bicubic_lr_matches_matlab_imresize(tmp_path):
    """The pipeline's LR is MATLAB-compatible: under 0.5 grey levels apart on average."""
    y, x = np.mgrid[0:96, 0:128].astype(np.float64)
    waves = 128 + 100 * np.sin(x / 1.5) * np.cos(y / 4.3)  # a period of 9.4 px: near LR's Nyquist 8
    disc = np.where((x - 60) ** 2 + (y - 44) ** 2 < 30**2, 230.0, 20.0)  # hard edges
    ramp = 2 * x - y + 60
    hr = np.clip(np.stack([waves, disc, ramp], axis=-1), 0, 255).astype(np.uint8)
    images = {**_many_groups(4, 1), "synthetic": ("synthetic", (128, 96))}  # enough groups to split
    raw = _make_raw(tmp_path / "raw", images, pixels={"synthetic": hr})

    manifest = build_pairs(raw, tmp_path / "pairs", 4, 0, SMALL).set_index("name")
    lr = read_rgb(tmp_path / "pairs" / manifest.loc["synthetic", "lr_path"])[0].astype(float)

    difference = np.abs(lr - matlab_imresize(hr, 4))
    assert difference.mean() < 0.5
    # Away from the edges, where Pillow renormalises the kernel instead of mirroring the
    # image, the two agree up to rounding.
    assert difference[2:-2, 2:-2].max() <= 1
    # ...and the bound tells antialiased from plain bicubic sampling apart:
    assert np.abs(lr - matlab_imresize(hr, 4, antialias=False)).mean() > 2


def test_manifest_layout(tmp_path):
    raw = _make_raw(tmp_path / "raw", _many_groups(5, 1))
    manifest = build_pairs(raw, tmp_path / "pairs", 4, 0, SMALL)
    assert list(manifest.columns) == MANIFEST_COLUMNS
    assert list(manifest["name"]) == sorted(manifest["name"])
    assert manifest.loc[0, "hr_path"] == "hr/g0_v0.png" and manifest.loc[0, "lr_path"] == "lr/g0_v0.png"
    assert sorted(p.name for p in (tmp_path / "pairs").iterdir()) == ["hr", "lr", "manifest.parquet"]
    pd.testing.assert_frame_equal(read_manifest(tmp_path / "pairs"), manifest)


def test_no_group_is_in_two_splits(tmp_path):
    raw = _make_raw(tmp_path / "raw", _many_groups(10, 3))
    manifest = build_pairs(raw, tmp_path / "pairs", 2, 7, SMALL)
    assert (manifest.groupby("group")["split"].nunique() == 1).all()
    groups_per_split = manifest.groupby("split")["group"].nunique().to_dict()
    assert groups_per_split == {"test": 2, "val": 2, "train": 6}  # round(0.2 × 10) each


@pytest.fixture(scope="module")
def builtin_raw(tmp_path_factory) -> Path:
    raw_dir = tmp_path_factory.mktemp("builtin") / "raw"
    fetch_raw(DataConfig(), raw_dir)
    return raw_dir


def test_builtin_stereo_pair_lands_in_one_split(builtin_raw, tmp_path):
    manifest = build_pairs(builtin_raw, tmp_path / "pairs", 4, 0, PairsConfig()).set_index("name")
    assert manifest.loc["motorcycle_left", "split"] == manifest.loc["motorcycle_right", "split"]
    assert set(manifest["split"]) == {"train", "val", "test"}
    assert (manifest.groupby("group")["split"].nunique() == 1).all()


def test_split_sizes_follow_the_fractions():
    groups = [f"g{i}" for i in range(12)]
    split_of = split_groups(groups, 0, PairsConfig(val_fraction=0.1, test_fraction=0.25))
    counts = pd.Series(split_of).value_counts().to_dict()
    assert counts == {"train": 8, "test": 3, "val": 1}
    tiny = split_groups(groups, 0, PairsConfig(val_fraction=0.01, test_fraction=0.01))
    assert sorted(tiny.values()).count("test") == 1 and sorted(tiny.values()).count("val") == 1
    assert "val" not in split_groups(groups, 0, PairsConfig(val_fraction=0.0, test_fraction=0.25)).values()


def test_split_depends_only_on_seed_and_groups():
    groups = [f"g{i}" for i in range(20)]
    first = split_groups(groups, 3, PairsConfig())
    assert split_groups(list(reversed(groups)) * 2, 3, PairsConfig()) == first
    assert any(split_groups(groups, seed, PairsConfig()) != first for seed in range(4, 10))


def test_too_few_groups_for_a_train_split(tmp_path):
    with pytest.raises(DataError, match="no group would be left for training"):
        split_groups(["a", "b"], 0, PairsConfig(val_fraction=0.1, test_fraction=0.1))
    raw = _make_raw(tmp_path / "raw", {"a": ("a", (32, 32)), "b": ("b", (32, 32))})
    with pytest.raises(DataError, match="too few"):
        build_pairs(raw, tmp_path / "pairs", 4, 0, SMALL)
    assert not (tmp_path / "pairs").exists()


@pytest.mark.parametrize("cfg", [SMALL, REALISTIC], ids=["bicubic", "realistic"])
def test_same_inputs_give_byte_identical_outputs(tmp_path, cfg):
    raw = _make_raw(tmp_path / "raw", _many_groups(6, 2))
    first = build_pairs(raw, tmp_path / "a", 4, 11, cfg, workers=1)
    second = build_pairs(raw, tmp_path / "b", 4, 11, cfg, workers=2)  # finishing in any order
    pd.testing.assert_frame_equal(first, second)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_realistic_lr_is_rebuilt_from_its_manifest_record(tmp_path):
    raw = _make_raw(tmp_path / "raw", _many_groups(5, 1))
    bicubic = build_pairs(raw, tmp_path / "bicubic", 4, 0, SMALL)
    realistic = build_pairs(raw, tmp_path / "realistic", 4, 0, REALISTIC)
    assert set(bicubic["degradation"]) == {'{"kind":"bicubic"}'}
    for row in realistic.itertuples():
        record = json.loads(row.degradation)
        assert record["kind"] == "realistic"
        assert [step["op"] for step in record["steps"]] == ["blur", "resize", "noise", "jpeg"] * 2
        hr, _ = read_rgb(tmp_path / "realistic" / row.hr_path)
        lr, _ = read_rgb(tmp_path / "realistic" / row.lr_path)
        np.testing.assert_array_equal(apply_steps(hr, record["steps"]), lr)
        assert lr.shape == (row.hr_height // 4, row.hr_width // 4, 3)
        assert row.lr_sha256 != bicubic.set_index("name").loc[row.name, "lr_sha256"]


def test_an_images_degradation_does_not_depend_on_the_others(tmp_path):
    raw = _make_raw(tmp_path / "raw", _many_groups(6, 1))
    build_pairs(raw, tmp_path / "a", 4, 5, REALISTIC)
    some = ["g1_v0", "g3_v0", "g4_v0"]
    sources = pd.read_csv(raw / "sources.csv", keep_default_na=False)
    sources[sources["name"].isin(some)].to_csv(raw / "sources.csv", index=False)
    build_pairs(raw, tmp_path / "b", 4, 5, replace(REALISTIC, val_fraction=0))
    for name in some:
        assert (tmp_path / "a" / f"lr/{name}.png").read_bytes() == (tmp_path / "b" / f"lr/{name}.png").read_bytes()


def test_too_small_image_raises_naming_it(tmp_path):
    raw = _make_raw(tmp_path / "raw", {**_many_groups(5, 1), "tiny_one": ("tiny_one", (40, 15))})
    with pytest.raises(DataError, match=r"tiny_one\.png.*smaller than pairs\.min_hr_size=16"):
        build_pairs(raw, tmp_path / "pairs", 4, 0, SMALL)


def test_failed_build_leaves_existing_pairs_untouched(tmp_path):
    raw = _make_raw(tmp_path / "raw", _many_groups(5, 1))
    build_pairs(raw, tmp_path / "pairs", 4, 0, SMALL)
    before = _files(tmp_path / "pairs")
    Image.new("RGB", (8, 8)).save(raw / "images" / "g2_v0.png")  # now too small, mid-way through
    with pytest.raises(DataError, match="g2_v0"):
        build_pairs(raw, tmp_path / "pairs", 4, 0, SMALL)
    assert _files(tmp_path / "pairs") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs", "raw"]  # no temporaries left


def test_unsafe_names_in_sources_are_refused(tmp_path):
    raw = _make_raw(tmp_path / "raw", _many_groups(5, 1))
    sources = pd.read_csv(raw / "sources.csv", keep_default_na=False)
    sources.loc[0, "name"] = "../escape"
    sources.to_csv(raw / "sources.csv", index=False)
    with pytest.raises(DataError, match="unsafe image name '../escape'"):
        build_pairs(raw, tmp_path / "pairs", 4, 0, SMALL)


def test_missing_raw_dir_errors(tmp_path):
    with pytest.raises(DataError, match="run the download stage"):
        build_pairs(tmp_path / "raw", tmp_path / "pairs", 4, 0, SMALL)


def test_read_manifest_errors(tmp_path):
    with pytest.raises(DataError, match="manifest not found"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.parquet").write_bytes(b"garbage")
    with pytest.raises(DataError, match="unreadable manifest"):
        read_manifest(tmp_path)
    pd.DataFrame({"name": ["x"]}).to_parquet(tmp_path / "manifest.parquet")
    with pytest.raises(DataError, match="lacks columns group"):
        read_manifest(tmp_path)
