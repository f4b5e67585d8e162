"""Style images: the offline built-in set and the user's folder."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from gansr.config import StyleConfig
from gansr.errors import DataError
from gansr.stages import run_stage
from gansr.style.images import BUILTIN_STYLES, load_styles, resize_shorter_side


def test_builtin_styles_load_offline_with_their_origin() -> None:
    styles = load_styles(StyleConfig(image_size=64))
    assert [s.name for s in styles] == [b.name for b in BUILTIN_STYLES]
    assert all(min(s.image.shape[:2]) == 64 and s.image.shape[2] == 3 for s in styles)
    assert all(b.licence and b.origin for b in BUILTIN_STYLES)


def test_folder_styles_are_named_by_file_in_sorted_order(tmp_path: Path) -> None:
    for name, colour in (("zebra", (0, 0, 0)), ("autumn", (200, 80, 0))):
        Image.new("RGB", (80, 40), colour).save(tmp_path / f"{name}.png")
    styles = load_styles(StyleConfig(source="folder", folder=str(tmp_path), image_size=32))
    assert [s.name for s in styles] == ["autumn", "zebra"]
    assert styles[0].image.shape == (32, 64, 3)


@pytest.mark.parametrize("make", [lambda p: None, lambda p: p.mkdir()])
def test_missing_or_empty_style_folder_names_the_setting(tmp_path: Path, make) -> None:
    folder = tmp_path / "styles"
    make(folder)
    with pytest.raises(DataError, match="style.folder"):
        load_styles(StyleConfig(source="folder", folder=str(folder)))


def test_a_style_folder_without_images_fails_the_first_stage_before_any_work(tmp_path: Path,
                                                                             capsys) -> None:
    folder = tmp_path / "styles"
    folder.mkdir()
    (folder / "notes.txt").write_text("no style image here")
    params = {"style": {"source": "folder", "folder": str(folder)}}  # data: the built-in photos
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(SystemExit) as exit_info:
        run_stage("download", tmp_path)
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.strip().startswith(f"gansr download: error: style.folder {folder} has no images")
    assert not (tmp_path / "data").exists()
    Image.new("RGB", (8, 8)).save(folder / "stripes.png")
    run_stage("download", tmp_path)
    assert (tmp_path / "data" / "raw" / "sources.csv").is_file()


def test_resize_keeps_the_aspect_ratio() -> None:
    assert resize_shorter_side(np.zeros((100, 300, 3), np.uint8), 50).shape == (50, 150, 3)
