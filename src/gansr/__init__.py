"""gansr: GAN super-resolution with style transfer, as a reproducible DVC + MLflow pipeline."""

import os
import sys

__version__ = "0.1.0"


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow once with its C++ start-up chatter hidden.

    TF's native libraries print oneDNN and CUDA-probe notices straight to file
    descriptor 2 while loading, ignoring TF_CPP_MIN_LOG_LEVEL; they would open
    every stage's and every command's output. Python errors still surface:
    the descriptor is restored before any exception propagates. Level 3 also
    hides the CUDA-probe error that CPU-only machines log; real failures still
    raise Python exceptions.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_import_tensorflow_quietly()
