"""The data stages and training at the size users train on: N photos of 2040×1356 (DIV2K's size).

    python bench/data_at_size.py [--images 200 800] [--steps 200] [--tile-size 256]
                                 [--degradation realistic] [--second-order] [--near-duplicate-bits 6]

For each N, writes N photo-like JPEGs into a temporary project, each a 2×2
mosaic of random crops of the built-in photos (resized, flipped, with a colour
gain and grain, so that no two are near-duplicates), then runs the real stages
on them as `dvc repro` does, each in its own process: download (folder
source) → pairs (tiles of --tile-size) → validate → shards → pretrain for
--steps steps (with the train.input the data picks, streamed at these sizes).
Prints each stage's wall time, images/s and peak resident memory (RSS) of
the stage's process and of its largest worker. A forked worker's RSS
includes pages it shares with its parent, so a stage's footprint is below
their sum.

Then, side by side in this process: the crops per second the streamed
training input delivers on its own, and the crops per second the
pretraining step consumes when fed by it, with the share of step time spent
waiting for input. Last, the time to group --hashes perceptual hashes by
near-duplicates (the O(n²) popcount of pairs and validate).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import _quiet  # noqa: F401  (first: quiets TensorFlow before anything loads it)
import numpy as np
import psutil  # installed with dvc
import yaml
from PIL import Image
from tqdm import tqdm
from train_throughput import build_path

from gansr.config import load_params
from gansr.data.dataset import stream_buffer, training_dataset
from gansr.data.near_duplicates import near_duplicate_groups
from gansr.data.parallel import available_cores
from gansr.data.shards import read_index
from gansr.data.sources import builtin_images
from gansr.imageio import read_rgb
from gansr.layout import PARAMS_FILE, Layout
from gansr.training.precision import apply_precision

REPO = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 2040, 1356
MB = 1024 * 1024
STAGES = ("download", "pairs", "validate", "shards", "pretrain")


@dataclass
class Peak:
    """Largest RSS seen while sampling: of a process, and of any one of its descendants."""

    main: int = 0
    worker: int = 0


@contextmanager
def peak_memory(process: psutil.Process, interval_s: float = 0.05) -> Iterator[Peak]:
    """Sample the RSS of ``process`` and its descendants in a background thread while the block runs.

    RSS only (a counter the kernel keeps): PSS would walk the page tables of
    every process and stall the workers' memory mappings while it does.
    """
    peak, done = Peak(), threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                peak.main = max(peak.main, process.memory_info().rss)
                children = process.children(recursive=True)
            except psutil.Error:  # the stage has exited
                return
            for child in children:
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


def mosaic(photos: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A 2040×1356 photo-like image: four random crops of ``photos``, each flipped, tinted and grainy."""
    half_h, half_w = HEIGHT // 2, WIDTH // 2
    out = np.empty((HEIGHT, WIDTH, 3), np.uint8)
    for top, left in ((0, 0), (0, half_w), (half_h, 0), (half_h, half_w)):
        photo = photos[rng.integers(len(photos))]
        side = rng.uniform(0.3, 0.8)
        h, w = int(photo.shape[0] * side), int(photo.shape[1] * side)
        y, x = rng.integers(0, photo.shape[0] - h + 1), rng.integers(0, photo.shape[1] - w + 1)
        crop = photo[y : y + h, x : x + w][:, :: rng.choice([-1, 1])]
        quadrant = np.asarray(Image.fromarray(crop).resize((half_w, half_h), Image.Resampling.BICUBIC), float)
        quadrant = quadrant * rng.uniform(0.8, 1.2, 3) + rng.normal(0.0, 3.0, quadrant.shape)
        out[top : top + half_h, left : left + half_w] = np.clip(quadrant, 0, 255).astype(np.uint8)
    return out


def write_photos(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    photos = [read_rgb(image.path)[0] for image in builtin_images()]
    rng = np.random.default_rng(0)
    for i in tqdm(range(count), desc="photos", unit="image", leave=False):
        Image.fromarray(mosaic(photos, rng)).save(folder / f"photo{i:04d}.jpg", quality=95)


def make_project(root: Path, photos: Path, args: argparse.Namespace) -> None:
    """params.yaml of this repository, pointed at ``photos``, with the bench's settings."""
    params = yaml.safe_load((REPO / PARAMS_FILE).read_text())
    params["data"].update(source="folder", folder=str(photos))
    params["pairs"].update(tile_size=args.tile_size, degradation=args.degradation, second_order=args.second_order,
                           near_duplicate_bits=args.near_duplicate_bits)
    params["train"].update(pretrain_steps=args.steps, checkpoint_every=args.steps)
    (root / PARAMS_FILE).write_text(yaml.safe_dump(params, sort_keys=False))


def run_stage(root: Path, name: str) -> tuple[float, Peak]:
    """Run one stage as dvc.yaml's command does; return its seconds and peak memory."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # the project's own store
    started = time.perf_counter()
    process = psutil.Popen([sys.executable, str(REPO / "stages" / "run.py"), name], cwd=root, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with peak_memory(process) as peak:
        _, errors = process.communicate()
    if process.returncode:
        sys.exit(f"stage {name} failed:\n{errors[-3000:]}")
    return time.perf_counter() - started, peak


def input_against_step(root: Path, args: argparse.Namespace) -> None:
    """Crops/s of the input pipeline alone, and of the pretraining step fed by it, in this process."""
    params = load_params(root / PARAMS_FILE)
    index = read_index(Layout.at(root).shards)
    train = params.train

    def batches() -> Iterator:  # streamed whatever the size, as data too large for memory is
        return iter(training_dataset(index, params.scale, train.patch_size, train.batch_size, params.seed,
                                     buffer=stream_buffer(index, replace(train, input="stream"))))

    alone = batches()
    started = time.perf_counter()
    next(alone)
    fill = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(args.input_batches):
        next(alone)
    delivered = args.input_batches * train.batch_size / (time.perf_counter() - started)
    del alone

    shape = argparse.Namespace(channels=params.model.channels, blocks=params.model.blocks,
                               patch_size=train.patch_size, batch_size=train.batch_size, warmup=3)
    path = build_path("pretrain step", apply_precision(train.precision), True, batches(), shape, params.scale)
    path.run(args.step_batches)
    consumed = args.step_batches * train.batch_size / path.median_seconds()
    print(f"  input pipeline alone: {delivered:.0f} crops/s (first batch after {fill:.1f} s); pretrain step "
          f"({path.policy}) fed by it: {consumed:.0f} crops/s, {path.stall():.1%} of its time waiting for "
          f"input; input/step = {delivered / consumed:.1f}×", flush=True)


def grouping_time(count: int) -> None:
    """Seconds and memory to group ``count`` perceptual hashes by near-duplicates, as pairs and validate do."""
    rng = np.random.default_rng(0)
    originals = rng.integers(0, 2**63, count - count // 10, dtype=np.int64)
    copies = originals[: count // 10] ^ (1 << rng.integers(0, 63, count // 10))  # re-encoded: 1 bit apart
    hexes = [f"{h:016x}" for h in np.concatenate([originals, copies])]
    with peak_memory(psutil.Process()) as peak:
        started = time.perf_counter()
        groups = near_duplicate_groups(hexes, 6)
        seconds = time.perf_counter() - started
    print(f"near-duplicate grouping of {count:,} hashes (6 bits): {seconds:.1f} s, {len(set(groups)):,} groups, "
          f"peak RSS {peak.main / MB:.0f} MB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[200, 800])
    parser.add_argument("--steps", type=int, default=200, help="pretraining steps")
    parser.add_argument("--tile-size", type=int, default=256)
    parser.add_argument("--degradation", choices=["bicubic", "realistic"], default="bicubic")
    parser.add_argument("--second-order", action="store_true")
    parser.add_argument("--near-duplicate-bits", type=int, default=6)
    parser.add_argument("--input-batches", type=int, default=100)
    parser.add_argument("--step-batches", type=int, default=30)
    parser.add_argument("--hashes", type=int, default=100_000, help="near-duplicate grouping at this many images")
    args = parser.parse_args()

    print(f"{WIDTH}x{HEIGHT} JPEGs, tiles {args.tile_size or 'off'}, degradation {args.degradation}"
          f"{' (second order)' if args.second_order else ''}, near-duplicates within {args.near_duplicate_bits} "
          f"bits, {args.steps} pretraining steps; {available_cores()} cores "
          f"({platform.processor() or platform.machine()}), {os.cpu_count()} CPUs in the machine", flush=True)
    for count in args.images:
        with tempfile.TemporaryDirectory(prefix="gansr-bench-") as tmp:
            root = Path(tmp) / "project"
            root.mkdir()
            write_photos(Path(tmp) / "photos", count)
            make_project(root, Path(tmp) / "photos", args)
            print(f"{count} images:\n  {'stage':<9} {'seconds':>9} {'images/s':>9} {'RSS MB':>8} {'worker MB':>10}",
                  flush=True)
            for name in STAGES:
                seconds, peak = run_stage(root, name)
                rate = f"{count / seconds:.2f}" if name != "pretrain" else f"{args.steps / seconds:.2f} st"
                worker = f"{peak.worker / MB:.0f}" if peak.worker else "-"
                print(f"  {name:<9} {seconds:>9.1f} {rate:>9} {peak.main / MB:>8.0f} {worker:>10}", flush=True)
            index = read_index(Layout.at(root).shards)
            print(f"  {index.records} training tiles in {len(index.shards)} shards, "
                  f"{index.decoded_bytes / MB:.0f} MB decoded, "
                  f"{sum(p.stat().st_size for p in index.folder.iterdir()) / MB:.0f} MB on disk", flush=True)
            input_against_step(root, args)
    grouping_time(args.hashes)


if __name__ == "__main__":
    main()
