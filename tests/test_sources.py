"""The download stage: built-in photos and user folders become data/raw/ atomically."""

from __future__ import annotations

import hashlib
import importlib.resources
import io
import logging
import re
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import yaml
from PIL import Image

from gansr.config import DataConfig
from gansr.data.fetch import fetch_raw
from gansr.data.near_duplicates import perceptual_hash
from gansr.data.sources import (
    BUILTIN_PHOTOS,
    SOURCES_COLUMNS,
    builtin_images,
    read_sources,
    safe_name,
    skipped_note,
)
from gansr.errors import DataError
from gansr.imageio import read_rgb, sha256_file


def _image(path: Path, size=(12, 10), value=100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)
    return path


def _folder(path: Path) -> DataConfig:
    return DataConfig(source="folder", folder=str(path))


@pytest.fixture(scope="module")
def builtin_raw(tmp_path_factory) -> tuple[Path, object]:
    raw_dir = tmp_path_factory.mktemp("builtin") / "raw"
    return raw_dir, fetch_raw(DataConfig(), raw_dir)


def test_builtin_source_has_at_least_12_licensed_colour_photos(builtin_raw):
    raw_dir, table = builtin_raw
    assert len(table) >= 12
    assert list(table.columns) == SOURCES_COLUMNS
    assert table["name"].is_unique and list(table["name"]) == sorted(table["name"])
    assert (table["licence"].str.len() > 0).all() and (table["origin"].str.len() > 0).all()
    assert sorted(p.name for p in raw_dir.iterdir()) == ["images", "sources.csv"]
    for row in table.itertuples():
        rgb, notes = read_rgb(raw_dir / row.file)
        assert rgb.shape == (row.height, row.width, 3)
        assert sha256_file(raw_dir / row.file) == row.sha256
        assert perceptual_hash(rgb) == row.phash  # what pairs splits near-duplicates by
        assert notes == []  # written as plain RGB PNG


def test_builtin_stereo_pair_shares_one_group(builtin_raw):
    _, table = builtin_raw
    groups = dict(zip(table["name"], table["group"], strict=True))
    assert groups["motorcycle_left"] == groups["motorcycle_right"] == "motorcycle"
    assert table["group"].nunique() == len(table) - 1


def test_sources_csv_round_trips(builtin_raw):
    raw_dir, table = builtin_raw
    back = read_sources(raw_dir)
    assert back.to_dict("records") == table.to_dict("records")


def test_builtin_table_points_inside_installed_packages():
    assert len({photo.name for photo in BUILTIN_PHOTOS}) == len(BUILTIN_PHOTOS)
    for photo, image in zip(sorted(BUILTIN_PHOTOS, key=lambda p: p.name), builtin_images(), strict=True):
        package_dir = Path(str(importlib.resources.files(photo.package)))
        assert image.path.is_file() and image.path.is_relative_to(package_dir)


def test_safe_name():
    assert safe_name(PurePosixPath("sub/My Photo.JPG")) == "sub__My_Photo"
    assert safe_name(PurePosixPath("Café Ünïcode.png")) == "Cafe_Unicode"
    assert safe_name(PurePosixPath("a/b/c-1.v2.tif")) == "a__b__c-1.v2"


def test_folder_source_walks_nested_dirs(tmp_path):
    photos = tmp_path / "photos"
    _image(photos / "top.png")
    _image(photos / "sub" / "My Photo.JPG")
    _image(photos / "sub" / "deeper" / "Café Ünïcode.webp")
    _image(photos / "x.BMP", size=(5, 7))
    (photos / "README.txt").write_text("not an image, ignored\n")
    _image(photos / ".hidden" / "skip.png")
    table = fetch_raw(_folder(photos), tmp_path / "raw")
    assert list(table["name"]) == ["sub__My_Photo", "sub__deeper__Cafe_Unicode", "top", "x"]
    assert list(table["group"]) == list(table["name"])
    assert table.set_index("name").loc["x", ["width", "height"]].tolist() == [5, 7]
    assert table.set_index("name").loc["sub__My_Photo", "origin"].endswith("sub/My Photo.JPG")
    assert sorted(p.name for p in (tmp_path / "raw" / "images").iterdir()) == [
        f"{name}.png" for name in table["name"]
    ]


def test_folder_source_records_conversions(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.zeros((6, 6), np.uint8)).save(photos / "gray.png")
    table = fetch_raw(_folder(photos), tmp_path / "raw")
    assert "grayscale" in table.loc[0, "notes"]
    assert read_rgb(tmp_path / "raw" / table.loc[0, "file"])[0].shape == (6, 6, 3)


def test_folder_source_is_deterministic_whatever_the_number_of_workers(tmp_path):
    photos = tmp_path / "photos"
    for i in range(5):
        _image(photos / f"p{i}.jpg", value=40 * i)
    fetch_raw(_folder(photos), tmp_path / "a", workers=1)
    fetch_raw(_folder(photos), tmp_path / "b", workers=3)  # finishing in any order
    assert (tmp_path / "a" / "sources.csv").read_bytes() == (tmp_path / "b" / "sources.csv").read_bytes()
    for i in range(5):
        name = f"images/p{i}.png"
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_truncated_photo_among_many_fails_the_download_naming_it(tmp_path):
    photos = tmp_path / "photos"
    for i in range(4):
        _image(photos / f"p{i}.jpg", value=40 * i)
    whole = (photos / "p2.jpg").read_bytes()
    (photos / "p2.jpg").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"p2\.jpg"):
        fetch_raw(_folder(photos), tmp_path / "raw", workers=2)
    assert not (tmp_path / "raw").exists()  # nothing half-written


def test_symlink_escaping_the_folder_is_refused(tmp_path):
    photos = tmp_path / "photos"
    _image(photos / "ok.png")
    outside = _image(tmp_path / "secret" / "outside.png")
    (photos / "link.png").symlink_to(outside)
    with pytest.raises(DataError, match=r"link\.png: symlink points outside"):
        fetch_raw(_folder(photos), tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_symlinked_dir_escaping_the_folder_is_refused(tmp_path):
    photos = tmp_path / "photos"
    _image(photos / "ok.png")
    _image(tmp_path / "elsewhere" / "x.png")
    (photos / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(DataError, match="symlink points outside"):
        fetch_raw(_folder(photos), tmp_path / "raw")


def test_symlink_within_the_folder_is_allowed(tmp_path):
    photos = tmp_path / "photos"
    _image(photos / "real" / "a.png")
    (photos / "alias.png").symlink_to(photos / "real" / "a.png")
    table = fetch_raw(_folder(photos), tmp_path / "raw")
    assert list(table["name"]) == ["alias", "real__a"]


def test_missing_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        fetch_raw(_folder(tmp_path / "nowhere"), tmp_path / "raw")


def test_folder_that_is_a_file_errors(tmp_path):
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(DataError, match="is not a directory"):
        fetch_raw(_folder(tmp_path / "file.png"), tmp_path / "raw")


def test_folder_without_images_errors(tmp_path):
    (tmp_path / "photos" / "sub").mkdir(parents=True)
    (tmp_path / "photos" / "notes.txt").write_text("hi\n")
    with pytest.raises(DataError, match="has no images"):
        fetch_raw(_folder(tmp_path / "photos"), tmp_path / "raw")


def test_names_that_clash_are_refused(tmp_path):
    photos = tmp_path / "photos"
    _image(photos / "a b.png")
    _image(photos / "a_b.jpg")
    with pytest.raises(DataError, match="both map to image name 'a_b'"):
        fetch_raw(_folder(photos), tmp_path / "raw")


def test_unreadable_file_names_it_and_keeps_existing_raw_dir(tmp_path):
    photos = tmp_path / "photos"
    _image(photos / "good.png")
    fetch_raw(_folder(photos), tmp_path / "raw")
    before = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "raw").rglob("*") if p.is_file()}
    (photos / "broken.jpg").write_text("definitely not a jpeg")
    with pytest.raises(DataError, match=r"broken\.jpg"):
        fetch_raw(_folder(photos), tmp_path / "raw")
    after = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "raw").rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "raw"]  # no temporaries left


def test_files_that_are_not_images_are_named_in_one_warning(tmp_path, caplog):
    photos = tmp_path / "photos"
    _image(photos / "a.png")
    Image.new("RGB", (12, 10), "red").save(photos / "anim.gif", save_all=True,
                                           append_images=[Image.new("RGB", (12, 10), "blue")])
    (photos / "notes.txt").write_text("not an image")
    (photos / "sub").mkdir()
    (photos / "sub" / "clip.xyz").write_bytes(b"?")
    (photos / ".DS_Store").write_bytes(b"")  # hidden: ignored without a word
    with caplog.at_level(logging.WARNING, logger="gansr"):
        table = fetch_raw(_folder(photos), tmp_path / "raw")
    assert caplog.messages == [
        "data.folder: 2 files skipped, not images by extension: notes.txt, sub/clip.xyz"]
    assert list(table["name"]) == ["a", "anim"]
    assert table["notes"].iloc[1] == "first of 2 frames; P converted to RGB"


def test_skipped_note_names_at_most_three_files():
    assert skipped_note(["a.txt"]) == "1 file skipped, not images by extension: a.txt"
    assert (skipped_note(list("abcde"), "images or videos")
            == "5 files skipped, not images or videos by extension: a, b, c, …")


def test_an_unreadable_archive_entry_is_named_by_url_and_entry(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.write(_image(tmp_path / "good.png"), "imgs/good.png")
        archive.writestr("imgs/broken.png", b"not a png")
    sha256 = hashlib.sha256(buffer.getvalue()).hexdigest()
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / sha256).write_bytes(buffer.getvalue())  # a verified download, so no network
    url = "https://example.invalid/photos.zip"
    with pytest.raises(DataError, match=re.escape(f"{url}: imgs/broken.png: not a readable image")):
        fetch_raw(DataConfig(source="url", url=url, sha256=sha256), tmp_path / "raw", tmp_path / "cache")


def test_an_error_after_the_progress_bar_starts_on_its_own_line_in_a_log(tmp_path):
    photos = tmp_path / "photos"
    for name in ("a.png", "b.png"):
        _image(photos / name)
    (photos / "zz.png").write_bytes(b"not a png")  # fails after the bar has drawn
    params = {"data": {"source": "folder", "folder": str(photos)}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    stage = ("from pathlib import Path; from gansr.stages import run_stage; "
             "run_stage('download', Path.cwd())")
    result = subprocess.run([sys.executable, "-c", stage], cwd=tmp_path, capture_output=True, check=False)
    assert result.returncode == 1 and b"download:" in result.stderr  # the bar drew on the pipe
    *_, last, after = result.stderr.decode().split("\n")
    assert last == f"gansr download: error: {photos / 'zz.png'}: not a readable image" and after == ""


def test_read_sources_without_download_errors(tmp_path):
    with pytest.raises(DataError, match="sources.csv: not found"):
        read_sources(tmp_path)
