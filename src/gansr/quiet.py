"""Quiet TensorFlow's start-up chatter at gansr's entry points, never on import.

TensorFlow's native libraries print oneDNN and CUDA-probe notices straight to
file descriptor 2 while loading, ignoring Python logging; they would open
every stage's and every command's output. The entry points (``run_stage``
for the pipeline's stages, ``gansr`` for the command) call
:func:`quiet_tensorflow` before anything loads TensorFlow; importing gansr
changes nothing, so a program that imports it (``mlflow models serve``, a
notebook) keeps TensorFlow's messages. ``GANSR_TF_LOGS=1`` keeps them at the
entry points too, e.g. to see why TensorFlow fell back from a GPU to the CPU.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from types import ModuleType

OPT_OUT = "GANSR_TF_LOGS"  # set to 1 to keep TensorFlow's start-up messages


def quiet_tensorflow() -> None:
    """Hide TensorFlow's native start-up messages when it is first imported, unless ``GANSR_TF_LOGS`` is set.

    Level 3 of ``TF_CPP_MIN_LOG_LEVEL`` also hides the CUDA-probe error that
    CPU-only machines log; real failures still raise Python exceptions.
    Hooking the import (rather than importing TensorFlow here) keeps the data
    stages and ``gansr --help`` free of its start-up cost.
    """
    if os.environ.get(OPT_OUT, "0") not in ("", "0"):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


@contextmanager
def native_messages_hidden() -> Iterator[None]:
    """Hide what native code prints to file descriptor 2 meanwhile (LiteRT's delegate notices), unless opted out."""
    if os.environ.get(OPT_OUT, "0") not in ("", "0"):
        yield
        return
    with _stderr_silenced():
        yield


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
    """Loads ``tensorflow`` with file descriptor 2 silenced; Python errors still surface (it is restored first)."""

    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> ModuleSpec | None:
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            load = spec.loader.exec_module

            def exec_module(module: ModuleType) -> None:
                with _stderr_silenced():
                    load(module)

            spec.loader.exec_module = exec_module
        return spec
