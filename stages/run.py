"""Runs one pipeline stage, as dvc.yaml's commands do: ``python stages/run.py <stage>``.

The stage's code is ``src/gansr/stages/<stage>.py``. Run from a Python without
gansr installed, this says so in one line instead of a traceback.
"""

import sys

try:
    from gansr.stages import run_stage
except ModuleNotFoundError as error:
    if error.name != "gansr":
        raise
    sys.exit(f"gansr {' '.join(sys.argv[1:2])}: error: the gansr package is not installed for {sys.executable}; "
             "run `make install` and `source .venv/bin/activate` first (or `make run`)")

if len(sys.argv) != 2:
    sys.exit("usage: python stages/run.py <stage>")
run_stage(sys.argv[1])
