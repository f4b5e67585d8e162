"""Perceptual hashes and near-duplicate groups."""

from __future__ import annotations

import io
import itertools

import numpy as np
from PIL import Image
from scipy.fft import dct

from gansr.data import near_duplicates
from gansr.data.near_duplicates import (
    connected_components,
    near_duplicate_groups,
    near_duplicate_links,
    perceptual_hash,
)


def _photo(seed: int, width: int = 160, height: int = 120) -> np.ndarray:
    """Smooth colour regions plus grain, roughly how a photo looks to a perceptual hash."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 16 + 2, width // 16 + 2, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), float)
    return np.clip(smooth + rng.normal(0, 4, smooth.shape), 0, 255).astype(np.uint8)


def _bits_apart(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def test_hash_is_the_published_phash():
    """Gray, 32×32 Lanczos, 2-D DCT-II, 8×8 lowest frequencies above their median (as imagehash.phash)."""
    for seed in range(3):
        image = _photo(seed)
        gray = Image.fromarray(image).convert("L").resize((32, 32), Image.Resampling.LANCZOS)
        low = dct(dct(np.asarray(gray, float), axis=0), axis=1)[:8, :8]
        bits = "".join("1" if bit else "0" for bit in (low > np.median(low)).ravel())
        assert perceptual_hash(image) == f"{int(bits, 2):016x}"


def test_edits_keep_a_photo_close_and_other_photos_stay_far():
    photo = _photo(0)
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="JPEG", quality=60)
    edited = [
        np.asarray(Image.open(buffer).convert("RGB")),
        np.asarray(Image.fromarray(photo).resize((100, 75), Image.Resampling.BILINEAR)),
        np.clip(photo.astype(int) - 20, 0, 255).astype(np.uint8),
        np.clip((photo.astype(float) - 128) * 1.15 + 128, 0, 255).astype(np.uint8),
    ]
    original = perceptual_hash(photo)
    assert all(_bits_apart(original, perceptual_hash(copy)) <= 4 for copy in edited)
    others = [perceptual_hash(_photo(seed)) for seed in range(1, 8)]
    assert min(_bits_apart(a, b) for a, b in itertools.combinations([original, *others], 2)) > 12


def test_links_match_a_brute_force_comparison_across_chunks(monkeypatch):
    monkeypatch.setattr(near_duplicates, "_CHUNK", 7)  # several chunks, one partly filled
    rng = np.random.default_rng(0)
    values = [int(v) for v in rng.integers(0, 2**63, 40, dtype=np.int64)]
    values += [values[3] ^ 0b1, values[3], values[10] ^ 0b111, values[20] ^ 0xFFFF]  # near, equal, 3, 16
    hashes = [f"{v:016x}" for v in values]
    for max_bits in (0, 3, 20):
        expected = {(i, j) for i, j in itertools.combinations(range(len(values)), 2)
                    if (values[i] ^ values[j]).bit_count() <= max_bits}
        links = near_duplicate_links(hashes, max_bits)
        found = connected_components(len(hashes), links)
        reference = connected_components(len(hashes), expected)
        assert found == reference
        assert all(i < j for i, j in links) and set(links) <= expected
    assert (3, 41) in near_duplicate_links(hashes, 0)  # an equal hash: linked at 0 bits


def test_components_are_labelled_by_their_smallest_member_whatever_the_link_order():
    links = [(4, 5), (1, 4), (2, 3)]
    assert connected_components(6, links) == [0, 1, 2, 2, 1, 1]
    assert connected_components(6, [(j, i) for i, j in reversed(links)]) == [0, 1, 2, 2, 1, 1]


def test_groups_join_chains_of_near_duplicates():
    hashes = [f"{v:016x}" for v in (0, 0b11, 0b1111, 2**64 - 1)]  # 0-3: 2 bits, 3-15: 2 bits, 0-15: 4
    assert near_duplicate_groups(hashes, 2) == [0, 0, 0, 3]
    assert near_duplicate_groups(hashes, 1) == [0, 1, 2, 3]
