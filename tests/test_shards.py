"""The shards stage's TFRecord files: every training pair byte for byte, in an order training can rely on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_training import SCALE, pairs_dir, shards_beside, tiny_params, train  # noqa: F401  (the tiny pairs)

from gansr.data.pairs import read_manifest
from gansr.data.shards import INDEX_FILE, read_index, record_order, records, write_shards
from gansr.errors import ConfigError, DataError


def training_rows(pairs: Path) -> list[tuple[bytes, bytes, int, int]]:
    manifest = read_manifest(pairs)
    return [((pairs / row.lr_path).read_bytes(), (pairs / row.hr_path).read_bytes(), row.hr_height, row.hr_width)
            for row in manifest[manifest["split"] == "train"].itertuples()]


def read_back(index: object) -> list[tuple[bytes, bytes, int, int]]:
    return [(r["lr"].numpy(), r["hr"].numpy(), int(r["hr_height"]), int(r["hr_width"])) for r in records(index)]


def test_shards_hold_every_training_pair_in_the_manifests_order(pairs_dir: Path) -> None:  # noqa: F811
    index = read_index(shards_beside(pairs_dir))
    expected = training_rows(pairs_dir)
    # Three pairs, up to 32 shards: one pair each, read back in the manifest's order, the PNG files unchanged.
    assert [len(s.hr_sizes) for s in index.shards] == [1, 1, 1]
    assert read_back(index) == expected
    assert index.records == 3
    assert index.decoded_bytes == sum(h * w * 3 + (h // SCALE) * (w // SCALE) * 3 for *_, h, w in expected)


def test_more_pairs_than_shards_are_packed_in_runs_and_read_round_robin(pairs_dir: Path,  # noqa: F811
                                                                          tmp_path: Path) -> None:
    index = write_shards(read_manifest(pairs_dir), pairs_dir, tmp_path / "shards", SCALE, count=2)
    assert [s.file for s in index.shards] == ["train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]
    assert [len(s.hr_sizes) for s in index.shards] == [2, 1]  # pairs 0 and 1, then pair 2
    # One record from each shard in turn: pair 0, pair 2, pair 1.
    assert record_order(index) == [(0, 0), (1, 0), (0, 1)]
    rows = training_rows(pairs_dir)
    assert read_back(index) == [rows[0], rows[2], rows[1]]
    assert read_index(tmp_path / "shards") == index


def test_shards_are_byte_identical_from_process_to_process(pairs_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    # Each process hashes strings with its own seed; the records must not depend on it.
    script = ("import sys; from pathlib import Path; from gansr.data.pairs import read_manifest; "
              "from gansr.data.shards import write_shards; p = Path(sys.argv[1]); "
              "write_shards(read_manifest(p), p, Path(sys.argv[2]), 4, 2)")
    for seed in ("1", "2"):
        subprocess.run([sys.executable, "-c", script, str(pairs_dir), str(tmp_path / seed)], check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed})
    files = sorted(p.name for p in (tmp_path / "1").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "2").iterdir()) and len(files) == 3
    for name in files:
        assert (tmp_path / "1" / name).read_bytes() == (tmp_path / "2" / name).read_bytes(), name


def test_each_worker_reads_its_own_shards(pairs_dir: Path) -> None:  # noqa: F811
    index = read_index(shards_beside(pairs_dir))
    first, second = index.for_pipeline(0, 2), index.for_pipeline(1, 2)
    assert [s.file for s in first.shards] == [index.shards[0].file, index.shards[2].file]
    assert [s.file for s in second.shards] == [index.shards[1].file]
    assert index.for_pipeline(0, 1) == index
    with pytest.raises(ConfigError, match=r"3 shard\(s\) for 4 workers.*shards.count >= 4"):
        index.for_pipeline(0, 4)


def test_missing_or_broken_shards_are_data_errors_naming_the_stage(pairs_dir: Path,  # noqa: F811
                                                                  tmp_path: Path) -> None:
    with pytest.raises(DataError, match=rf"{tmp_path / 'none' / INDEX_FILE}: not found \(run the shards stage"):
        read_index(tmp_path / "none")
    write_shards(read_manifest(pairs_dir), pairs_dir, tmp_path / "shards", SCALE, count=2)
    (tmp_path / "shards" / "train-00001-of-00002.tfrecord").unlink()
    with pytest.raises(DataError, match=r"train-00001-of-00002.tfrecord is missing \(run the shards stage again"):
        read_index(tmp_path / "shards")
    (tmp_path / "shards" / INDEX_FILE).write_text(json.dumps({"shards": []}))
    with pytest.raises(DataError, match="unreadable shard index"):
        read_index(tmp_path / "shards")


def test_no_training_pairs_is_a_data_error_and_leaves_old_shards(pairs_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    manifest = read_manifest(pairs_dir)
    write_shards(manifest, pairs_dir, tmp_path / "shards", SCALE, count=2)
    with pytest.raises(DataError, match="no training pairs to pack"):
        write_shards(manifest[manifest["split"] != "train"], pairs_dir, tmp_path / "shards", SCALE, count=2)
    assert read_index(tmp_path / "shards").records == 3


def test_training_without_shards_says_to_run_the_shards_stage(pairs_dir: Path, tmp_path: Path,  # noqa: F811
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    copied = tmp_path / "data" / "pairs"
    copied.parent.mkdir()
    copied.symlink_to(pairs_dir, target_is_directory=True)
    with pytest.raises(DataError, match="run the shards stage first"):
        train("psnr", tiny_params(), copied, None, tmp_path / "out", tmp_path / "ckpt", tmp_path)
    assert not (tmp_path / "out").exists()
