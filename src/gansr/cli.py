"""The ``gansr`` command: upscale images, list and promote registered generators.

    gansr upscale INPUT OUTPUT [--model psnr|gan|real|style|PATH|models:/NAME@ALIAS] [--style NAME|INDEX|IMAGE]
                  [--tile N | --max-memory MIB] [--overlap M] [--runtime auto|tf|lite] [--device cpu|gpu|auto]
                  [--precision auto|float32|float16|bfloat16]
    gansr info [--name NAME]
    gansr promote [--version N | --alias ALIAS] [--force] [--name NAME]
    gansr summary
    gansr ui [--host HOST] [--port PORT]

INPUT may be an image, a video (by extension) or a folder of both. Every
command takes ``--root DIR``, the project; without it, the project is found
from any folder (:func:`gansr.layout.project_root`).

Exit codes: 0 success; 1 a known error (unreadable input, missing model, no
GPU for --device gpu, tracking server down, a promotion refused: one line on
stderr; for a folder, one or more files skipped); 2 bad command-line usage;
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gansr.errors import GansrError, exit_on_error
from gansr.layout import (
    EVAL_FILE,
    EXPORTED_VARIANTS,
    PARAMS_FILE,
    REAL_PLOT,
    REAL_SCORES_FILE,
    SAMPLES_PLOT,
    STYLE_SCORES_FILE,
    STYLES_PLOT,
    SUMMARY_FILE,
    Layout,
    project_root,
)
from gansr.quiet import quiet_tensorflow
from gansr.upscale import RUNTIMES, upscale

if TYPE_CHECKING:
    from gansr.config import TrackingConfig

EXIT_CODES = ("exit codes: 0 success, 1 a known error (one line on stderr), "
              "2 bad usage, 130 interrupted")


def upscale_command(args: argparse.Namespace) -> None:
    """Upscale one image or video file, or every one in a folder into a mirrored output folder."""
    upscale(args.model, args.input, args.output, device=args.device, precision=args.precision, tile=args.tile,
            overlap=args.overlap, style=args.style, root=args.root, runtime=args.runtime, max_memory=args.max_memory)


def info_command(args: argparse.Namespace) -> None:
    """Print the registered versions of the model as an aligned table."""
    from gansr import tracking

    root = project_root(args.root)
    cfg = _tracking_config(root, args.name)
    versions = tracking.list_versions(root, cfg.registered_model)
    metrics = list(dict.fromkeys([cfg.champion_metric, "y_psnr", "ssim"]))
    header = ["version", "aliases", "run id", *metrics, "created"]
    rows = [
        [str(v["version"]), ", ".join(v["aliases"]) or "-", v["run_id"] or "-",
         *(_score(metric, v["tags"].get(metric)) for metric in metrics), f"{v['created']:%Y-%m-%d %H:%M}"]
        for v in versions
    ]
    print(f"{cfg.registered_model} in {tracking.tracking_uri(root)}")
    print(_table(header, rows))


def promote_command(args: argparse.Namespace) -> None:
    """Move the champion alias to a version that beats the champion (or any, with --force)."""
    from gansr import tracking

    root = project_root(args.root)
    result = tracking.promote(root, _tracking_config(root, args.name),
                              version=args.version, alias=args.alias or tracking.CHALLENGER, force=args.force)
    print(result["decision"])


def summary_command(args: argparse.Namespace) -> None:
    """Print what the last `dvc repro` produced: metrics, MLflow run, registry."""
    from gansr.reporting import format_eval_table, format_real_scores, format_style_scores
    from gansr.tracking import tracking_uri

    root = project_root(args.root)
    layout = Layout.at(root)
    eval_file = layout.metrics / EVAL_FILE
    if not eval_file.is_file():
        raise GansrError(f"{eval_file} not found: run `dvc repro` first")
    scores = json.loads(eval_file.read_text())
    print(f"Test split, ×{scores['scale']} (Y channel, border = scale):")
    print(format_eval_table(scores))
    real_file = layout.metrics / REAL_SCORES_FILE
    if real_file.is_file():
        print("Degraded test split (noise, JPEG, blur; gain over bicubic of the same input):")
        print(format_real_scores(json.loads(real_file.read_text())))
    style_file = layout.metrics / STYLE_SCORES_FILE
    if style_file.is_file():
        print("Style (texture and colour statistics training never sees): "
              + format_style_scores(json.loads(style_file.read_text())))
    if precisions := _training_precisions(layout):
        print(f"Trained in:        {precisions}; CPUs with and without native bfloat16 train in different "
              "precisions, to other weights (README: Same inputs, same bytes)")
    plots = layout.plots.relative_to(root)
    print(f"Samples:           {plots / SAMPLES_PLOT}, {plots / REAL_PLOT}, {plots / STYLES_PLOT}")
    print(f"\nTracking store:    {tracking_uri(root)}")
    if not layout.registry.is_file():  # models pulled from a DVC remote, registered in another store
        print("Registered model:  none in this store (`dvc repro --force export` registers these models)")
        return
    registration = json.loads(layout.registry.read_text())
    print(f"MLflow run:        {registration['run_id']}")
    print(f"Registered model:  {registration['name']} version {registration['version']} "
          f"(aliases: {', '.join(registration['aliases']) or 'none'})")
    print(f"Promotion:         {registration['decision']}")
    print("MLflow UI:         make ui (or gansr ui) prints the pages of these runs and models, and serves them")


def ui_command(args: argparse.Namespace) -> None:
    """Serve the MLflow UI on the project's store, printing the pages of its training runs and registered model."""
    from gansr import tracking

    root = project_root(args.root)
    tracking.open_ui(root, _tracking_config(root, None), args.host, args.port)


def _training_precisions(layout: Layout) -> str:
    """Each training phase's precision, as its ``training.json`` says: "float32 (psnr, gan, style)"."""
    phases: dict[str, list[str]] = {}
    for variant in EXPORTED_VARIANTS:
        summary = layout.generator(variant).with_name(SUMMARY_FILE)
        if summary.is_file():
            phases.setdefault(json.loads(summary.read_text())["precision"], []).append(variant)
    return "; ".join(f"{precision} ({', '.join(variants)})" for precision, variants in phases.items())


def _tracking_config(root: Path, name: str | None) -> TrackingConfig:
    """The ``tracking`` section of the project's params.yaml (defaults without one), ``--name`` applied."""
    from gansr.config import TrackingConfig, load_params

    params_file = root / PARAMS_FILE
    cfg = load_params(params_file).tracking if params_file.is_file() else TrackingConfig()
    return cfg.registered(name) if name else cfg


def _score(metric: str, tag: str | None) -> str:
    """A version's score tag, rounded as such scores are read: dB to 2 places, ratios to 4."""
    try:
        value = float(tag)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "-"
    return f"{value:.2f}" if "psnr" in metric.lower() else f"{value:.4f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
                     for line in (header, *rows))


def _count(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``minimum`` (else a usage error, exit 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, one subcommand per verb."""
    parser = argparse.ArgumentParser(
        prog="gansr",
        description="GAN super-resolution: upscale images with a trained gansr generator, list or promote "
                    "the generators in the MLflow Model Registry, and open the MLflow UI on the training runs.",
        epilog=EXIT_CODES,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    project = argparse.ArgumentParser(add_help=False)
    project.add_argument("--root", type=Path, metavar="DIR",
                         help="the gansr project, the folder with params.yaml (default: the nearest at or above "
                              "the current folder, else the one gansr was installed from)")
    _add_upscale(sub, project)
    _add_registry_command(
        sub, project, "info", info_command, "list the registered versions of the generator",
        "List every registered version of the model: aliases, run id, test scores (from the version "
        "tags) and creation time. Uses the project's mlflow.db, or MLFLOW_TRACKING_URI when set.")
    _add_promote(sub, project)
    summary = sub.add_parser("summary", help="print the last pipeline run's results", epilog=EXIT_CODES,
                             description="Print metrics, MLflow run and registered version.", parents=[project])
    summary.set_defaults(func=summary_command)
    ui = sub.add_parser(
        "ui", help="serve the MLflow UI on the training runs", epilog=EXIT_CODES, parents=[project],
        description="Print the MLflow UI pages of the project's training runs and registered model, then serve "
                    "the UI on the project's store (MLFLOW_TRACKING_URI when set; a server there is the UI "
                    "itself, so nothing starts) until Ctrl-C.")
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    ui.add_argument("--port", type=_count(1), default=5000, help="port to listen on (default: 5000)")
    ui.set_defaults(func=ui_command)
    return parser


def _add_upscale(sub: Any, project: argparse.ArgumentParser) -> None:
    up = sub.add_parser(
        "upscale", help="upscale an image, a video, or a folder of them", epilog=EXIT_CODES, parents=[project],
        description="Upscale INPUT by the generator's scale. An image becomes an RGB PNG. A video "
                    "(told by its extension) is upscaled frame by frame into a video at the same frame "
                    "rate with its audio kept (H.264 + AAC; VP9 + Opus for .webm). A folder INPUT is "
                    "mirrored into the folder OUTPUT (same relative paths; images get extension .png, "
                    "videos keep theirs); unreadable files are skipped with one line each and make the "
                    "exit code 1. Large images run in tiles so memory stays bounded.")
    up.add_argument("input", type=Path, metavar="INPUT",
                    help="image file (PNG, JPEG, WebP, TIFF, BMP, GIF), video file (MP4, MOV, MKV, AVI, "
                         "WebM, M4V) or folder of them")
    up.add_argument("output", type=Path, metavar="OUTPUT",
                    help="PNG file to write for an image, video file for a video, folder for a folder")
    up.add_argument("--model", metavar="VARIANT|PATH|URI",
                    help="psnr, gan, real or style (the generator a training stage wrote, as exported; "
                         "real: for noisy, compressed or blurred photos), a .keras or .tflite file, or a "
                         "registry URI such as models:/gansr@champion (default: the project's exported GAN "
                         "generator)")
    up.add_argument("--style", default="none", metavar="NAME|INDEX|IMAGE",
                    help="render in this style: with --model style, a style name such as gravel or its "
                         "index 1..N; with any generator, an image file, whose style is drawn without "
                         "training (on TensorFlow); default none")
    up.add_argument("--tile", type=_count(1), metavar="N",
                    help="square tile side in LR pixels (default: tiles fitted to each image under "
                         "--max-memory; images that fit run whole)")
    # 768 is gansr.tiling.DEFAULT_MAX_MEMORY_MIB.
    up.add_argument("--max-memory", type=_count(1), metavar="MIB",
                    help="memory one forward pass may use, in MiB: less runs smaller tiles, more runs "
                         "faster (default: 768, or a quarter of free RAM if less; a 960×540 → 4K upscale "
                         "on LiteRT then peaks under 1 GiB)")
    # 16 is gansr.tiling.DEFAULT_OVERLAP, not imported here so --help stays fast (no TensorFlow).
    up.add_argument("--overlap", type=_count(0), metavar="M",
                    help="LR pixels of context around each tile (default: the generator's receptive "
                         "radius, at least 16: 2·blocks + 3 for super-resolution, more with the style "
                         "branch); below it, seams can show")
    up.add_argument("--runtime", choices=RUNTIMES, default="auto",
                    help="lite: LiteRT on the model's TFLite export (starts at once, CPU, float32); tf: "
                         "TensorFlow; auto: lite for the exported generators (the default model, psnr, gan, "
                         "style or a .tflite file) unless a GPU or --precision asks for TensorFlow, else tf "
                         "(default: auto)")
    up.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                    help="cpu: never touch a GPU; gpu: fail (exit 1) unless TensorFlow sees one; "
                         "auto: a GPU if there is one (default: auto)")
    up.add_argument("--precision", choices=("auto", "float32", "float16", "bfloat16"), default="auto",
                    help="compute dtype of the generator's trunk (weights and output layers stay float32); "
                         "auto: float16 on a GPU, bfloat16 on a CPU with AVX512-BF16/AMX, else float32 "
                         "(default: auto)")
    up.set_defaults(func=upscale_command)


def _add_registry_command(sub: Any, project: argparse.ArgumentParser, verb: str,
                          func: Callable[[argparse.Namespace], None], summary: str,
                          description: str) -> argparse.ArgumentParser:
    """A subcommand that works on one registered model, chosen with --name."""
    parser = sub.add_parser(verb, help=summary, description=description, epilog=EXIT_CODES, parents=[project])
    parser.add_argument("--name", help="registered model (default: tracking.registered_model in "
                                       "params.yaml, else gansr)")
    parser.set_defaults(func=func)
    return parser


def _add_promote(sub: Any, project: argparse.ArgumentParser) -> None:
    promote = _add_registry_command(
        sub, project, "promote", promote_command, "move the champion alias to a better version",
        "Move alias champion to a version if its tracking.champion_metric (params.yaml, default "
        "y_psnr) beats the current champion's by more than tracking.champion_margin. A version that "
        "does not is refused (exit 1) unless --force. The decision is printed with both scores and "
        "stored as the version's 'promotion' tag.")
    target = promote.add_mutually_exclusive_group()
    target.add_argument("--version", type=_count(1), metavar="N", help="the version to promote")
    target.add_argument("--alias", help="promote the version this alias names (default: challenger)")
    promote.add_argument("--force", action="store_true", help="promote even if it is not better")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    quiet_tensorflow()
    args = build_parser().parse_args(argv)
    with exit_on_error(f"gansr {args.command}"):
        args.func(args)
