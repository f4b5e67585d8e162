"""read_rgb turns whatever a user drops in into 8-bit RGB, or fails naming the file."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from gansr.errors import DataError
from gansr.imageio import decode_rgb, read_faithful_rgb, read_image, read_rgb, sha256_file, to_uint8, write_png


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


def _png_16_bit_rgb(path, samples: np.ndarray):
    """Write an H×W×3 uint16 array as a 16-bit RGB PNG, which Pillow cannot write."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width = samples.shape[:2]
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in samples)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)  # 16 bits, colour type 2 (RGB)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))
    return path


def test_16_bit_rgb_is_scaled_to_8_bit_with_a_note(tmp_path):
    samples = np.random.default_rng(0).integers(0, 65536, (8, 9, 3)).astype(np.uint16)
    samples[0, :3] = [[0, 0, 0], [65535, 65535, 65535], [255, 65280, 32896]]
    image = read_image(_png_16_bit_rgb(tmp_path / "deep.png", samples))
    assert (image.mode, image.bit_depth, image.notes) == ("RGB", 16, ["16-bit samples scaled to 8 bit"])
    np.testing.assert_array_equal(image.rgb[0, :2], [[0, 0, 0], [255, 255, 255]])  # full scale stays full
    # Pillow keeps the high byte: within one level of the exact v / 257.
    assert np.abs(image.rgb.astype(int) - np.rint(samples / 257)).max() <= 1


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


def test_an_image_past_the_bomb_warning_limit_gets_a_note_not_a_warning(tmp_path, monkeypatch):
    path = _save(Image.new("RGB", (40, 40)), tmp_path / "large.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1 600 px: over the limit, under twice it
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning would fail the read
        _, notes = read_rgb(path)
    assert notes == ["large image: 0 Mpx"]
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1600)
    assert read_rgb(path)[1] == []


def test_a_mode_without_a_faithful_rendering_is_refused_where_asked(tmp_path):
    floats = np.random.default_rng(0).random((6, 5), dtype=np.float32)  # values in [0, 1): black as RGB
    path = _save(Image.fromarray(floats), tmp_path / "float.tiff")
    assert read_rgb(path)[1] == ["F converted to RGB"]  # the pipeline records and validates the mode
    message = "float.tiff: mode F has no faithful 8-bit RGB rendering"
    with pytest.raises(DataError, match=message):
        read_faithful_rgb(path)
    with pytest.raises(DataError, match=message):
        decode_rgb(path.read_bytes(), "float.tiff")
    gray = _save(Image.fromarray(np.uint8(floats * 255)), tmp_path / "gray.tiff")
    expected = ["L grayscale expanded to RGB"]
    assert read_faithful_rgb(gray)[1] == decode_rgb(gray.read_bytes(), "gray.tiff")[1] == expected


def test_errors_are_one_line(tmp_path):
    path = tmp_path / "bad.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)  # JPEG magic, garbage after
    with pytest.raises(DataError) as info:
        read_rgb(path)
    assert "\n" not in str(info.value) and "bad.jpg" in str(info.value)


def test_to_uint8_rounds_and_clips() -> None:
    assert to_uint8(np.array([-0.1, 0.4 / 255, 1.6 / 255, 1.2])).tolist() == [0, 0, 2, 255]
