"""Each stage declares in dvc.yaml exactly the params it reads, so `dvc repro` reruns what a change affects.

Every stage runs once, in order, on a tiny copy of the repository, while the
config classes record each value the stage's code reads. Reads made by the
config itself (validation) or by ``dataclasses`` (``asdict`` for MLflow's
parameter list and for checkpoint keys) are bookkeeping, not inputs.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from repo_helpers import TINY, make_repo

from gansr import config
from gansr.config import Params, load_params
from gansr.layout import Layout

pytestmark = pytest.mark.slow

STAGES = yaml.safe_load((Path(__file__).resolve().parents[1] / "dvc.yaml").read_text())["stages"]
# Read but deliberately not declared: how a run is logged and checkpointed does not change what it trains.
UNDECLARED = {
    "tracking.experiment": "the MLflow experiment a training run is logged in",
    "train.log_every": "steps between MLflow metric points",
    "train.checkpoint_every": "steps between checkpoints; a resumed run ends with the same weights",
}
# Declared but not read on this tiny data: an input only in a mode the tiny run does not take.
READ_ONLY_WHEN = {
    "train.shuffle_buffer": "training streams its pairs (train.input stream); tiny data is cached in memory",
}
NOT_INPUTS = {"dataclasses", "copy", config.__name__}


@pytest.fixture(scope="module")
def reads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, set[str]]]:
    """The params each stage read, run in dvc.yaml's order."""
    root = make_repo(tmp_path_factory.mktemp("params") / "repo", {**TINY, "export": {"formats": ["keras"]}})
    params, layout = load_params(root / "params.yaml"), Layout.at(root)
    read: set[str] = set()
    sections = {hint: name for name, hint in typing.get_type_hints(Params).items()
                if dataclasses.is_dataclass(hint)}
    originals = {cls: cls.__getattribute__ for cls in (Params, *sections)}

    def recorder(cls: type) -> object:
        fields = {f.name for f in dataclasses.fields(cls)}
        prefix = "" if cls is Params else f"{sections[cls]}."

        def __getattribute__(self: object, name: str) -> object:  # noqa: N807
            value = originals[cls](self, name)
            if (name in fields and not dataclasses.is_dataclass(value)
                    and sys._getframe(1).f_globals.get("__name__") not in NOT_INPUTS):
                read.add(prefix + name)
            return value

        return __getattribute__

    stage_reads = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        for cls in originals:
            mp.setattr(cls, "__getattribute__", recorder(cls))
        for name in STAGES:
            read.clear()
            importlib.import_module(f"gansr.stages.{name}").run(params, layout)
            stage_reads[name] = set(read)
    yield stage_reads


def covered(key: str, declared: list[str]) -> bool:
    return any(key == entry or key.startswith(f"{entry}.") for entry in declared)


@pytest.mark.parametrize("name", list(STAGES))
def test_a_stage_declares_every_param_it_reads(reads: dict[str, set[str]], name: str) -> None:
    declared = STAGES[name].get("params", [])
    missing = sorted(key for key in reads[name] - UNDECLARED.keys() if not covered(key, declared))
    assert not missing, f"dvc.yaml stage {name} reads {missing} without declaring them"


@pytest.mark.parametrize("name", list(STAGES))
def test_a_stage_reads_every_param_it_declares(reads: dict[str, set[str]], name: str) -> None:
    unread = [entry for entry in STAGES[name].get("params", [])
              if entry not in READ_ONLY_WHEN and not any(covered(key, [entry]) for key in reads[name])]
    assert not unread, f"dvc.yaml stage {name} declares {unread} but never reads them"
