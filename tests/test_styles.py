"""Style images: the offline built-in set, the user's folder, their texture and palette targets."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import yaml
from PIL import Image

from gansr.config import StyleConfig
from gansr.data.styles import (
    BUILTIN_STYLES,
    PALETTE_DIRECTIONS,
    PALETTE_QUANTILES,
    load_styles,
    resize_shorter_side,
    style_losses,
    style_targets,
    texture_strength,
)
from gansr.errors import DataError
from gansr.models.backbone import build_backbone
from gansr.stages import run_stage


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


def test_targets_stack_quantiles_per_style_and_score_each_style_nearest_to_itself() -> None:
    styles = load_styles(StyleConfig(image_size=64))
    backbone = build_backbone("random")
    targets = style_targets(backbone, styles, scale=4)
    # Four pyramid levels of 64 random filters; chroma directions orthogonal to grey.
    assert [tuple(t.shape) for t in targets.textures] == [(3, 64, PALETTE_QUANTILES)] * 4
    assert tuple(targets.palettes.shape) == (3, PALETTE_DIRECTIONS, PALETTE_QUANTILES)
    np.testing.assert_allclose(tf.reduce_sum(targets.directions, axis=0), 0, atol=1e-6)
    seed = tf.constant([0, 0])
    for own, style in enumerate(styles, start=1):
        image = tf.constant(style.image[None], tf.float32) / 255.0
        losses = [[float(term) for term in style_losses(backbone, image, targets, tf.constant([s]), seed)]
                  for s in range(1, len(styles) + 1)]
        textures, palettes = zip(*losses)
        assert int(np.argmin(textures)) == own - 1
        assert palettes[own - 1] < 0.02 < max(palettes)  # its own colours, up to 1024 drawn pixels' noise
    # Gravel and brick are grey: no chroma; the colour wheel is all chroma.
    assert float(tf.reduce_max(tf.abs(targets.palettes[:2]))) < 0.05 < float(tf.reduce_max(targets.palettes[2]))


def test_each_style_pulls_relative_to_its_own_texture_strength_floored_at_the_mean() -> None:
    # Three styles' quantiles: responses of mean size 6, 2 and 1 (mean of the three: 3).
    layer = tf.constant(np.stack([np.full((2, 8), v, np.float32) for v in (6.0, -2.0, 1.0)]))
    np.testing.assert_allclose(texture_strength(layer), [6.0, 3.0, 3.0])
    # The same, layer by layer, on the built-in styles' targets.
    styles = load_styles(StyleConfig(image_size=64))
    targets = style_targets(build_backbone("random"), styles, scale=4)
    for quantiles in targets.textures:
        own = tf.reduce_mean(tf.abs(quantiles), axis=[1, 2]).numpy()
        np.testing.assert_allclose(texture_strength(quantiles), np.maximum(own, own.mean()), rtol=1e-6)


def test_resize_keeps_the_aspect_ratio() -> None:
    assert resize_shorter_side(np.zeros((100, 300, 3), np.uint8), 50).shape == (50, 150, 3)
