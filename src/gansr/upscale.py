"""``gansr upscale``: an image, a video or a folder of them, with a trained or registered generator.

The generator and the video codecs load only when an upscale runs, so
``gansr --help`` stays fast. The exported generators run on LiteRT, which
starts at once, and so do registered models exported with them;
TensorFlow loads only for what LiteRT cannot run: a GPU, reduced precision
or a ``.keras`` file.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gansr.errors import ConfigError, DataError, GansrError
from gansr.layout import EXPORT_FILES, EXPORTED_VARIANTS, MAIN_VARIANT, RUNTIME_INFO_FILE, Layout, project_root

if TYPE_CHECKING:
    import keras

    from gansr.tiling import TiledUpscaler

REGISTRY_SCHEME = "models:/"  # --model models:/NAME@ALIAS loads from the MLflow Model Registry
RUNTIMES = ("auto", "tf", "lite")  # --runtime
GPU_DEVICE_NODES = ("/dev/nvidia0", "/dev/dxg")  # an NVIDIA GPU on Linux, and under WSL


def upscale(model: str | Path | None, source: Path, target: Path, *, device: str = "auto",
            precision: str = "auto", tile: int | None = None, overlap: int | None = None, style: str = "none",
            root: Path | None = None, runtime: str = "auto", max_memory: int | None = None) -> None:
    """Upscale ``source`` (an image, a video or a folder of them) into ``target``, reporting on stdout.

    ``model`` is a variant (psnr, gan, real, style), a ``.keras`` or ``.tflite``
    file or a registry URI; None is the generator the export stage wrote.
    Variants and registry URIs are those of the project
    :func:`~gansr.layout.project_root` finds from ``root``. ``runtime``
    (:func:`_runs_light`) picks LiteRT on the TFLite export or TensorFlow.
    Tiles are ``tile`` LR pixels square, else fitted to each image under
    ``max_memory`` MiB per forward pass (:mod:`gansr.tiling`). ``style``
    is a style of a styled generator, by name or number, or an image file:
    its style is then drawn by the untrained style branch on ``model``'s
    super-resolution (:func:`~gansr.style.network.with_style_image`).
    A folder is mirrored into the folder ``target``; its unreadable files
    are skipped with one line each, and a :class:`DataError` at the end says
    how many.
    """
    if tile is not None and max_memory is not None:
        raise ConfigError("--tile and --max-memory: give one (a fixed tile does not depend on memory)")
    style_image = _style_image(style)
    if style_image is not None:
        if str(model).endswith(".tflite"):
            raise ConfigError(f"--style {style}: a style image needs a Keras generator (a variant, a .keras file "
                              "or a registry URI), not a TFLite file")
        if runtime == "lite":
            raise ConfigError(f"--style {style}: a style image runs on --runtime tf (its style swap is built "
                              "when the command runs)")
        runtime = "tf"
    upscaler = _upscaler(model, root, runtime, device, precision, tile, overlap, max_memory, style_image)
    try:
        upscaler.style = 1 if style_image is not None else upscaler.style_index(style)
    except ConfigError as exc:
        raise ConfigError(f"--{exc}") from exc
    # The generators trained on clean bicubic inputs; a noisy or JPEG-blocked photo is told of `real`.
    hint = model is None or str(model) in set(EXPORTED_VARIANTS) - {"real"}
    if not source.is_dir():
        output = target / _output_name(source) if target.is_dir() else target
        print(_upscale_file(upscaler, source, output, print, hint))
        return
    from tqdm import tqdm

    jobs = _folder_jobs(source, target)
    failed = 0
    for image, output in tqdm(jobs, desc="upscale", unit="file"):
        try:
            _upscale_file(upscaler, image, output, tqdm.write, hint)
        except DataError as exc:
            failed += 1
            tqdm.write(f"skipped {exc}", file=sys.stderr)
    print(f"{target}: {len(jobs) - failed} of {len(jobs)} files upscaled ×{upscaler.scale}")
    if failed:
        raise DataError(f"{failed} of {len(jobs)} files in {source} could not be read (listed above)")


def _upscaler(model: str | Path | None, root: Path | None, runtime: str, device: str, precision: str,
              tile: int | None, overlap: int | None, max_memory: int | None,
              style_image: Path | None = None) -> TiledUpscaler:
    """The upscaler ``model`` runs in: LiteRT on its TFLite export, or TensorFlow (:func:`_runs_light`).

    With ``style_image`` (which :func:`upscale` runs on TensorFlow), ``model`` gets that image as its one style.
    """
    tiling = {"tile": tile, "overlap": overlap, "max_memory": max_memory}

    def styled(generator: keras.Model) -> keras.Model:
        return generator if style_image is None else _with_style_image(generator, style_image)

    if not str(model).startswith(REGISTRY_SCHEME):
        return _upscaler_of(model, _tflite_file(model, root), lambda: styled(_load(model, root)), runtime, device,
                            precision, tiling)
    from gansr import tracking

    # Download into a folder we own and delete: MLflow would otherwise leave a copy in /tmp.
    with tempfile.TemporaryDirectory(prefix="gansr-model-") as download:
        local = tracking.download_model(str(model), project_root(root), Path(download))

        def registered() -> keras.Model:
            return tracking.load_downloaded_generator(local, str(model))  # loads the registry (Keras) only now

        return _upscaler_of(model, next(local.glob(f"data/**/{EXPORT_FILES['tflite']}"), None),
                            lambda: styled(registered()), runtime, device, precision, tiling)


def _upscaler_of(model: str | Path | None, light_file: Path | None, keras_model: Callable[[], keras.Model],
                 runtime: str, device: str, precision: str, tiling: dict[str, int | None]) -> TiledUpscaler:
    """LiteRT on ``light_file`` where :func:`_runs_light` says so, else TensorFlow on ``keras_model()``."""
    if _runs_light(runtime, light_file, device, precision):
        from gansr.lite import LiteUpscaler

        return LiteUpscaler(light_file, **tiling)
    if light_file is not None and str(model).endswith(".tflite"):
        raise ConfigError(f"--model {model}: a TFLite file runs on --runtime lite, not tf")
    _use_device(device)  # before TensorFlow builds anything
    from gansr.inference import Upscaler, with_precision

    return Upscaler(with_precision(keras_model(), _precision(precision)), **tiling)


def _runs_light(runtime: str, light_file: Path | None, device: str, precision: str) -> bool:
    """Whether to run LiteRT: forced by ``--runtime lite``, else (auto) wherever TensorFlow brings nothing.

    auto takes LiteRT when the model has a TFLite export with its runtime
    info, no GPU is asked for or present, and ``--precision`` is left to
    auto (LiteRT computes in float32 from the float16 weights).
    """
    if runtime == "tf":
        return False
    if runtime == "lite":
        if light_file is None:
            raise ConfigError("--runtime lite: this --model has no TFLite export (use a variant, the default "
                              "model, a .tflite file or a model registered with its TFLite export)")
        if device == "gpu" or precision not in ("auto", "float32"):
            raise ConfigError("--runtime lite computes in float32 on the CPU: "
                              "drop --device gpu and --precision, or use --runtime tf")
        return True
    return (light_file is not None and light_file.is_file()
            and light_file.with_name(RUNTIME_INFO_FILE).is_file()
            and device != "gpu" and precision == "auto" and not (device == "auto" and _gpu_present()))


def _tflite_file(model: str | Path | None, root: Path | None) -> Path | None:
    """The TFLite export of ``model`` (None: the main variant; a variant's; a .tflite file), else None."""
    if str(model).endswith(".tflite"):
        return Path(model)
    if model is None or str(model) in EXPORTED_VARIANTS:
        return Layout.at(project_root(root)).exported(MAIN_VARIANT if model is None else str(model), "tflite")
    return None


def _style_image(style: str) -> Path | None:
    """``style`` as a style image file, if it names one (a path with an image suffix), else None."""
    path = Path(style)
    if not path.suffix:  # a style's name or number: nothing to import
        return None
    from gansr.data.sources import IMAGE_SUFFIXES

    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return None
    if not path.is_file():
        raise DataError(f"--style {style}: no such image file")
    return path


def _with_style_image(generator: keras.Model, image: Path) -> keras.Model:
    """``generator`` drawing ``image``'s style, at the default size and share of light of params.yaml's style."""
    from gansr.config import StyleConfig
    from gansr.imageio import read_rgb
    from gansr.style.images import resize_shorter_side
    from gansr.style.network import with_style_image

    cfg = StyleConfig()
    pixels = resize_shorter_side(read_rgb(image)[0], cfg.image_size)
    return with_style_image(generator, pixels, image.stem, cfg.patches, cfg.shading)


def _gpu_present() -> bool:
    """Whether the machine has an NVIDIA GPU TensorFlow could use, told without importing TensorFlow."""
    return any(Path(node).exists() for node in GPU_DEVICE_NODES)


def _load(model: str | Path | None, root: Path | None) -> keras.Model:
    """The generator ``model`` names: the exported one (None), a variant's or a ``.keras`` file."""
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


def _output_name(source: Path) -> str:
    """The file name ``source``'s result gets in an output folder: a video keeps its name, an image turns PNG."""
    from gansr.video import is_video

    return source.name if is_video(source) else f"{source.stem}.png"


def _upscale_file(upscaler: TiledUpscaler, source: Path, target: Path, say: Callable[..., None],
                  hint: bool) -> str:
    """Upscale ``source`` (a video or an image) into ``target``; notes go to ``say`` on stderr.

    With ``hint``, an image that looks noisy or JPEG-blocked gets a note that ``--model real`` suits it.
    """
    from gansr.video import is_video, upscale_video

    if is_video(source):
        return upscale_video(upscaler, source, target, say)
    return _upscale_image(upscaler, source, target, say, hint)


def _upscale_image(upscaler: TiledUpscaler, source: Path, target: Path, say: Callable[..., None],
                   hint: bool) -> str:
    """Upscale ``source`` into the PNG ``target``; conversion notes (and ``hint``'s) go to ``say`` on stderr."""
    from gansr.imageio import FAST_PNG, is_large, read_faithful_rgb, write_png
    from gansr.input_quality import real_photo_hint

    image, notes = read_faithful_rgb(source)
    if hint and (suits_real := real_photo_hint(image)):
        notes.append(suits_real)
    height, width = image.shape[:2]
    if is_large(height * width):
        notes.append(f"the output will be {width * upscaler.scale}×{height * upscaler.scale} "
                     f"({height * width * upscaler.scale ** 2 / 1e6:.0f} Mpx): slow to make and huge")
    for note in notes:
        say(f"note: {source}: {note}", file=sys.stderr)
    upscaled = upscaler(image)
    write_png(target, upscaled, FAST_PNG)
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
