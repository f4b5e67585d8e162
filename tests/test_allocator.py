"""Memory malloc keeps after large blocks are freed goes back to the system with release_freed_memory."""

from __future__ import annotations

import subprocess
import sys

import pytest

# After one 8 MiB block is freed, glibc serves the next blocks of that size from the heap; each one
# here is a little larger than the last, with a small block kept above it, so none can be reused.
PROBE = """
import sys, numpy as np, psutil
from gansr.allocator import release_freed_memory
me = psutil.Process()
np.ones(8 << 20, np.uint8)
base = me.memory_info().rss
kept = []
for i in range(20):
    block = np.ones((8 << 20) + i * (64 << 10), np.uint8)
    kept.append(np.ones(1000))
    del block
    if sys.argv[1] == "on":
        assert release_freed_memory()
print((me.memory_info().rss - base) >> 20)
"""


def held_mib(setting: str) -> int:
    """MiB a fresh process still holds after the probe's large blocks are freed."""
    result = subprocess.run([sys.executable, "-c", PROBE, setting], capture_output=True, text=True, check=True)
    return int(result.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_large_blocks_are_returned_only_when_released() -> None:
    assert held_mib("off") >= 4  # the control: glibc's default keeps a freed block's pages
    assert held_mib("on") == 0  # released after each block
