"""How long `gansr upscale` takes for one 320×320 photo, from the shell prompt to the written PNG.

    python bench/cold_start.py [--repeats 5]

Runs the installed ``gansr`` command in a fresh process each time, as a user
does, on a 320×320 crop of scikit-image's astronaut photo, on each runtime
(LiteRT on the TFLite export, TensorFlow on the Keras file) for the GAN
generator and for the style generator in one style, all on the CPU. Needs
the exported generators (`dvc repro`). Prints the median and the fastest
wall time of each, side by side, and how much of TensorFlow's time is its
import alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from skimage.data import astronaut

GANSR = Path(sys.executable).with_name("gansr")
CASES = {"gan": [], "style (gravel)": ["--model", "style", "--style", "gravel"]}


def wall_seconds(command: list[str], repeats: int) -> list[float]:
    """Wall time of ``command`` in a fresh process, ``repeats`` times; stops on the first failure."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
        seconds.append(time.perf_counter() - started)
        if done.returncode:
            sys.exit(f"{' '.join(command)} failed:\n{done.stderr.strip()}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each case (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gansr-bench-") as tmp:
        photo = Path(tmp) / "photo.png"
        Image.fromarray(astronaut()[:320, 96:416]).save(photo)  # a real photo: PNG writes it as one
        output = str(Path(tmp) / "photo_x4.png")
        tf_import = wall_seconds([sys.executable, "-c", "import tensorflow"], args.repeats)
        print(f"gansr upscale, one 320×320 photo, CPU ({os.cpu_count()} cores), {args.repeats} runs each")
        print(f"{'model':<16} {'runtime':<8} {'median s':>9} {'fastest s':>10}")
        for case, extra in CASES.items():
            for runtime in ("lite", "tf"):
                seconds = wall_seconds([str(GANSR), "upscale", str(photo), output, "--runtime", runtime, *extra],
                                       args.repeats)
                print(f"{case:<16} {runtime:<8} {statistics.median(seconds):>9.2f} {min(seconds):>10.2f}")
        print(f"(`import tensorflow` alone: median {statistics.median(tf_import):.2f} s)")


if __name__ == "__main__":
    main()
