"""The ``gansr`` command.

Exit codes: 0 success, 1 a known error (bad input, missing model, tracking
server down: one line on stderr), 2 bad command-line usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gansr.errors import GansrError, exit_on_error

DEFAULT_MODEL = Path("models") / "export" / "generator.keras"


def upscale_command(args: argparse.Namespace) -> None:
    """Upscale one image file with a generator."""
    from gansr.imageio import read_rgb, write_png
    from gansr.inference import Upscaler, load_generator

    image, notes = read_rgb(args.input)
    for note in notes:
        print(f"note: {args.input}: {note}", file=sys.stderr)
    upscaled = Upscaler(load_generator(args.model))(image)
    write_png(args.output, upscaled)
    print(f"{args.output}: {image.shape[1]}×{image.shape[0]} → {upscaled.shape[1]}×{upscaled.shape[0]}")


def summary_command(args: argparse.Namespace) -> None:
    """Print what the last `dvc repro` produced: metrics, MLflow run, registry."""
    from gansr.pipeline import format_eval_table
    from gansr.tracking import tracking_uri

    root = Path(args.root).resolve()
    eval_file = root / "metrics" / "eval.json"
    registry_file = root / "models" / "export" / "registry.json"
    for path in (eval_file, registry_file):
        if not path.is_file():
            raise GansrError(f"{path} not found: run `dvc repro` first")
    registration = json.loads(registry_file.read_text())
    print(f"Test split, ×{json.loads(eval_file.read_text())['scale']} (Y channel, border = scale):")
    print(format_eval_table(json.loads(eval_file.read_text())))
    print(f"\nMLflow run:        {registration['run_id']}")
    print(f"Registered model:  {registration['name']} version {registration['version']} "
          f"(aliases: {', '.join(registration['aliases']) or 'none'})")
    print(f"Promotion:         {registration['decision']}")
    print(f"Tracking store:    {tracking_uri(root)}")
    print("Open the MLflow UI: make ui   (then http://127.0.0.1:5000)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subcommand per verb."""
    parser = argparse.ArgumentParser(
        prog="gansr",
        description="GAN super-resolution: upscale images with a trained gansr generator.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("upscale", help="upscale an image file",
                        description="Upscale INPUT by the generator's scale and write OUTPUT as RGB PNG.")
    up.add_argument("input", type=Path, help="image file (PNG, JPEG, WebP, TIFF, BMP)")
    up.add_argument("output", type=Path, help="PNG file to write")
    up.add_argument("--model", default=str(DEFAULT_MODEL),
                    help="a .keras file or a registry URI such as models:/gansr@champion "
                         f"(default: {DEFAULT_MODEL}, the last exported generator)")
    up.set_defaults(func=upscale_command)

    summary = sub.add_parser("summary", help="print the last pipeline run's results",
                             description="Print metrics, MLflow run and registered version.")
    summary.add_argument("--root", default=".", help="repository root (default: current directory)")
    summary.set_defaults(func=summary_command)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = build_parser().parse_args(argv)
    with exit_on_error(f"gansr {args.command}"):
        args.func(args)
