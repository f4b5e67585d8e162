"""Throughput of the data stages (folder source → pairs → validate) on synthetic 2K photos.

    python bench/data_throughput.py [--images 50] [--degradation realistic] [--second-order]
                                    [--tile-size 256] [--near-duplicate-bits 6]

Writes N photo-like 2040×1356 JPEGs (DIV2K's usual size) into a temporary
folder, runs the three stages' library functions on them as `dvc repro`
would, and prints images/s of each stage and its peak resident memory (RSS):
of the stage's own process and of its largest worker process. A forked
worker's RSS includes the pages it still shares with its parent, so the
stage's footprint is below their sum. `--images 1000` is the full run.
With `--tile-size` each training photo becomes tiles of that HR side, each
a pair; the rates stay per source photo.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import _quiet  # noqa: F401  (first: quiets TensorFlow before anything loads it)
import numpy as np
import psutil  # installed with dvc
from PIL import Image
from tqdm import tqdm

from gansr.config import DataConfig, PairsConfig, ValidateConfig
from gansr.data.fetch import fetch_raw
from gansr.data.pairs import available_cores, build_pairs
from gansr.validation import validate_pairs

WIDTH, HEIGHT = 2040, 1356
SCALE = 4
MB = 1024 * 1024


@dataclass
class Peak:
    """Largest RSS seen while sampling: of this process, and of any one of its descendants."""

    main: int = 0
    worker: int = 0


@contextmanager
def peak_memory(interval_s: float = 0.05) -> Iterator[Peak]:
    """Sample RSS in a background thread while the block runs.

    RSS only (a counter the kernel keeps): PSS would walk the page tables of
    every process and stall the workers' memory mappings while it does.
    """
    peak, done, me = Peak(), threading.Event(), psutil.Process()

    def sample() -> None:
        while not done.is_set():
            peak.main = max(peak.main, me.memory_info().rss)
            for child in me.children(recursive=True):
                try:
                    peak.worker = max(peak.worker, child.memory_info().rss)
                except psutil.Error:  # a worker that just exited
                    pass
            done.wait(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()


def synthetic_photo(rng: np.random.Generator) -> np.ndarray:
    """Smooth colour regions plus fine grain, so codecs and filters work about as hard as on photos."""
    coarse = rng.integers(0, 256, (HEIGHT // 48 + 1, WIDTH // 48 + 1, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC))
    grain = rng.normal(0.0, 6.0, (HEIGHT, WIDTH, 3))
    return np.clip(smooth + grain, 0, 255).astype(np.uint8)


def write_photos(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in tqdm(range(count), desc="synthetic photos", unit="image", leave=False):
        Image.fromarray(synthetic_photo(rng)).save(folder / f"photo{i:04d}.jpg", quality=95)


def measure(name: str, count: int, run: Callable[[], object]) -> None:
    """Run one stage and print its line of the table."""
    with peak_memory() as peak:
        started = time.perf_counter()
        run()
        seconds = time.perf_counter() - started
    worker = f"{peak.worker / MB:.0f}" if peak.worker else "-"
    print(f"{name:<9} {count / seconds:>9.2f} {seconds:>9.1f} {peak.main / MB:>10.0f} {worker:>10}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--degradation", choices=["bicubic", "realistic"], default="bicubic")
    parser.add_argument("--second-order", action="store_true")
    parser.add_argument("--tile-size", type=int, default=PairsConfig.tile_size)
    parser.add_argument("--near-duplicate-bits", type=int, default=PairsConfig.near_duplicate_bits)
    args = parser.parse_args()

    pairs_cfg = PairsConfig(degradation=args.degradation, second_order=args.second_order,
                            tile_size=args.tile_size, near_duplicate_bits=args.near_duplicate_bits)
    with tempfile.TemporaryDirectory(prefix="gansr-bench-") as tmp:
        root = Path(tmp)
        write_photos(root / "photos", args.images)
        print(f"{args.images} synthetic {WIDTH}x{HEIGHT} JPEGs, x{SCALE}, degradation {args.degradation}"
              f"{' (second order)' if args.second_order else ''}, tiles {args.tile_size or 'off'}, "
              f"near-duplicates within {args.near_duplicate_bits} bits; {available_cores()} cores "
              f"({platform.processor() or platform.machine()}), {os.cpu_count()} CPUs in the machine")
        print(f"{'stage':<9} {'images/s':>9} {'seconds':>9} {'RSS MB':>10} {'worker MB':>10}")
        measure("download", args.images,
                lambda: fetch_raw(DataConfig(source="folder", folder=str(root / "photos")), root / "raw"))
        measure("pairs", args.images, lambda: build_pairs(root / "raw", root / "pairs", SCALE, 0, pairs_cfg))
        measure("validate", args.images,
                lambda: validate_pairs(root / "pairs", root / "report", root / "validated", SCALE,
                                       pairs_cfg, ValidateConfig(min_train_pairs=1)))


if __name__ == "__main__":
    main()
