"""TensorFlow's start-up chatter is hidden at the entry points only, and can be kept."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gansr.quiet import OPT_OUT

QUIETED = "from gansr.quiet import quiet_tensorflow; quiet_tensorflow(); import tensorflow"


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    """``python -c code`` without any TensorFlow log setting inherited from here, plus ``env``."""
    inherited = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", OPT_OUT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**inherited, **env})
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def chatter() -> str:
    """What TensorFlow prints at start-up after gansr's modules are imported: importing must not hide it."""
    printed = _run("import gansr.stages, gansr.cli, tensorflow").stderr
    if not printed.strip():
        pytest.skip("TensorFlow prints nothing at start-up on this machine: nothing to hide")
    return printed


def test_importing_gansr_sets_no_log_level_and_hooks_no_import() -> None:
    probe = "import os, sys; {}print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'), len(sys.meta_path))"
    assert _run(probe.format("import gansr.stages, gansr.cli; ")).stdout == _run(probe.format("")).stdout


def test_the_entry_points_hide_it(chatter: str) -> None:
    assert _run(QUIETED).stderr == ""


def test_gansr_tf_logs_keeps_it_at_the_entry_points(chatter: str) -> None:
    assert _run(QUIETED, **{OPT_OUT: "1"}).stderr.strip()
