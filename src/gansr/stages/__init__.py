"""The pipeline's stages, one module each: ``gansr.stages.<name>.run(params, layout)``.

``dvc.yaml`` runs ``python stages/run.py <name>``, which calls
:func:`run_stage`. Each stage module imports only what its stage needs, so the
code dependencies ``dvc.yaml`` lists for a stage are that module's imports
(``tests/test_dvc_dependencies.py`` checks them).
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from gansr.config import Params, load_params
from gansr.errors import GansrError, exit_on_error
from gansr.layout import PARAMS_FILE, Layout, project_root
from gansr.quiet import quiet_tensorflow

NAMES = ("download", "pairs", "validate", "shards", "pretrain", "train_gan", "finetune_real", "train_real",
         "train_style", "evaluate", "export")
QUIET_LOGGERS = ("mlflow", "alembic", "great_expectations", "absl", "h5py", "tensorflow")


def run_stage(name: str, root: Path | None = None) -> None:
    """Run stage ``name`` in the project at ``root`` (default: the one found from here), errors as one line."""
    quiet_tensorflow()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with exit_on_error(f"gansr {name}"):
        if name not in NAMES:
            raise GansrError(f"no stage named {name!r}; the stages are {', '.join(NAMES)}")
        root = project_root(root)
        params = load_params(root / PARAMS_FILE)
        check_inputs(params)
        importlib.import_module(f"gansr.stages.{name}").run(params, Layout.at(root))


def check_inputs(params: Params) -> None:
    """Fail before any stage works on an input a later stage would refuse: a style folder without images.

    DVC may run several stages (pretraining, GAN training) before ``train_style``
    reads ``style.folder``; listing the folder costs next to nothing.
    """
    if params.style.source == "folder":
        from gansr.data.sources import check_image_folder

        check_image_folder(Path(params.style.folder), "style.folder")


def run_note(summary: dict) -> str:
    """Where a training stage's MLflow run is, for its last log line."""
    if summary["run_id"] is None:  # a worker of a multi-worker run
        return "outputs and MLflow run written by the chief"
    return f"MLflow run {summary['run_id']}"


def counts(per_split: dict[str, int]) -> str:
    """``{"test": 3, "train": 20}`` -> ``"test 3, train 20"``."""
    return ", ".join(f"{split} {n}" for split, n in sorted(per_split.items()))
