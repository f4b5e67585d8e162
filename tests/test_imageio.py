"""read_rgb turns whatever a user drops in into 8-bit RGB, or fails naming the file."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from gansr.errors import DataError
from gansr.imageio import read_rgb, sha256_file, write_png


def _save(image: Image.Image, path, **kwargs):
    image.save(path, **kwargs)
    return path


def test_rgb_png_round_trips_exactly(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    write_png(tmp_path / "x.png", rgb)
    back, notes = read_rgb(tmp_path / "x.png")
    assert back.dtype == np.uint8 and back.shape == (17, 23, 3)
    np.testing.assert_array_equal(back, rgb)
    assert notes == []


def test_write_png_is_byte_identical_and_leaves_no_temporaries(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    write_png(tmp_path / "a.png", rgb)
    write_png(tmp_path / "b.png", rgb)
    assert sha256_file(tmp_path / "a.png") == sha256_file(tmp_path / "b.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]


def test_write_png_rejects_non_rgb_arrays(tmp_path):
    with pytest.raises(ValueError):
        write_png(tmp_path / "x.png", np.zeros((4, 4), np.uint8))


def test_grayscale_is_expanded_to_rgb(tmp_path):
    path = _save(Image.fromarray(np.full((5, 7), 90, np.uint8)), tmp_path / "g.png")
    rgb, notes = read_rgb(path)
    assert rgb.shape == (5, 7, 3) and (rgb == 90).all()
    assert any("grayscale" in note for note in notes)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:2] = (255, 0, 0, 255)  # opaque red top half, transparent black bottom half
    rgb, notes = read_rgb(_save(Image.fromarray(rgba), tmp_path / "a.png"))
    assert (rgb[:2] == (255, 0, 0)).all()
    assert (rgb[2:] == 255).all()
    assert any("white" in note for note in notes)


def test_palette_is_converted(tmp_path):
    image = Image.new("P", (6, 6), 0)
    image.putpalette([10, 200, 30] + [0] * 765)
    rgb, notes = read_rgb(_save(image, tmp_path / "p.png"))
    assert (rgb == (10, 200, 30)).all()
    assert any("P" in note for note in notes)


def test_palette_transparency_is_composited_on_white(tmp_path):
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    image.putpixel((0, 0), 1)
    rgb, notes = read_rgb(_save(image, tmp_path / "p.png", transparency=0))
    assert tuple(rgb[0, 0]) == (0, 0, 255)
    assert (rgb[1:] == 255).all()
    assert any("white" in note for note in notes)


def test_16_bit_grayscale_is_scaled_to_8_bit(tmp_path):
    values = np.array([[0, 257 * 128, 65535]], np.uint16)
    rgb, notes = read_rgb(_save(Image.fromarray(values), tmp_path / "deep.png"))
    assert rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, :, 0], [0, 128, 255])
    assert any("16-bit" in note for note in notes)


def test_cmyk_jpeg_is_converted(tmp_path):
    rgb, notes = read_rgb(_save(Image.new("CMYK", (8, 8), (0, 0, 0, 0)), tmp_path / "c.jpg"))
    assert rgb.shape == (8, 8, 3) and (rgb > 240).all()  # no ink = white
    assert any("CMYK" in note for note in notes)


def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((20, 40, 3), np.uint8)  # stored landscape, left half red
    stored[:, :20] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = _save(Image.fromarray(stored), tmp_path / "r.jpg", exif=exif.tobytes(), quality=95)
    rgb, notes = read_rgb(path)
    assert rgb.shape == (40, 20, 3)  # displayed portrait
    assert rgb[5, 10, 0] > 200 and rgb[35, 10, 0] < 50  # stored left half is now on top
    assert any("orientation" in note for note in notes)


def test_truncated_png_names_the_file(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(DataError, match="cut.png"):
        read_rgb(path)


def test_zero_byte_file_is_reported_as_empty(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.png: empty file"):
        read_rgb(path)


def test_text_named_png_is_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image\n")
    with pytest.raises(DataError, match=r"notes\.png: not a readable image"):
        read_rgb(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="nope.png: file not found"):
        read_rgb(tmp_path / "nope.png")


def test_decompression_bomb_limit_is_honoured(tmp_path, monkeypatch):
    path = _save(Image.new("RGB", (100, 100)), tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 10 000 px > 2 × limit
    with pytest.raises(DataError, match="bomb.png: .*decompression bomb"):
        read_rgb(path)


def test_errors_are_one_line(tmp_path):
    path = tmp_path / "bad.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)  # JPEG magic, garbage after
    with pytest.raises(DataError) as info:
        read_rgb(path)
    assert "\n" not in str(info.value) and "bad.jpg" in str(info.value)
