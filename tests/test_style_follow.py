"""The follow measures and the controls: a style drawn from the photo passes, a style laid over it fails."""

import numpy as np
import pytest
import skimage.data
from PIL import Image

from gansr.style.controls import palette_emboss, tiled_blend, unstyled_control
from gansr.style.follow import (
    MAX_FIXED,
    correlation,
    fine_residual,
    fixed_pattern,
    pan_test,
    shift_test,
)

SCALE = 2


def upscale(lr: np.ndarray) -> np.ndarray:
    """A stand-in generator: bicubic ×SCALE."""
    height, width = lr.shape[:2]
    return np.asarray(Image.fromarray(lr).resize((width * SCALE, height * SCALE), Image.Resampling.BICUBIC))


STYLE = skimage.data.gravel()[:64, :64, None].repeat(3, axis=-1)
PHOTOS = [skimage.data.astronaut()[::4, ::4][:96, :100], skimage.data.coffee()[::4, ::4][:96, :100]]


def drawn_from_photo(lr: np.ndarray) -> np.ndarray:
    return palette_emboss(upscale(lr), STYLE)


def laid_over_photo(lr: np.ndarray) -> np.ndarray:
    return tiled_blend(upscale(lr), STYLE)


def test_correlation_is_one_for_a_copy_minus_one_for_its_negative_and_zero_when_flat() -> None:
    a = np.random.default_rng(0).normal(size=(20, 20, 3))
    assert correlation(a, a, 2) == pytest.approx(1.0)
    assert correlation(a, -a, 2) == pytest.approx(-1.0)
    assert correlation(a, np.ones_like(a), 2) == 0.0


def test_the_residual_keeps_fine_strokes_and_drops_a_smooth_tint() -> None:
    unstyled = upscale(PHOTOS[0])
    tinted = np.clip(unstyled.astype(int) + np.linspace(0, 40, unstyled.shape[1])[None, :, None], 0, 255)
    assert np.abs(fine_residual(tinted.astype(np.uint8), unstyled)).mean() < 1.0  # rounding, clipping, edges
    assert np.abs(fine_residual(laid_over_photo(PHOTOS[0]), unstyled)).mean() > 5


@pytest.mark.parametrize("shift", [16, 13])
def test_a_style_drawn_from_the_photo_moves_with_it_and_one_laid_over_it_stays(shift: int) -> None:
    drawn = shift_test(drawn_from_photo, upscale, PHOTOS[0], shift, SCALE)
    laid = shift_test(laid_over_photo, upscale, PHOTOS[0], shift, SCALE)
    assert drawn.follows and drawn.along > 0.95 and drawn.in_place < 0.2
    assert not laid.follows and laid.in_place > 0.5 > laid.along


def test_two_photos_share_the_pattern_of_an_overlay_and_not_that_of_a_drawn_style() -> None:
    def residuals(style):  # noqa: ANN001, ANN202
        return [fine_residual(style(lr), upscale(lr)) for lr in PHOTOS]

    assert fixed_pattern(residuals(drawn_from_photo), SCALE) < MAX_FIXED
    assert fixed_pattern(residuals(laid_over_photo), SCALE) > 0.5


def test_a_pan_moves_a_drawn_style_with_the_scene_and_not_an_overlay() -> None:
    drawn = pan_test(drawn_from_photo, upscale, PHOTOS[1], SCALE)
    laid = pan_test(laid_over_photo, upscale, PHOTOS[1], SCALE)
    assert drawn.follows and drawn.motion_error < 0.5
    assert not laid.follows and laid.motion_error > 1.0 and laid.flicker > laid.flicker_unstyled + 1


def test_the_controls_keep_the_image_shape_and_the_unstyled_one_changes_nothing() -> None:
    image = upscale(PHOTOS[0])
    for control in (tiled_blend, palette_emboss, unstyled_control):
        out = control(image, STYLE)
        assert out.shape == image.shape and out.dtype == np.uint8
    assert unstyled_control(image, STYLE) is image
    # The tile starts at the corner: the top-left of the blend is half photo, half style image.
    np.testing.assert_array_equal(tiled_blend(image, STYLE)[:64, :64], (image[:64, :64].astype(np.uint16)
                                                                          + STYLE) // 2)
