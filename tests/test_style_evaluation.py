"""The style generator on test images: the score, the controls it tells apart, the follow measures, the picture."""

from __future__ import annotations

import json
from pathlib import Path

import skimage.data
from PIL import Image

from gansr.config import EvaluateConfig, StyleConfig
from gansr.data.pairs import bicubic_downscale, mod_crop
from gansr.evaluation import LABEL_HEIGHT, ImagePair
from gansr.models.backbone import build_backbone
from gansr.style.evaluation import evaluate_styles
from gansr.style.images import load_styles
from gansr.style.network import build_styled_generator, set_style_images

SCALE = 4


def test_style_evaluation_scores_outputs_and_controls_and_shows_full_resolution_crops(tmp_path: Path) -> None:
    styles = load_styles(StyleConfig(image_size=128))
    # Bicubic super-resolution (untrained) and a style network at its start: the swapped strokes alone.
    model = build_styled_generator(SCALE, 4, 1, tuple(s.name for s in styles), style_channels=8, style_blocks=1,
                                   patches=256, shading=0.5)
    set_style_images(model, [s.image for s in styles])
    photos = {"astronaut": skimage.data.astronaut()[:256, 128:384], "coffee": skimage.data.coffee()[::2, ::2]}
    pairs = [ImagePair(name, bicubic_downscale(mod_crop(hr, SCALE), SCALE), mod_crop(hr, SCALE))
             for name, hr in photos.items()]
    cfg = EvaluateConfig(sample_images=2, style_crop=40)
    scores = evaluate_styles(model, pairs, styles, build_backbone("random"), SCALE, cfg, tmp_path, tmp_path)
    assert json.loads((tmp_path / "style.json").read_text()) == scores
    assert set(scores["styles"]) == {s.name for s in styles} and scores["pairs"] == 6
    # Every style follows the photo: shifted along with it, unrelated between photos, moving with a pan.
    for entry in scores["follow"].values():
        assert entry["shift_16_along_min"] > 0.95 and entry["shift_16_in_place_max"] < 0.2
        assert entry["shift_13_along_min"] > 0.95 and entry["fixed_pattern"] < 0.1 and entry["pan_follows"] == 1
    assert all(entry["follows"] == 1.0 for entry in scores["styles"].values())
    controls = scores["controls"]
    # The tiled blend moves the statistics towards its own style, but its textured styles stay where they
    # are when the photo moves, so they do not count; the unstyled output moves nowhere.
    blend = controls["tiled_blend"]
    assert blend["statistics_rate"] > 0.8 and blend["own_style_rate"] < 0.5
    assert blend["follow"]["gravel"]["fixed_pattern"] > 0.5 and blend["follow"]["gravel"]["pan_follows"] == 0
    assert controls["palette_emboss"]["follow"]["gravel"]["shift_16_along_min"] > 0.95
    unstyled = controls["unstyled"]
    assert unstyled["own_style_rate"] == 0.0 and unstyled["mean_moved"] == 0.0
    assert unstyled["min_content_ssim"] > 0.95 > blend["min_content_ssim"]
    assert set(scores["training_loss_reduction"]) == {s.name for s in styles}
    with Image.open(tmp_path / "styles.png") as grid:
        # Header + 2 images, each a row of 40-pixel crops at 1:1: none + 3 styles.
        assert grid.size == (4 * 40, 3 * (40 + LABEL_HEIGHT))
