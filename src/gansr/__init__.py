"""gansr: GAN super-resolution with style transfer, as a reproducible DVC + MLflow pipeline."""

import importlib.abc
import importlib.util
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__version__ = "0.1.0"


@contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the duration (C libraries write there directly)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Silence TensorFlow's C++ start-up chatter, whenever and wherever it is first imported.

    TF's native libraries print oneDNN and CUDA-probe notices straight to file
    descriptor 2 while loading, ignoring TF_CPP_MIN_LOG_LEVEL; they would open
    every stage's and every command's output. Hooking the import (rather than
    importing TensorFlow here) keeps the data stages and `gansr --help` free
    of its start-up cost. Python errors still surface: the descriptor is
    restored before any exception propagates.
    """

    def find_spec(self, name, path, target=None):  # noqa: ANN001, ANN201 (importlib protocol)
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            load = spec.loader.exec_module

            def exec_module(module) -> None:  # noqa: ANN001
                with _stderr_silenced():
                    load(module)

            spec.loader.exec_module = exec_module
        return spec


# Level 3 also hides the CUDA-probe error CPU-only machines log; real
# failures still raise Python exceptions.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if "tensorflow" not in sys.modules:
    sys.meta_path.insert(0, _QuietTensorFlowImport())
