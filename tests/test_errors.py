"""How a command ends: one line for a known error, quietly when its reader stops reading."""

from __future__ import annotations

import subprocess
import sys

PRINTS_A_LOT = "for i in range(200000): print('line', i)"


def _closed_early(code: str) -> tuple[int, str]:
    """Run ``code``, read a little of its stdout, close the pipe (as ``| head`` does); exit code and stderr."""
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    process.stdout.read(100)
    process.stdout.close()
    stderr = process.stderr.read()
    return process.wait(timeout=60), stderr


def test_a_reader_that_stops_reading_ends_the_command_without_a_traceback() -> None:
    guarded = f"from gansr.errors import exit_on_error\nwith exit_on_error('gansr test'):\n    {PRINTS_A_LOT}"
    assert _closed_early(guarded) == (1, "")
    code, stderr = _closed_early(PRINTS_A_LOT)  # the control: plain Python prints a traceback
    assert code != 0 and "BrokenPipeError" in stderr
