"""Perceptual hashes, and the groups of near-duplicate images they reveal.

SHA-256 catches an exact copy of a photo, not a re-encoded, resized or
brightened one. The 64-bit pHash (Zauner, 2010; as the ``imagehash`` package
computes it) does: the image in gray, resized to 32×32, its 2-D DCT, and one
bit per coefficient of the 8×8 lowest frequencies — above their median or
not. Such edits flip a few bits; unrelated photos differ in about half.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image

HASH_SIDE = 8  # 8×8 = 64 bits
_SAMPLE_SIDE = 32  # the gray image the DCT runs on
_CHUNK = 1024  # distinct hashes compared at once: 8 MiB of XORs per 1,000 hashes
# The first HASH_SIDE rows of the (unnormalised) DCT-II basis: cos(π (2x + 1) u / 2N).
_DCT = np.cos(np.pi * np.outer(np.arange(HASH_SIDE), 2 * np.arange(_SAMPLE_SIDE) + 1) / (2 * _SAMPLE_SIDE))


def perceptual_hash(rgb: np.ndarray) -> str:
    """The 64-bit pHash of an H×W×3 ``uint8`` image, as 16 hex digits (row-major bits)."""
    gray = Image.fromarray(rgb).convert("L").resize((_SAMPLE_SIDE, _SAMPLE_SIDE), Image.Resampling.LANCZOS)
    low = _DCT @ np.asarray(gray, dtype=np.float64) @ _DCT.T
    return np.packbits(low > np.median(low)).tobytes().hex()


def near_duplicate_links(hashes: Sequence[str], max_bits: int) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, of hashes at most ``max_bits`` bits apart.

    Equal hashes (e.g. the tiles of one image) are linked to the first of
    them, and only distinct hashes are compared with each other: an O(n²)
    popcount, in chunks so memory stays bounded (1,000 hashes: milliseconds;
    20,000: seconds).
    """
    values = np.array([int(h, 16) for h in hashes], dtype=np.uint64)
    distinct, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    links = [(int(first[k]), i) for i, k in enumerate(inverse) if first[k] != i]
    for start in range(0, len(distinct), _CHUNK):
        distances = np.bitwise_count(distinct[start:start + _CHUNK, None] ^ distinct[None, :])
        rows, cols = np.nonzero(distances <= max_bits)
        for a, b in zip(rows + start, cols, strict=True):
            if a < b:
                i, j = sorted((int(first[a]), int(first[b])))
                links.append((i, j))
    return links


def connected_components(count: int, links: Iterable[tuple[int, int]]) -> list[int]:
    """For each of ``count`` items, the smallest item linked to it, directly or through others.

    Union-find: every root is the smallest item of its set, so the labels do
    not depend on the order of ``links``.
    """
    parent = list(range(count))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving
            i = parent[i]
        return i

    for i, j in links:
        a, b = root(i), root(j)
        parent[max(a, b)] = min(a, b)
    return [root(i) for i in range(count)]


def near_duplicate_groups(hashes: Sequence[str], max_bits: int) -> list[int]:
    """For each hash, the index of the first hash in its group of near-duplicates."""
    return connected_components(len(hashes), near_duplicate_links(hashes, max_bits))
