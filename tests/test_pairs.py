"""The pairs stage: HR = LR × scale, split by group, reproducible and atomic."""

from __future__ import annotations

import io
import json
import struct
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gansr.config import DataConfig, PairsConfig, parse_params
from gansr.data.degradations import apply_steps
from gansr.data.fetch import fetch_raw
from gansr.data.near_duplicates import perceptual_hash
from gansr.data.pairs import (
    MANIFEST_COLUMNS,
    build_pairs,
    make_lr,
    read_manifest,
    split_groups,
    split_keys,
    tile_grid,
)
from gansr.data.sources import SOURCES_COLUMNS, read_sources
from gansr.errors import ConfigError, DataError
from gansr.imageio import FAITHFUL_MODES, read_rgb, sha256_file

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
        rgb = (pixels or {}).get(name, noise)
        Image.fromarray(rgb).save(raw_dir / file)
        rows.append([name, group, file, f"test {name}", "CC0", width, height, "", perceptual_hash(rgb),
                     "RGB", 8, ""])
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
    # No two built-in photos are near-duplicates but the stereo views (one group already).
    assert split_keys(list(manifest["group"]), list(manifest["phash"]), 6) == list(manifest["group"])
    assert set(manifest["mode"]) <= FAITHFUL_MODES and set(manifest["bit_depth"]) == {8}


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


@pytest.mark.parametrize("cfg", [SMALL, REALISTIC, replace(REALISTIC, tile_size=16)],
                         ids=["bicubic", "realistic", "tiled"])
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
    with pytest.raises(DataError, match="lacks columns source, tile"):
        read_manifest(tmp_path)


# --- the original mode and bit depth of each source image -------------------------------


def _png16(path: Path, samples: np.ndarray) -> None:
    """A 16-bit RGB PNG (Pillow cannot write one): Pillow reads it back as 8-bit RGB."""
    height, width, _ = samples.shape
    scanlines = b"".join(b"\0" + row.astype(">u2").tobytes() for row in samples)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)  # 16 bits, truecolour
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(scanlines))
                     + chunk(b"IEND", b""))


def test_manifest_records_each_sources_original_mode_and_bit_depth(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(rgb).save(photos / "rgb.jpg")
    Image.fromarray(rgb).convert("L").save(photos / "gray.png")
    Image.fromarray(rgb).convert("P").save(photos / "palette.png")
    Image.fromarray(rgb).convert("RGBA").save(photos / "alpha.png")
    Image.fromarray(rgb).convert("CMYK").save(photos / "cmyk.jpg")
    Image.fromarray(rng.integers(0, 65536, (20, 24), dtype=np.uint16)).save(photos / "deep_gray.png")
    _png16(photos / "deep_rgb.png", rng.integers(0, 65536, (20, 24, 3)))
    fetch_raw(DataConfig(source="folder", folder=str(photos)), tmp_path / "raw")

    manifest = build_pairs(tmp_path / "raw", tmp_path / "pairs", 4, 0, SMALL).set_index("name")

    assert manifest[["mode", "bit_depth"]].to_dict("index") == {
        "alpha": {"mode": "RGBA", "bit_depth": 8}, "cmyk": {"mode": "CMYK", "bit_depth": 8},
        "deep_gray": {"mode": "I;16", "bit_depth": 16}, "deep_rgb": {"mode": "RGB", "bit_depth": 16},
        "gray": {"mode": "L", "bit_depth": 8}, "palette": {"mode": "P", "bit_depth": 8},
        "rgb": {"mode": "RGB", "bit_depth": 8},
    }
    assert set(manifest["mode"]) <= FAITHFUL_MODES
    sources = read_sources(tmp_path / "raw").set_index("name")  # recorded once, while decoding
    pd.testing.assert_frame_equal(sources[["mode", "bit_depth"]], manifest[["mode", "bit_depth"]],
                                  check_names=False)


# --- near-duplicates share a split ------------------------------------------------------


def _photo(rng: np.random.Generator, width: int = 128, height: int = 96) -> np.ndarray:
    """Smooth colour regions plus grain: structure a perceptual hash can see, unlike pure noise."""
    coarse = rng.integers(0, 256, (height // 16 + 2, width // 16 + 2, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), float)
    return np.clip(smooth + rng.normal(0, 4, smooth.shape), 0, 255).astype(np.uint8)


def _near_copies(photo: np.ndarray) -> dict[str, np.ndarray]:
    """Edits that leave a photo the same photo: JPEG re-encoding, a resize, a brightness shift."""
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="JPEG", quality=70)
    height, width = photo.shape[:2]
    return {
        "copy_jpeg": np.asarray(Image.open(buffer).convert("RGB")),
        "copy_resized": np.asarray(Image.fromarray(photo).resize((width * 3 // 4, height * 3 // 4),
                                                                 Image.Resampling.BICUBIC)),
        "copy_brighter": np.clip(photo.astype(int) + 16, 0, 255).astype(np.uint8),
    }


def _near_duplicate_raw(raw_dir: Path) -> Path:
    rng = np.random.default_rng(3)
    original = _photo(rng)
    pixels = {"original": original, **_near_copies(original)}
    pixels |= {f"other{i}": _photo(rng) for i in range(6)}
    images = {name: (name, (image.shape[1], image.shape[0])) for name, image in pixels.items()}
    return _make_raw(raw_dir, images, pixels=pixels)


def test_near_duplicate_copies_land_in_one_split(tmp_path):
    raw = _near_duplicate_raw(tmp_path / "raw")
    copies = ["copy_brighter", "copy_jpeg", "copy_resized", "original"]
    spread = replace(SMALL, val_fraction=0.2, test_fraction=0.3)

    apart = build_pairs(raw, tmp_path / "apart", 4, 0, replace(spread, near_duplicate_bits=0))
    assert apart.set_index("name").loc[copies, "split"].nunique() > 1  # as separate groups, these fractions spread them

    manifest = build_pairs(raw, tmp_path / "pairs", 4, 0, replace(spread, near_duplicate_bits=6))
    by_name = manifest.set_index("name")
    assert by_name.loc[copies, "split"].nunique() == 1
    assert list(by_name.loc[copies, "group"]) == copies  # the groups themselves are kept
    assert manifest["phash"].str.fullmatch("[0-9a-f]{16}").all()
    # the copies count as one group of seven: round(0.3 × 7) test, round(0.2 × 7) val
    keys = split_keys(list(manifest["group"]), list(manifest["phash"]), 6)
    assert keys == ["copy_brighter"] * 4 + [f"other{i}" for i in range(6)]
    assert pd.Series(dict(zip(keys, manifest["split"]))).value_counts().to_dict() == {"train": 4, "test": 2,
                                                                                        "val": 1}


def test_split_keys_join_groups_and_near_duplicates_transitively():
    base = 0x0123_4567_89AB_CDEF
    hashes = [f"{h:016x}" for h in (base, base ^ 0b11, base ^ 0b11_1100, ~base & (2**64 - 1), base ^ 0xFF00)]
    # stereo pair a/a; b is 2 bits from a's second view; c is 4 from b but 6 from a: joined through b
    groups = ["a", "a", "b", "d", "e"]
    assert split_keys(groups, hashes, 4) == ["a", "a", "a", "d", "e"]
    assert split_keys(groups, hashes, 8) == ["a", "a", "a", "d", "a"]
    assert split_keys(groups, hashes, 0) == groups  # off: groups alone
    assert split_keys(["z", "y", "z"], hashes[:3], 0) == ["z", "y", "z"]


# --- tiles ---------------------------------------------------------------------------------


def test_tile_grid_covers_the_image_with_full_tiles():
    assert tile_grid(72, 100, 32) == [(top, left, 32, 32) for top in (0, 32, 40) for left in (0, 32, 64, 68)]
    assert tile_grid(64, 64, 32) == [(0, 0, 32, 32), (0, 32, 32, 32), (32, 0, 32, 32), (32, 32, 32, 32)]
    assert tile_grid(20, 100, 32) == [(0, left, 20, 32) for left in (0, 32, 64, 68)]  # short side uncut
    assert tile_grid(30, 32, 32) == [(0, 0, 30, 32)]
    assert tile_grid(72, 100, 0) == [(0, 0, 72, 100)]


TILED = replace(SMALL, tile_size=32)


@pytest.mark.parametrize("cfg", [TILED, replace(TILED, degradation="realistic")],
                         ids=["bicubic", "realistic"])
def test_each_training_tile_is_a_faithful_pair_of_its_own(tmp_path, cfg):
    raw = _make_raw(tmp_path / "raw", {"big": ("big", (101, 75)), **_many_groups(4, 1)})
    manifest = build_pairs(raw, tmp_path / "pairs", 4, 0, cfg)

    tiles = manifest[manifest["source"] == "big"]
    assert set(tiles["split"]) == {"train"}  # by seed 0
    assert list(tiles["name"]) == [f"big_tile{i:03d}" for i in range(12)]  # 72x100 HR: 3 x 4 tiles
    assert list(tiles["tile"]) == list(range(12))
    corners = [(top, left) for top in (0, 32, 40) for left in (0, 32, 64, 68)]
    assert list(zip(tiles["tile_top"], tiles["tile_left"], strict=True)) == corners
    assert (tiles[["hr_height", "hr_width", "lr_height", "lr_width"]] == [32, 32, 8, 8]).all(axis=None)
    assert tiles["split"].nunique() == 1 and set(tiles["group"]) == {"big"} and tiles["phash"].nunique() == 1
    raw_rgb, _ = read_rgb(raw / "images" / "big.png")
    for row in tiles.itertuples():
        hr, _ = read_rgb(tmp_path / "pairs" / row.hr_path)
        top, left = row.tile_top, row.tile_left
        np.testing.assert_array_equal(hr, raw_rgb[top:top + 32, left:left + 32])
        expected_lr, record = make_lr(hr, 4, 0, row.name, cfg)  # made from the tile alone, like any pair
        np.testing.assert_array_equal(read_rgb(tmp_path / "pairs" / row.lr_path)[0], expected_lr)
        assert row.degradation == record
    small = manifest[manifest["source"] != "big"]  # 24x20 and such: no larger than a tile
    assert list(small["name"]) == list(small["source"]) and set(small["tile"]) == {0}


def test_validation_and_test_images_stay_whole(tmp_path):
    raw = _make_raw(tmp_path / "raw", {f"big{i}": (f"big{i}", (101, 75)) for i in range(5)})
    manifest = build_pairs(raw, tmp_path / "pairs", 4, 0, TILED)

    pairs_per_image = manifest.groupby("source").agg(split=("split", "first"), pairs=("name", "size"))
    assert sorted(pairs_per_image["split"]) == ["test", "train", "train", "train", "val"]
    expected_pairs = pairs_per_image["split"].map({"train": 12, "val": 1, "test": 1})  # 72x100 HR: 3 x 4
    assert (pairs_per_image["pairs"] == expected_pairs).all()
    whole = manifest[manifest["split"] != "train"]
    assert list(whole["name"]) == list(whole["source"]) and set(whole["tile"]) == {0}
    assert (whole[["hr_height", "hr_width", "lr_height", "lr_width"]] == [72, 100, 18, 25]).all(axis=None)


def test_a_tile_name_that_clashes_with_an_image_name_is_refused(tmp_path):
    raw = _make_raw(tmp_path / "raw", {"big": ("big", (64, 32)), "big_tile001": ("x", (24, 24)),
                                       **_many_groups(4, 1)})
    with pytest.raises(DataError, match=r"image name 'big_tile001' is also the name of a tile of another"):
        build_pairs(raw, tmp_path / "pairs", 4, 0, TILED)
    assert not (tmp_path / "pairs").exists()


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ({"tile_size": 98}, r"pairs\.tile_size must be 0 \(off\) or a multiple of scale \(4\), got 98"),
        ({"tile_size": 64}, r"pairs\.tile_size must be 0 \(off\) or >= pairs\.min_hr_size \(96\) "
                            r"and train\.patch_size \(96\), got 64"),
        ({"tile_size": -4}, r"pairs\.tile_size must be 0 \(off\) or > 0, got -4"),
        ({"near_duplicate_bits": 40}, r"pairs\.near_duplicate_bits must be in \[0, 32\] \(0: off\), got 40"),
        ({"near_duplicate_bits": -1}, r"pairs\.near_duplicate_bits must be in \[0, 32\]"),
    ],
)
def test_tile_and_near_duplicate_settings_are_checked(pairs, message):
    with pytest.raises(ConfigError, match=message):
        parse_params({"pairs": pairs})


def test_tile_settings_that_fit_are_accepted():
    assert parse_params({"pairs": {"tile_size": 96}}).pairs.tile_size == 96
    assert parse_params({"scale": 3, "pairs": {"tile_size": 384}}).pairs.tile_size == 384
    with pytest.raises(ConfigError, match=r"multiple of scale \(4\), got 30"):
        build_pairs(Path("unused"), Path("unused"), 4, 0, replace(SMALL, tile_size=30))
