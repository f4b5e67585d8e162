"""Serving formats of a generator, each checked against the model it came from.

:func:`export_generator` writes a generator as a Keras archive
(``generator.keras``), a TF SavedModel for TF Serving (``saved_model/``,
signature ``serving_default``) and a TFLite model with float16 weights
(``generator_fp16.tflite``), reloads each one right away and compares its
output with the in-memory model's on a small random batch; a file that does
not match raises a GansrError naming it.

Every format takes images of any height and width: the SavedModel signature
and the TFLite inputs are ``lr`` float32 (batch, H, W, 3) in [0, 1], plus
``style`` int32 (batch,) for a styled generator; the output is
(batch, scale·H, scale·W, 3). A TFLite caller sets the size with
``interpreter.resize_tensor_input`` before ``allocate_tensors``; TFLite
files are checked with LiteRT (:class:`~gansr.lite.LiteGenerator`), the
runtime ``gansr upscale`` uses, and get the ``generator.json`` beside
them that this runtime reads (:func:`~gansr.lite.write_runtime_info`).

TFLite has no bicubic resize among its built-in ops (``tf.ResizeBicubic``
converts only as a Flex/Select-TF op, and the TensorFlow 2.21 wheel's
interpreter cannot run Flex ops), so the TFLite model computes the bicubic
skip as a fixed convolution plus depth-to-space that reproduces
``tf.image.resize(..., "bicubic")`` exactly (:class:`ConvBicubicUpsample`).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import fingerprint_pb2

from gansr.errors import GansrError
from gansr.inference import bytes_per_lr_pixel, model_scale, receptive_radius
from gansr.layout import EXPORT_FILES
from gansr.lite import SERVING_SIGNATURE, LiteGenerator, write_runtime_info
from gansr.models.archive import save_generator
from gansr.models.layers import BicubicUpsample, style_names

# Largest |difference| from the in-memory model a reloaded file may show, per format.
# A SavedModel runs TensorFlow's graph optimisations, which reorder sums: the style swap's
# normalised matching turns that rounding into up to ~1e-5 (0.003 grey levels).
# TFLite stores weights as float16 (11-bit mantissa); 2/255 is two grey levels of an 8-bit image.
TOLERANCE = {"keras": 1e-5, "saved_model": 1e-4, "tflite": 2 / 255}
CHECK_SHAPE = (2, 12, 10, 3)  # a small batch of two, not square, so a swapped H/W shows
# tf.ResizeBicubic looks up the cubic kernel in a table of this many steps (resize_bicubic_op.cc).
_KERNEL_TABLE_SIZE = 1024
_KEYS_A = -0.5  # Keys' cubic convolution parameter, as in tf.image.resize and MATLAB's imresize


def export_generator(model: keras.Model, folder: Path, formats: tuple[str, ...]) -> dict[str, float]:
    """Write ``model`` in each of ``formats`` into ``folder``; return each format's max error.

    Raises GansrError naming the file when a reloaded format's output differs
    from the model's by more than its tolerance.
    """
    folder.mkdir(parents=True, exist_ok=True)
    inputs = probe_inputs(model)
    expected = predict(model, inputs)
    errors = {}
    for fmt in formats:
        path = folder / EXPORT_FILES[fmt]
        WRITERS[fmt](model, path)
        errors[fmt] = _check(path, expected, _reload_and_run(fmt, path, inputs), TOLERANCE[fmt])
    if "tflite" in formats:  # what LiteRT's tiling needs to know and the flat buffer does not say
        write_runtime_info(folder, {"scale": model_scale(model), "styles": style_names(model),
                                    "receptive_radius": receptive_radius(model),
                                    "bytes_per_lr_pixel": bytes_per_lr_pixel(model)})
    return errors


def _reload_and_run(fmt: str, path: Path, inputs: list[np.ndarray]) -> np.ndarray:
    try:
        return RUNNERS[fmt](path, inputs)
    except Exception as exc:  # Keras, TF and TFLite each raise their own types for a damaged file
        raise GansrError(f"{path}: the export does not reload ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'no message'})") from exc


def probe_inputs(model: keras.Model) -> list[np.ndarray]:
    """A random batch for ``model``: images in [0, 1] and, if styled, style 0 and the last style."""
    images = np.random.default_rng(0).random(CHECK_SHAPE, dtype=np.float32)
    if len(model.inputs) == 1:
        return [images]
    return [images, np.array([0, len(style_names(model))], dtype=np.int32)]


def predict(model: keras.Model, inputs: list[np.ndarray]) -> np.ndarray:
    """``model``'s output for ``inputs``, as the model expects them (a list only for two inputs)."""
    return np.asarray(model(inputs if len(inputs) > 1 else inputs[0]))


def _check(path: Path, expected: np.ndarray, got: np.ndarray, tolerance: float) -> float:
    if got.shape != expected.shape:
        raise GansrError(f"{path}: reloaded export gives shape {got.shape}, the generator {expected.shape}")
    error = float(np.max(np.abs(got - expected)))
    if not error <= tolerance:  # also catches NaN
        raise GansrError(f"{path}: reloaded export differs from the generator by {error:.3g} "
                         f"(tolerance {tolerance:g})")
    return error


def _input_specs(model: keras.Model) -> list[tf.TensorSpec]:
    """Any batch × any H × any W × RGB, plus the style index per image for a styled generator."""
    specs = [tf.TensorSpec((None, None, None, 3), tf.float32, name="lr")]
    if len(model.inputs) > 1:
        specs.append(tf.TensorSpec((None,), tf.int32, name="style"))
    return specs


def _feed(inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    return dict(zip(("lr", "style"), inputs))


def _write_keras(model: keras.Model, path: Path) -> None:
    save_generator(model, path)


def _run_keras(path: Path, inputs: list[np.ndarray]) -> np.ndarray:
    return predict(keras.saving.load_model(path, safe_mode=True), inputs)


def _write_saved_model(model: keras.Model, path: Path) -> None:
    """The serving signature over ``model``'s weights, which the module lists in the model's own order.

    Not ``model.export``: Keras collects the weights a traced function reads
    in an order that changes from process to process, so the same generator
    gave different bytes each time. The fingerprint's random ``uuid`` becomes
    one derived from the SavedModel's checksum, for the same reason.
    """
    specs = _input_specs(model)
    module = tf.Module()
    module.generator_weights = [weight.value for weight in model.weights]  # the tf.Variables the signature reads
    if len(specs) == 1:
        serve = tf.function(lambda lr: model(lr, training=False), input_signature=specs)
    else:  # a multi-input functional model takes its inputs as one list
        serve = tf.function(lambda lr, style: model([lr, style], training=False), input_signature=specs)
    tf.saved_model.save(module, str(path), signatures={SERVING_SIGNATURE: serve.get_concrete_function()})
    _fix_fingerprint_uuid(path)


def _fix_fingerprint_uuid(path: Path) -> None:
    """Replace the random uuid in ``path``'s fingerprint.pb by its SavedModel checksum."""
    fingerprint_file = path / "fingerprint.pb"
    fingerprint = fingerprint_pb2.FingerprintDef.FromString(fingerprint_file.read_bytes())
    fingerprint.uuid = str(fingerprint.saved_model_checksum)
    fingerprint_file.write_bytes(fingerprint.SerializeToString(deterministic=True))


def _run_saved_model(path: Path, inputs: list[np.ndarray]) -> np.ndarray:
    serve = tf.saved_model.load(str(path)).signatures[SERVING_SIGNATURE]
    (output,) = serve(**{name: tf.constant(value) for name, value in _feed(inputs).items()}).values()
    return output.numpy()


def _write_tflite(model: keras.Model, path: Path) -> None:
    # Through a SavedModel, TF's supported route: it freezes the weights into the flat buffer.
    with tempfile.TemporaryDirectory(prefix="gansr-tflite-") as tmp:
        _write_saved_model(builtin_ops_twin(model), Path(tmp) / "saved_model")
        converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(tmp) / "saved_model"))
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
        path.write_bytes(converter.convert())


def _run_tflite(path: Path, inputs: list[np.ndarray]) -> np.ndarray:
    return LiteGenerator(path)(_feed(inputs))


WRITERS: dict[str, Callable[[keras.Model, Path], None]] = {
    "keras": _write_keras, "saved_model": _write_saved_model, "tflite": _write_tflite}
RUNNERS: dict[str, Callable[[Path, list[np.ndarray]], np.ndarray]] = {
    "keras": _run_keras, "saved_model": _run_saved_model, "tflite": _run_tflite}


def builtin_ops_twin(model: keras.Model) -> keras.Model:
    """``model`` with its bicubic skip computed by TFLite built-in ops (same weights, same output)."""
    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        if isinstance(layer, BicubicUpsample):
            return ConvBicubicUpsample(layer.scale, name=layer.name, dtype=layer.dtype_policy)
        return layer.__class__.from_config(layer.get_config())

    twin = keras.models.clone_model(model, clone_function=clone)
    twin.set_weights(model.get_weights())
    return twin


class ConvBicubicUpsample(BicubicUpsample):
    """``tf.image.resize(x, scale·size, "bicubic")`` as a 5×5 convolution and a depth-to-space.

    For an integer scale s, output pixel s·i + r (half-pixel centres) reads
    input pixels i−2 … i+2 with cubic weights that depend only on r, so one
    convolution with 3·s² output channels computes every phase. At the
    borders tf.ResizeBicubic drops taps outside the image and renormalises
    the rest; dividing by the same convolution of an all-ones image does
    that. Export-only: never saved, so not registered.
    """

    def build(self, input_shape: tuple) -> None:
        taps = _bicubic_taps(self.scale)  # (s, 5): weight of input i-2 … i+2 for output phase r
        phases = np.einsum("yk,xl->klyx", taps, taps).reshape(5, 5, -1)  # (5, 5, s²), phase = ry·s + rx
        channels = input_shape[-1]
        kernel = np.zeros((5, 5, channels, self.scale ** 2 * channels), np.float32)
        for c in range(channels):  # depth-to-space reads output channel (ry·s + rx)·C + c
            kernel[:, :, c, c::channels] = phases
        # NumPy, made constants in call(): a tensor made here could belong to a finished trace.
        self.kernel = kernel
        self.norm_kernel = phases[:, :, None, :].astype(np.float32)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        x = tf.cast(x, tf.float32)
        weighted = tf.nn.depth_to_space(tf.nn.conv2d(x, tf.constant(self.kernel), 1, "SAME"), self.scale)
        ones = tf.ones_like(x[..., :1])
        total = tf.nn.depth_to_space(tf.nn.conv2d(ones, tf.constant(self.norm_kernel), 1, "SAME"), self.scale)
        return weighted / total


def _bicubic_taps(scale: int) -> np.ndarray:
    """Per output phase r, the cubic weights of input pixels i−2 … i+2 (tf.ResizeBicubic's)."""
    taps = np.zeros((scale, 5))
    for r in range(scale):
        source = (r + 0.5) / scale - 0.5  # half-pixel centres, relative to input pixel i
        first = math.floor(source)
        # The kernel table's resolution, so scale 3 matches TF to the last bit too.
        delta = round((source - first) * _KERNEL_TABLE_SIZE) / _KERNEL_TABLE_SIZE
        for m, distance in enumerate((1 + delta, delta, 1 - delta, 2 - delta)):
            taps[r, first - 1 + m + 2] = _keys_cubic(distance)
    return taps


def _keys_cubic(distance: float) -> float:
    """Keys (1981) cubic convolution kernel at ``distance`` ∈ [0, 2]."""
    a, d = _KEYS_A, abs(distance)
    if d <= 1:
        return ((a + 2) * d - (a + 3)) * d * d + 1
    return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a


def format_errors(errors: dict[str, float]) -> str:
    """Each format's measured max error, as one line."""
    return ", ".join(f"{fmt} {error:.2g}" for fmt, error in errors.items())

