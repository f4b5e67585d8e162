"""``gansr upscale``: an image, a video or a folder of them, with a trained or registered generator.

TensorFlow, the generator and the video codecs load only when an upscale
runs, so ``gansr --help`` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gansr.errors import ConfigError, DataError, GansrError
from gansr.layout import EXPORTED_VARIANTS, Layout, project_root

if TYPE_CHECKING:
    import keras

    from gansr.inference import Upscaler

REGISTRY_SCHEME = "models:/"  # --model models:/NAME@ALIAS loads from the MLflow Model Registry


def upscale(model: str | Path | None, source: Path, target: Path, *, device: str = "auto",
            precision: str = "auto", tile: int | None = None, overlap: int | None = None, style: str = "none",
            root: Path | None = None) -> None:
    """Upscale ``source`` (an image, a video or a folder of them) into ``target``, reporting on stdout.

    ``model`` is a variant (psnr, gan, style), a ``.keras`` file or a registry
    URI; None is the generator the export stage wrote. Variants and registry
    URIs are those of the project :func:`~gansr.layout.project_root` finds
    from ``root``. A folder is mirrored into the folder ``target``; its unreadable files
    are skipped with one line each, and a :class:`DataError` at the end says
    how many.
    """
    _use_device(device)  # before TensorFlow builds anything
    from tqdm import tqdm

    from gansr.inference import Upscaler, with_precision

    generator = _load(model, root)
    upscaler = Upscaler(with_precision(generator, _precision(precision)), tile, overlap,
                        style=_style_index(generator, style))
    if not source.is_dir():
        output = target / _output_name(source) if target.is_dir() else target
        print(_upscale_file(upscaler, source, output, print))
        return
    jobs = _folder_jobs(source, target)
    failed = 0
    for image, output in tqdm(jobs, desc="upscale", unit="file"):
        try:
            _upscale_file(upscaler, image, output, tqdm.write)
        except DataError as exc:
            failed += 1
            tqdm.write(f"skipped {exc}", file=sys.stderr)
    print(f"{target}: {len(jobs) - failed} of {len(jobs)} files upscaled ×{upscaler.scale}")
    if failed:
        raise DataError(f"{failed} of {len(jobs)} files in {source} could not be read (listed above)")


def _load(model: str | Path | None, root: Path | None) -> keras.Model:
    """The generator ``model`` names: the exported one (None), a variant's, a ``.keras`` file or a registry URI."""
    if str(model).startswith(REGISTRY_SCHEME):
        from gansr.tracking import load_registered_generator

        return load_registered_generator(str(model), project_root(root))
    from gansr.inference import load_generator

    if model is None or str(model) in EXPORTED_VARIANTS:
        layout = Layout.at(project_root(root))
        return load_generator(layout.exported_generator if model is None else layout.generator(str(model)))
    return load_generator(model)


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
    """``--precision`` as a dtype; auto: :func:`~gansr.training.precision.fastest_dtype` on the devices left visible."""
    import tensorflow as tf

    from gansr.training.precision import fastest_dtype

    return fastest_dtype(bool(tf.config.get_visible_devices("GPU"))) if setting == "auto" else setting


def _style_index(model: Any, style: str) -> int:
    """``--style`` as an index into the generator's styles: a name, a number, or none (0)."""
    from gansr.models.layers import style_index

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
