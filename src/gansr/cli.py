"""The ``gansr`` command: upscale images, list and promote registered generators.

    gansr upscale INPUT OUTPUT [--model psnr|gan|style|PATH|models:/NAME@ALIAS] [--style NAME|INDEX]
                  [--tile N] [--overlap M] [--device cpu|gpu|auto]
                  [--precision auto|float32|float16|bfloat16]
    gansr info [--name NAME]
    gansr promote [--version N | --alias ALIAS] [--force] [--name NAME]
    gansr summary [--root DIR]

INPUT may be an image, a video (by extension) or a folder of both.

Exit codes: 0 success; 1 a known error (unreadable input, missing model, no
GPU for --device gpu, tracking server down, a promotion refused: one line on
stderr; for a folder, one or more files skipped); 2 bad command-line usage;
130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gansr.errors import ConfigError, DataError, GansrError, exit_on_error
from gansr.layout import EXPORTED_VARIANTS, Layout, find_root
from gansr.quiet import quiet_tensorflow

if TYPE_CHECKING:
    from gansr.config import TrackingConfig
    from gansr.inference import Upscaler

HERE = Layout.at(Path())  # gansr runs from the repository root, as dvc.yaml's stages do
DEFAULT_MODEL = HERE.exported_generator
# --model shortcuts: the generator each training stage wrote.
VARIANT_MODELS = {name: HERE.generator(name) for name in EXPORTED_VARIANTS}
EXIT_CODES = ("exit codes: 0 success, 1 a known error (one line on stderr), "
              "2 bad usage, 130 interrupted")


def upscale_command(args: argparse.Namespace) -> None:
    """Upscale one image or video file, or every one in a folder into a mirrored output folder."""
    _use_device(args.device)  # before TensorFlow builds anything
    from tqdm import tqdm

    from gansr.inference import Upscaler, load_generator, with_precision

    model = load_generator(VARIANT_MODELS.get(args.model, args.model))
    upscaler = Upscaler(with_precision(model, _precision(args.precision)), args.tile, args.overlap,
                        style=_style_index(model, args.style))
    if not args.input.is_dir():
        output = args.output / _output_name(args.input) if args.output.is_dir() else args.output
        print(_upscale_file(upscaler, args.input, output, print))
        return
    jobs = _folder_jobs(args.input, args.output)
    failed = 0
    for source, target in tqdm(jobs, desc="upscale", unit="file"):
        try:
            _upscale_file(upscaler, source, target, tqdm.write)
        except DataError as exc:
            failed += 1
            tqdm.write(f"skipped {exc}", file=sys.stderr)
    print(f"{args.output}: {len(jobs) - failed} of {len(jobs)} files upscaled ×{upscaler.scale}")
    if failed:
        raise DataError(f"{failed} of {len(jobs)} files in {args.input} could not be read (listed above)")


def _use_device(device: str) -> None:
    """Make TensorFlow run on ``device``: cpu hides the GPUs, gpu insists on one, auto takes what is there.

    Hiding devices works only before TensorFlow's runtime starts, so the
    command does it first; it fails loudly after that, where setting
    CUDA_VISIBLE_DEVICES would be silently ignored once CUDA is initialised.
    """
    import tensorflow as tf

    if device == "cpu":
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError as exc:
            raise GansrError("--device cpu: TensorFlow already runs on the GPU in this process") from exc
    elif device == "gpu" and not tf.config.get_visible_devices("GPU"):
        raise GansrError("--device gpu: TensorFlow sees no GPU (no CUDA device or driver, "
                         "or CUDA_VISIBLE_DEVICES hides it)")


def _precision(setting: str) -> str:
    """``--precision`` as a dtype; auto: float16 on a GPU, bfloat16 on a CPU with native bf16, else float32.

    On a CPU with AVX512-BF16/AMX bfloat16 runs the default generator about
    twice as fast as float32; on one without, several times slower.
    """
    import tensorflow as tf

    from gansr.training.precision import cpu_has_native_bf16

    if setting != "auto":
        return setting
    if tf.config.get_visible_devices("GPU"):
        return "float16"
    return "bfloat16" if cpu_has_native_bf16() else "float32"


def _style_index(model: Any, style: str) -> int:
    """``--style`` as an index into the generator's styles: a name, a number, or none (0)."""
    from gansr.models.generator import style_index

    try:
        return style_index(model, style)
    except ConfigError as exc:
        raise ConfigError(f"--{exc}") from exc


def _output_name(source: Path) -> str:
    """The file name ``source``'s result gets in an output folder: a video keeps its name, an image turns PNG."""
    from gansr.video import is_video

    return source.name if is_video(source) else f"{source.stem}.png"


def _upscale_file(upscaler: Upscaler, source: Path, target: Path, say: Callable[..., None]) -> str:
    """Upscale ``source`` (a video or an image) into ``target``; notes go to ``say`` on stderr."""
    from gansr.video import is_video, upscale_video

    if is_video(source):
        return upscale_video(upscaler, source, target, say)
    return _upscale_image(upscaler, source, target, say)


def _upscale_image(upscaler: Upscaler, source: Path, target: Path, say: Callable[..., None]) -> str:
    """Upscale ``source`` into the PNG ``target``; conversion notes go to ``say`` on stderr."""
    from gansr.imageio import is_large, read_faithful_rgb, write_png

    image, notes = read_faithful_rgb(source)
    height, width = image.shape[:2]
    if is_large(height * width):
        notes.append(f"the output will be {width * upscaler.scale}×{height * upscaler.scale} "
                     f"({height * width * upscaler.scale ** 2 / 1e6:.0f} Mpx): slow to make and huge")
    for note in notes:
        say(f"note: {source}: {note}", file=sys.stderr)
    upscaled = upscaler(image)
    write_png(target, upscaled)
    return f"{target}: {image.shape[1]}×{image.shape[0]} → {upscaled.shape[1]}×{upscaled.shape[0]}"


def _folder_jobs(folder: Path, output: Path) -> list[tuple[Path, Path]]:
    """(file, file to write) for every image and video under ``folder``, mirrored under ``output``.

    Images become PNGs, videos keep their name. Hidden entries are left out,
    and so is ``output`` itself when it lies inside ``folder``, so a rerun
    does not upscale its own results. Other files are skipped with a note on stderr.
    """
    from gansr.data.sources import IMAGE_SUFFIXES, skipped_note
    from gansr.video import VIDEO_SUFFIXES

    if output.exists() and not output.is_dir():
        raise DataError(f"{output} is a file; the output for folder {folder} must be a folder")
    inside_output = output.resolve()
    suffixes = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    jobs: dict[Path, Path] = {}
    skipped: list[str] = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if (any(part.startswith(".") for part in relative.parts)
                or path.resolve().is_relative_to(inside_output) or not path.is_file()):
            continue
        if path.suffix.lower() not in suffixes:
            skipped.append(relative.as_posix())
            continue
        target = output / relative.with_name(_output_name(path))
        if target in jobs:
            raise DataError(f"{jobs[target]} and {path} would both be written to {target}; rename one")
        jobs[target] = path
    if not jobs:
        raise DataError(f"{folder} has no images or videos ({', '.join(sorted(suffixes))})")
    if skipped:
        print(f"note: {folder}: {skipped_note(skipped, 'images or videos')}", file=sys.stderr)
    return [(source, target) for target, source in jobs.items()]


def info_command(args: argparse.Namespace) -> None:
    """Print the registered versions of the model as an aligned table."""
    from gansr import tracking

    root = find_root()
    cfg = _tracking_config(args.name)
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

    result = tracking.promote(find_root(), _tracking_config(args.name),
                              version=args.version, alias=args.alias or tracking.CHALLENGER, force=args.force)
    print(result["decision"])


def summary_command(args: argparse.Namespace) -> None:
    """Print what the last `dvc repro` produced: metrics, MLflow run, registry."""
    from gansr.reporting import format_eval_table, format_style_scores
    from gansr.tracking import tracking_uri

    root = Path(args.root).resolve()
    layout = Layout.at(root)
    eval_file = layout.metrics / "eval.json"
    if not eval_file.is_file():
        raise GansrError(f"{eval_file} not found: run `dvc repro` first")
    scores = json.loads(eval_file.read_text())
    print(f"Test split, ×{scores['scale']} (Y channel, border = scale):")
    print(format_eval_table(scores))
    style_file = root / "metrics" / "style.json"
    if style_file.is_file():
        print("Style (texture and colour statistics training never sees): "
              + format_style_scores(json.loads(style_file.read_text())))
    print("Samples:           plots/samples.png, plots/styles.png")
    print(f"\nTracking store:    {tracking_uri(root)}")
    if not layout.registry.is_file():  # models pulled from a DVC remote, registered in another store
        print("Registered model:  none in this store (`dvc repro --force export` registers these models)")
        return
    registration = json.loads(layout.registry.read_text())
    print(f"MLflow run:        {registration['run_id']}")
    print(f"Registered model:  {registration['name']} version {registration['version']} "
          f"(aliases: {', '.join(registration['aliases']) or 'none'})")
    print(f"Promotion:         {registration['decision']}")
    print("Open the MLflow UI: make ui   (then http://127.0.0.1:5000)")


def _tracking_config(name: str | None) -> TrackingConfig:
    """The ``tracking`` section of the repository's params.yaml (defaults without one), ``--name`` applied."""
    from gansr.config import TrackingConfig, load_params

    params_file = find_root() / "params.yaml"
    cfg = load_params(params_file).tracking if params_file.is_file() else TrackingConfig()
    return dataclasses.replace(cfg, registered_model=name) if name else cfg


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
        description="GAN super-resolution: upscale images with a trained gansr generator, "
                    "and list or promote the generators in the MLflow Model Registry.",
        epilog=EXIT_CODES,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_upscale(sub)
    _add_registry_command(
        sub, "info", info_command, "list the registered versions of the generator",
        "List every registered version of the model: aliases, run id, test scores (from the version "
        "tags) and creation time. Uses the repository's mlflow.db, or MLFLOW_TRACKING_URI when set.")
    _add_promote(sub)
    summary = sub.add_parser("summary", help="print the last pipeline run's results", epilog=EXIT_CODES,
                             description="Print metrics, MLflow run and registered version.")
    summary.add_argument("--root", default=".", help="repository root (default: current directory)")
    summary.set_defaults(func=summary_command)
    return parser


def _add_upscale(sub: Any) -> None:
    up = sub.add_parser(
        "upscale", help="upscale an image, a video, or a folder of them", epilog=EXIT_CODES,
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
    up.add_argument("--model", default=str(DEFAULT_MODEL), metavar="VARIANT|PATH|URI",
                    help="psnr, gan or style (the generator a training stage wrote), a .keras file, "
                         "or a registry URI such as models:/gansr@champion "
                         f"(default: {DEFAULT_MODEL}, the last exported generator)")
    up.add_argument("--style", default="none", metavar="NAME|INDEX",
                    help="render in this style (with --model style): a style name such as gravel, "
                         "or its index 1..N; default none")
    up.add_argument("--tile", type=_count(1), metavar="N",
                    help="tile side in LR pixels (default: the largest that fits a quarter of free RAM, "
                         "64 to 1024; smaller images run whole)")
    # 16 is gansr.inference.DEFAULT_OVERLAP, not imported here so --help stays fast (no TensorFlow).
    up.add_argument("--overlap", type=_count(0), metavar="M",
                    help="LR pixels of context around each tile (default: the generator's receptive "
                         "radius, at least 16: 2·blocks + 3 for super-resolution, more with the style "
                         "branch); below it, seams can show")
    up.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                    help="cpu: never touch a GPU; gpu: fail (exit 1) unless TensorFlow sees one; "
                         "auto: a GPU if there is one (default: auto)")
    up.add_argument("--precision", choices=("auto", "float32", "float16", "bfloat16"), default="auto",
                    help="compute dtype of the generator's trunk (weights and output layers stay float32); "
                         "auto: float16 on a GPU, bfloat16 on a CPU with AVX512-BF16/AMX, else float32 "
                         "(default: auto)")
    up.set_defaults(func=upscale_command)


def _add_registry_command(sub: Any, verb: str, func: Callable[[argparse.Namespace], None], summary: str,
                          description: str) -> argparse.ArgumentParser:
    """A subcommand that works on one registered model, chosen with --name."""
    parser = sub.add_parser(verb, help=summary, description=description, epilog=EXIT_CODES)
    parser.add_argument("--name", help="registered model (default: tracking.registered_model in "
                                       "params.yaml, else gansr)")
    parser.set_defaults(func=func)
    return parser


def _add_promote(sub: Any) -> None:
    promote = _add_registry_command(
        sub, "promote", promote_command, "move the champion alias to a better version",
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
