"""Speed and peak memory of upscaling 960×540 ×4 to 3840×2160 (4K UHD) on the CPU, on each runtime.

    python bench/upscale.py [--model models/export/gan] [--tile 256] [--size 960x540]

Three ways on each runtime (TensorFlow on ``generator.keras``, LiteRT on
``generator_fp16.tflite``), each in a fresh Python process so each peak RSS
is its own: untiled (one forward pass over the whole image), auto (what
`gansr upscale` does by default: the tile chosen from free RAM, untiled when
the image fits one window) and tiled (``--tile`` LR pixels, the default
overlap). ``--model`` is an export folder holding both files; without one
(or when it is missing) only TensorFlow runs, on the default-size generator
(48 channels × 6 blocks, ×4) with random weights: speed and memory do not
depend on the weights. Prints output megapixels/s (best of ``--repeats``),
peak RSS, the RSS before the upscale, and the memory per LR pixel of the
largest forward pass next to the estimate that sizes auto tiles.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import _quiet  # noqa: F401  (first: quiets TensorFlow before anything loads it)

MODES = ("untiled", "auto", "tiled")
RUNTIMES = ("tf", "lite")
KERAS, TFLITE = "generator.keras", "generator_fp16.tflite"


def worker(args: argparse.Namespace) -> dict:
    """Run one runtime and mode (``--worker RUNTIME:MODE``) in this process; its figures."""
    import numpy as np

    runtime, mode = args.worker.split(":")
    width, height = args.size
    tile = {"untiled": max(width, height), "auto": None, "tiled": args.tile}[mode]
    exported = (args.model / KERAS).is_file()
    if runtime == "lite":
        from gansr.lite import LiteUpscaler

        upscale = LiteUpscaler(args.model / TFLITE, tile=tile)
        estimate = upscale.bytes_per_lr_pixel
    else:
        from gansr.inference import Upscaler, bytes_per_lr_pixel, load_generator
        from gansr.models.generator import build_generator

        model = load_generator(args.model / KERAS) if exported else build_generator(4, 48, 6)
        upscale = Upscaler(model, tile=tile)
        estimate = bytes_per_lr_pixel(model)
    upscale(np.zeros((32, 32, 3), np.uint8))  # trace once: the timing is steady-state speed
    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    before = _peak_rss()
    seconds = []
    for _ in range(args.repeats):  # the best of a few: other processes share the CPU
        started = time.perf_counter()
        sr = upscale(image)
        seconds.append(time.perf_counter() - started)
    peak = _peak_rss()
    window = min(height, upscale.tile + 2 * upscale.overlap) * min(width, upscale.tile + 2 * upscale.overlap)
    return {"runtime": runtime, "mode": mode, "tile": upscale.tile if upscale.tile < max(width, height) else None,
            "mp_s": sr.shape[0] * sr.shape[1] / min(seconds) / 1e6, "seconds": min(seconds),
            "peak_mib": peak / 2**20, "before_mib": before / 2**20,
            "measured": (peak - before) / window, "estimate": estimate,
            "model": str(args.model) if exported else "random 48ch × 6 blocks"}


def _peak_rss() -> int:
    """This process's peak resident set size so far, in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_mode(case: str, argv: list[str]) -> dict:
    """One ``RUNTIME:MODE`` in a fresh interpreter on the CPU only, its figures read from its last stdout line."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, __file__, *argv, "--worker", case],
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        sys.exit(f"{case} failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("models/export/gan"),
                        help="export folder with generator.keras and generator_fp16.tflite (default: the "
                             "exported GAN generator's; else TensorFlow on a random default-size generator)")
    parser.add_argument("--tile", type=int, default=256, help="tile side in LR pixels for the tiled mode")
    parser.add_argument("--size", type=size, default=(960, 540), help="LR width×height (default 960x540)")
    parser.add_argument("--repeats", type=int, default=3, help="upscales per mode; the fastest counts")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    width, height = args.size
    argv = ["--model", str(args.model), "--tile", str(args.tile), "--size", f"{width}x{height}",
            "--repeats", str(args.repeats)]
    runtimes = RUNTIMES if (args.model / TFLITE).is_file() else RUNTIMES[:1]
    results = [run_mode(f"{runtime}:{mode}", argv) for runtime in runtimes for mode in MODES]
    print(f"{results[0]['model']}, {width}×{height} → {width * 4}×{height * 4}, "
          f"CPU ({os.cpu_count()} cores), best of {args.repeats}")
    print(f"{'runtime':<8} {'mode':<8} {'tile':>5} {'out MP/s':>9} {'seconds':>8} {'peak RSS':>9} {'before':>7} "
          f"{'B/LR px':>8} {'estimate':>9}")
    for r in results:
        print(f"{r['runtime']:<8} {r['mode']:<8} {r['tile'] or '-':>5} {r['mp_s']:>9.2f} {r['seconds']:>8.2f} "
              f"{r['peak_mib']:>5.0f} MiB {r['before_mib']:>3.0f} MiB "
              f"{r['measured']:>8.0f} {r['estimate']:>9}")


if __name__ == "__main__":
    main()
