"""`gansr upscale` on each runtime: cold start, 960×540 → 4K, and steady-state speed, side by side.

    python bench/upscale.py [--repeats 3] [--model models/export/gan] [--tile 256]

1. As a user runs it: the installed ``gansr`` command in a fresh process,
   on LiteRT and on TensorFlow, for the GAN generator and the style
   generator in one style, on a 320×320 photo (the cold start) and on a
   960×540 one upscaled to 3840×2160 (4K UHD), with the default tiles.
   Prints the median wall time (shell prompt to written PNG) and the peak
   RSS of the command's process (from ``wait4``, the kernel's own count).
2. Steady state: the GAN export's forward passes in-process, after a
   warm-up, untiled (one pass over the whole image), auto (the tiles fitted
   under the default memory budget) and tiled (``--tile`` LR pixels
   square). Prints output megapixels/s (best of ``--repeats``), peak RSS,
   and the memory per LR pixel of the largest window next to the estimate
   that sizes the tiles.

Needs the exported generators (`dvc repro`). Everything runs on the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _quiet  # noqa: F401  (first: quiets TensorFlow before anything loads it)
from PIL import Image
from skimage.data import astronaut

GANSR = Path(sys.executable).with_name("gansr")
RUNTIMES = ("lite", "tf")
MODELS = {"gan": [], "style (gravel)": ["--model", "style", "--style", "gravel"]}
KERAS, TFLITE = "generator.keras", "generator_fp16.tflite"
CPU_ONLY = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}


def command_figures(command: list[str], repeats: int) -> tuple[float, float]:
    """Median wall seconds and largest peak RSS (MiB) of ``command`` run ``repeats`` times in fresh processes."""
    seconds, peaks = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=CPU_ONLY)
        _, status, usage = os.wait4(process.pid, 0)
        seconds.append(time.perf_counter() - started)
        if status:
            sys.exit(f"{' '.join(command)} failed:\n{process.stderr.read().decode().strip()}")
        peaks.append(usage.ru_maxrss / 1024)  # Linux reports KiB
    return statistics.median(seconds), max(peaks)


def as_a_user_runs_it(repeats: int) -> None:
    """Section 1: the command's wall time and peak RSS per model, runtime and photo size."""
    with tempfile.TemporaryDirectory(prefix="gansr-bench-") as tmp:
        photos = {"320²": Path(tmp) / "small.png", "960×540 → 4K": Path(tmp) / "large.png"}
        Image.fromarray(astronaut()[:320, 96:416]).save(photos["320²"])
        Image.fromarray(astronaut()).resize((960, 540), Image.Resampling.LANCZOS).save(photos["960×540 → 4K"])
        output = str(Path(tmp) / "out.png")
        tf_import, _ = command_figures([sys.executable, "-c", "import tensorflow"], repeats)
        print(f"1. gansr upscale as a user runs it: CPU ({os.cpu_count()} cores), median of {repeats} fresh processes")
        print(f"{'model':<16} {'photo':<14} {'runtime':<8} {'seconds':>8} {'peak RSS':>9}")
        for model, extra in MODELS.items():
            for photo_name, photo in photos.items():
                for runtime in RUNTIMES:
                    seconds, peak = command_figures(
                        [str(GANSR), "upscale", str(photo), output, "--runtime", runtime, *extra], repeats)
                    print(f"{model:<16} {photo_name:<14} {runtime:<8} {seconds:>8.2f} {peak:>5.0f} MiB")
        print(f"(`import tensorflow` alone: {tf_import:.2f} s)\n")


def worker(args: argparse.Namespace) -> dict:
    """Section 2 in this process, for ``--worker RUNTIME:MODE``: steady-state speed and memory."""
    import numpy as np

    runtime, mode = args.worker.split(":")
    tile = {"untiled": max(args.size), "auto": None, "tiled": args.tile}[mode]
    if runtime == "lite":
        from gansr.lite import LiteUpscaler

        upscale = LiteUpscaler(args.model / TFLITE, tile=tile)
    else:
        from gansr.inference import Upscaler, load_generator

        upscale = Upscaler(load_generator(args.model / KERAS), tile=tile)
    width, height = args.size
    upscale(np.zeros((32, 32, 3), np.uint8))  # trace once: the timing is steady-state speed
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    before = _peak_rss()
    seconds = []
    for _ in range(args.repeats):  # the best of a few: other processes share the CPU
        started = time.perf_counter()
        sr = upscale(image)
        seconds.append(time.perf_counter() - started)
    core_height, core_width = upscale.tiles(height, width)
    windows = (min(height, core_height + 2 * upscale.overlap), min(width, core_width + 2 * upscale.overlap))
    return {"runtime": runtime, "mode": mode, "window": "×".join(map(str, windows[::-1])),
            "mp_s": sr.shape[0] * sr.shape[1] / min(seconds) / 1e6, "peak_mib": _peak_rss() / 2**20,
            "measured": (_peak_rss() - before) / (windows[0] * windows[1]), "estimate": upscale.bytes_per_lr_pixel}


def _peak_rss() -> int:
    """This process's peak resident set size so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def steady_state(args: argparse.Namespace) -> None:
    """Section 2: each runtime and tiling in a fresh interpreter, so each peak RSS is its own."""
    width, height = args.size
    argv = ["--model", str(args.model), "--tile", str(args.tile), "--size", f"{width}x{height}",
            "--repeats", str(args.repeats)]
    print(f"2. Steady state, {args.model}: {width}×{height} → {width * 4}×{height * 4}, best of {args.repeats}")
    print(f"{'runtime':<8} {'mode':<8} {'window':>9} {'out MP/s':>9} {'peak RSS':>9} {'B/LR px':>8} {'estimate':>9}")
    for runtime in RUNTIMES:
        for mode in ("untiled", "auto", "tiled"):
            done = subprocess.run([sys.executable, __file__, *argv, "--worker", f"{runtime}:{mode}"],
                                  capture_output=True, text=True, env=CPU_ONLY, check=False)
            if done.returncode:
                sys.exit(f"{runtime}:{mode} failed:\n{done.stderr.strip()}")
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{runtime:<8} {mode:<8} {r['window']:>9} {r['mp_s']:>9.2f} {r['peak_mib']:>5.0f} MiB "
                  f"{r['measured']:>8.0f} {r['estimate']:>9}")


def size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/export/gan"),
                        help="export folder with generator.keras and generator_fp16.tflite for section 2 "
                             "(default: the exported GAN generator's)")
    parser.add_argument("--tile", type=int, default=256, help="tile side in LR pixels for the tiled mode")
    parser.add_argument("--size", type=size, default=(960, 540), help="LR width×height in section 2 (960x540)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each case (default 3)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    as_a_user_runs_it(args.repeats)
    steady_state(args)


if __name__ == "__main__":
    main()
