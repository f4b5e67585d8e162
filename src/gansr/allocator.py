"""Large blocks go back to the system when freed, so a loop over large images keeps flat memory.

glibc's malloc raises its mmap threshold whenever a large block is freed (up
to 32 MiB), after which blocks of that size come from the heap, where freed
ones are kept and fragment it. Scoring 2040×1356 images one at a time grew a
training stage by about 40 MB an image that way: 80 val images of DIV2K's
size added over 3 GB. Fixing the threshold at 1 MiB (which also turns the
raising off) keeps every larger block mapped on its own and unmapped when
freed, for a negligible cost beside the work done on such blocks. The entry
points (``run_stage``, ``gansr``) call :func:`return_large_blocks`; elsewhere
than glibc it does nothing.
"""

from __future__ import annotations

import ctypes

M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h
LARGE_BLOCK = 1 << 20  # bytes


def return_large_blocks(threshold: int = LARGE_BLOCK) -> bool:
    """Have malloc map blocks of ``threshold`` bytes or more on their own; whether the C library allowed it."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process runs on
    except (OSError, AttributeError):  # one without mallopt (macOS, Windows)
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))
