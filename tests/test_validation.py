"""The validate stage runs a real GX suite over tiny real image pairs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gansr.config import PairsConfig, ValidateConfig, parse_params
from gansr.data.near_duplicates import perceptual_hash
from gansr.errors import ConfigError, DataError
from gansr.validation import validate_pairs

SCALE = 4
HR_SIZE = 16  # tiny but real: 16x16 HR, 4x4 LR
SPLITS = ["train", "train", "train", "train", "val", "test", "test"]


def _save(path: Path, pixels: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_manifest(pairs_dir: Path, rows: list[dict]) -> None:
    pd.DataFrame(rows).to_parquet(pairs_dir / "manifest.parquet", index=False)


def _read_manifest(pairs_dir: Path) -> list[dict]:
    return pd.read_parquet(pairs_dir / "manifest.parquet").to_dict("records")


def make_pairs(pairs_dir: Path) -> Path:
    """A valid pairs directory like the pairs stage writes: one pair per source image."""
    rng = np.random.default_rng(0)
    rows = []
    for i, split in enumerate(SPLITS):
        name = f"img{i}"
        hr = rng.integers(0, 256, (HR_SIZE, HR_SIZE, 3), dtype=np.uint8)
        lr = np.asarray(Image.fromarray(hr).resize((HR_SIZE // SCALE,) * 2, Image.BICUBIC))
        rows.append({
            "name": name, "source": name, "tile": 0, "tile_top": 0, "tile_left": 0,
            "group": f"photo{i}", "split": split,
            "hr_path": f"hr/{name}.png", "lr_path": f"lr/{name}.png",
            "hr_height": HR_SIZE, "hr_width": HR_SIZE,
            "lr_height": HR_SIZE // SCALE, "lr_width": HR_SIZE // SCALE,
            "hr_sha256": _save(pairs_dir / f"hr/{name}.png", hr),
            "lr_sha256": _save(pairs_dir / f"lr/{name}.png", lr),
            "degradation": '{"kind":"bicubic"}', "mode": "RGB", "bit_depth": 8, "phash": perceptual_hash(hr),
            "origin": "test", "licence": "CC0",
        })
    _write_manifest(pairs_dir, rows)
    return pairs_dir


@pytest.fixture
def pairs_dir(tmp_path: Path) -> Path:
    return make_pairs(tmp_path / "pairs")


PAIRS = PairsConfig(min_hr_size=HR_SIZE, near_duplicate_bits=6)


def run(pairs_dir: Path, report_dir: Path, cfg: ValidateConfig | None = None,
        pairs: PairsConfig = PAIRS) -> dict:
    return validate_pairs(pairs_dir, report_dir, pairs_dir.parent / "validated", scale=SCALE,
                          pairs=pairs, cfg=cfg or ValidateConfig(min_train_pairs=3, min_test_pairs=1))


DROP = ValidateConfig(min_train_pairs=3, min_test_pairs=1, on_bad="drop")


def test_good_pairs_pass_and_write_data_docs(pairs_dir: Path, tmp_path: Path) -> None:
    report_dir = tmp_path / "reports" / "validation"
    summary = run(pairs_dir, report_dir)

    assert summary["success"] is True
    assert summary["failed"] == 0 and summary["expectations"] >= 15
    assert summary["rows_per_split"] == {"train": 4, "val": 1, "test": 2}
    assert "<html" in (report_dir / "index.html").read_text(encoding="utf-8").lower()
    assert json.loads((report_dir / "summary.json").read_text()) == summary
    assert not list(report_dir.parent.glob(".validation.*"))  # no temp dir left behind
    assert summary["quarantined"] == 0 and summary["kept_per_split"] == summary["rows_per_split"]


def test_training_manifest_has_every_good_pair_and_leads_to_its_files(pairs_dir: Path, tmp_path: Path) -> None:
    run(pairs_dir, tmp_path / "report")
    validated = tmp_path / "validated"
    original = pd.read_parquet(pairs_dir / "manifest.parquet")
    manifest = pd.read_parquet(validated / "manifest.parquet")
    assert list(manifest["name"]) == list(original["name"])
    for row in manifest.itertuples():
        assert (validated / row.hr_path).resolve() == (pairs_dir / f"hr/{row.name}.png").resolve()
        assert (validated / row.lr_path).read_bytes() == (pairs_dir / f"lr/{row.name}.png").read_bytes()
    assert sorted(p.name for p in validated.iterdir()) == ["manifest.parquet"]


# --- each kind of bad data fails with the check and the file named ---------------------


def lr_not_a_quarter(pairs_dir: Path) -> None:
    """img1's LR is 5x5: HR 16 is not 5 x 4 (manifest updated to match the file)."""
    rows = _read_manifest(pairs_dir)
    rows[1]["lr_sha256"] = _save(pairs_dir / "lr/img1.png", np.zeros((5, 5, 3), np.uint8))
    rows[1]["lr_height"] = rows[1]["lr_width"] = 5
    _write_manifest(pairs_dir, rows)


def truncated_png(pairs_dir: Path) -> None:
    path = pairs_dir / "hr/img1.png"
    path.write_bytes(path.read_bytes()[:100])


def grayscale(pairs_dir: Path) -> None:
    rows = _read_manifest(pairs_dir)
    rows[1]["hr_sha256"] = _save(pairs_dir / "hr/img1.png", np.zeros((HR_SIZE, HR_SIZE), np.uint8))
    _write_manifest(pairs_dir, rows)


def duplicate_across_splits(pairs_dir: Path) -> None:
    """Test pair img6 is a copy of train pair img1 under another name and group."""
    rows = _read_manifest(pairs_dir)
    for side in ("hr", "lr"):
        (pairs_dir / f"{side}/img6.png").write_bytes((pairs_dir / f"{side}/img1.png").read_bytes())
        rows[6][f"{side}_sha256"] = rows[1][f"{side}_sha256"]
    _write_manifest(pairs_dir, rows)


def missing_file(pairs_dir: Path) -> None:
    (pairs_dir / "lr/img1.png").unlink()


def group_in_two_splits(pairs_dir: Path) -> None:
    rows = _read_manifest(pairs_dir)
    rows[6]["group"] = rows[1]["group"]  # a test crop of a training photo leaks it
    _write_manifest(pairs_dir, rows)


def unrecorded_degradation(pairs_dir: Path) -> None:
    rows = _read_manifest(pairs_dir)
    rows[1]["degradation"] = "blurred a bit"
    _write_manifest(pairs_dir, rows)


def float_source(pairs_dir: Path) -> None:
    """img1 came from a 32-bit floating-point TIFF: no faithful 8-bit rendering."""
    rows = _read_manifest(pairs_dir)
    rows[1]["mode"], rows[1]["bit_depth"] = "F", 32
    _write_manifest(pairs_dir, rows)


def near_duplicate_across_splits(pairs_dir: Path) -> None:
    """Test pair img6 is a re-encoded copy of train pair img1: its hash differs in 2 bits."""
    rows = _read_manifest(pairs_dir)
    rows[6]["phash"] = f"{int(rows[1]['phash'], 16) ^ 0b101:016x}"
    _write_manifest(pairs_dir, rows)


def garbled_phash(pairs_dir: Path) -> None:
    rows = _read_manifest(pairs_dir)
    rows[1]["phash"] = "not-a-hash"
    _write_manifest(pairs_dir, rows)


@pytest.mark.parametrize(
    ("spoil", "check", "named"),
    [
        (lr_not_a_quarter, "HR size is LR size x 4", "hr/img1.png"),
        (truncated_png, "HR file decodes as an image", "hr/img1.png"),
        (grayscale, "HR file is RGB", "hr/img1.png (L)"),
        (duplicate_across_splits, "identical HR images stay in one split", "hr/img6.png (test)"),
        (missing_file, "LR file exists", "lr/img1.png"),
        (group_in_two_splits, "each group (source image) stays in one split",
         "img6 (photo1, test)"),
        (unrecorded_degradation, "degradation records how the LR image was made", "lr/img1.png"),
        (float_source, "source image mode is one gansr converts to RGB faithfully", "img1 (F)"),
        (float_source, "source image has 8 or 16 bits per sample", "img1 (32)"),
        (near_duplicate_across_splits, "near-duplicate images (pHash within 6 bits) stay in one split",
         "img1 (train), img6 (test)"),
        (garbled_phash, "phash is a 64-bit perceptual hash (16 hex digits)", "img1 (not-a-hash)"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_bad_pairs_fail_naming_the_file(
    pairs_dir: Path, tmp_path: Path, spoil: Callable[[Path], None], check: str, named: str
) -> None:
    spoil(pairs_dir)
    with pytest.raises(DataError) as err:
        run(pairs_dir, tmp_path / "report")

    first, *lines = str(err.value).splitlines()
    assert first.startswith("validation failed: ")
    assert first.endswith(f"see {(tmp_path / 'report' / 'index.html').as_posix()}")
    line = next((row for row in lines if row.strip().startswith(check + ":")), None)
    assert line is not None, str(err.value)
    assert named in line
    assert "img0" not in line  # only the offending rows are named


def test_failure_keeps_the_previous_training_manifest(pairs_dir: Path, tmp_path: Path) -> None:
    run(pairs_dir, tmp_path / "report")
    before = (tmp_path / "validated" / "manifest.parquet").read_bytes()
    truncated_png(pairs_dir)
    with pytest.raises(DataError):
        run(pairs_dir, tmp_path / "report")
    assert (tmp_path / "validated" / "manifest.parquet").read_bytes() == before


# --- on_bad: drop --------------------------------------------------------------------------


def test_drop_trains_without_the_bad_pairs_and_lists_them(pairs_dir: Path, tmp_path: Path) -> None:
    missing_file(pairs_dir)  # img1's LR (train)
    unrecorded_degradation(pairs_dir)  # img1 again, for a second reason
    (pairs_dir / "lr/img5.png").write_bytes(b"not a png")  # img5 (test)
    report_dir = tmp_path / "report"

    summary = run(pairs_dir, report_dir, DROP)

    assert summary["success"] is False and summary["quarantined"] == 2
    assert summary["kept_per_split"] == {"train": 3, "val": 1, "test": 1}
    manifest = pd.read_parquet(tmp_path / "validated" / "manifest.parquet")
    assert list(manifest["name"]) == ["img0", "img2", "img3", "img4", "img6"]
    quarantine = pd.read_csv(report_dir / "quarantine.csv")
    assert quarantine.to_dict("records") == [
        {"name": "img1", "file": "lr/img1.png", "reason": "degradation records how the LR image was made"},
        {"name": "img1", "file": "lr/img1.png", "reason": "LR file exists"},
        {"name": "img5", "file": "lr/img5.png", "reason": "LR file decodes as an image"},
        {"name": "img5", "file": "lr/img5.png", "reason": "lr_sha256 in the manifest matches the file"},
    ]
    assert json.loads((report_dir / "summary.json").read_text())["quarantined"] == 2


def test_drop_still_fails_when_too_few_pairs_remain(pairs_dir: Path, tmp_path: Path) -> None:
    truncated_png(pairs_dir)  # one of the 4 train pairs
    cfg = ValidateConfig(min_train_pairs=4, min_test_pairs=1, on_bad="drop")
    with pytest.raises(DataError, match=r"after dropping 1 bad pairs, 3 train pairs remain, "
                                        r"fewer than validate\.min_train_pairs=4"):
        run(pairs_dir, tmp_path / "report", cfg)
    assert not (tmp_path / "validated").exists()
    assert (tmp_path / "report" / "quarantine.csv").is_file()  # what would have been dropped


def test_drop_cannot_fix_a_missing_column(pairs_dir: Path, tmp_path: Path) -> None:
    manifest = pd.read_parquet(pairs_dir / "manifest.parquet").drop(columns=["licence"])
    manifest.to_parquet(pairs_dir / "manifest.parquet", index=False)
    with pytest.raises(DataError, match=r"manifest has all required columns: not fixed by dropping rows"):
        run(pairs_dir, tmp_path / "report", DROP)


def test_too_few_train_pairs_fails_with_the_count(pairs_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"at least 10 train pairs: found 4"):
        run(pairs_dir, tmp_path / "report", ValidateConfig(min_train_pairs=10, min_test_pairs=1))


def test_missing_manifest_column_is_reported(pairs_dir: Path, tmp_path: Path) -> None:
    manifest = pd.read_parquet(pairs_dir / "manifest.parquet").drop(columns=["hr_sha256"])
    manifest.to_parquet(pairs_dir / "manifest.parquet", index=False)
    with pytest.raises(DataError, match=r"manifest has all required columns: missing hr_sha256"):
        run(pairs_dir, tmp_path / "report")


def test_missing_manifest_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"manifest not found \(run the pairs stage first\)"):
        run(tmp_path / "nothing", tmp_path / "report")


# --- the report ---------------------------------------------------------------------------


def test_failure_still_writes_the_report(pairs_dir: Path, tmp_path: Path) -> None:
    missing_file(pairs_dir)
    report_dir = tmp_path / "report"
    with pytest.raises(DataError):
        run(pairs_dir, report_dir)

    summary = json.loads((report_dir / "summary.json").read_text())
    assert summary["success"] is False and summary["failed"] == 1
    (failure,) = summary["failures"]
    assert failure["column"] == "lr_file_exists"
    assert failure["rows"] == ["img1"]
    assert (report_dir / "index.html").is_file()


def test_existing_report_is_replaced_not_merged(pairs_dir: Path, tmp_path: Path) -> None:
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    (report_dir / "stale.html").write_text("from an older run")

    run(pairs_dir, report_dir)

    assert not (report_dir / "stale.html").exists()
    assert (report_dir / "index.html").is_file()


def test_on_bad_accepts_only_fail_or_drop() -> None:
    assert parse_params({"validate": {"on_bad": "drop"}}).validate.on_bad == "drop"
    with pytest.raises(ConfigError, match="validate.on_bad must be one of fail, drop, got 'ignore'"):
        parse_params({"validate": {"on_bad": "ignore"}})


def test_a_missing_degradation_record_is_flagged(pairs_dir: Path, tmp_path: Path) -> None:
    rows = _read_manifest(pairs_dir)
    rows[2]["degradation"] = None
    _write_manifest(pairs_dir, rows)
    with pytest.raises(DataError, match=r"(?m)degradation records how the LR image was made: lr/img2\.png$"):
        run(pairs_dir, tmp_path / "report")


# --- what the pairs stage writes passes, tiles and near-duplicates included ----------------


def test_tiled_pairs_from_the_pairs_stage_pass(tmp_path: Path) -> None:
    from gansr.config import DataConfig
    from gansr.data.fetch import fetch_raw
    from gansr.data.pairs import build_pairs

    photos, rng = tmp_path / "photos", np.random.default_rng(1)
    photos.mkdir()
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (24, 28, 3), dtype=np.uint8)).save(photos / f"small{i}.png")
    flat = np.full((40, 64, 3), 200, np.uint8)  # a flat sky: its 16x16 tiles are identical files
    # 24x28 HR: 2 x 2 tiles each; 40x64 HR: 3 x 4
    Image.fromarray(flat).convert("L").save(photos / "sky.png")
    fetch_raw(DataConfig(source="folder", folder=str(photos)), tmp_path / "raw")
    pairs = PairsConfig(val_fraction=0.2, test_fraction=0.2, min_hr_size=HR_SIZE, tile_size=HR_SIZE)
    manifest = build_pairs(tmp_path / "raw", tmp_path / "pairs", SCALE, 0, pairs)
    assert manifest["hr_sha256"].duplicated().any()

    summary = run(tmp_path / "pairs", tmp_path / "report", pairs=pairs)

    # The sky and four small images train as 3 x 4 and 2 x 2 tiles; the val and test images stay whole.
    assert summary["success"] is True and summary["rows"] == len(manifest) == 3 * 4 + 4 * 2 * 2 + 2


def test_identical_hr_images_of_two_sources_are_flagged(pairs_dir: Path, tmp_path: Path) -> None:
    """Train pairs img2 and img3: the same HR file under two source images."""
    rows = _read_manifest(pairs_dir)
    (pairs_dir / "hr/img3.png").write_bytes((pairs_dir / "hr/img2.png").read_bytes())
    rows[3]["hr_sha256"] = rows[2]["hr_sha256"]
    _write_manifest(pairs_dir, rows)
    with pytest.raises(DataError, match=r"(?m)HR image is not a copy of another source image's "
                                        r"\(same hr_sha256\): hr/img2\.png \(img2, train\), "
                                        r"hr/img3\.png \(img3, train\)$"):
        run(pairs_dir, tmp_path / "report")
    rows[3]["source"] = "img2"  # two tiles of one image may be identical
    _write_manifest(pairs_dir, rows)
    assert run(pairs_dir, tmp_path / "report")["success"] is True


def test_near_duplicate_check_is_off_with_the_setting(pairs_dir: Path, tmp_path: Path) -> None:
    near_duplicate_across_splits(pairs_dir)
    off = PairsConfig(min_hr_size=HR_SIZE, near_duplicate_bits=0)
    assert run(pairs_dir, tmp_path / "report", pairs=off)["success"] is True
    with pytest.raises(DataError, match="near-duplicate images"):
        run(pairs_dir, tmp_path / "report", pairs=PAIRS)
