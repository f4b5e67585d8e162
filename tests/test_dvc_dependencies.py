"""dvc.yaml lists exactly the code each stage runs, so no output goes stale when that code changes.

A stage's code is the import closure of ``stages/run.py`` and its own module
``src/gansr/stages/<name>.py`` through ``gansr.*`` imports, read from the
source (module-level and function-local imports alike, and each package's
``__init__.py`` on the way).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from source_imports import SRC, gansr_imports, module_file

REPO = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def import_closure(*entries: Path) -> set[str]:
    """Repository-relative paths of ``entries`` and every gansr module they import, transitively."""
    seen: set[Path] = set()
    todo = list(entries)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in gansr_imports(path):
            parts = name.split(".")
            # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
            todo += [f for i in range(1, len(parts) + 1) if (f := module_file(".".join(parts[:i])))]
    return {path.relative_to(REPO).as_posix() for path in seen}


def stage_code(name: str) -> set[str]:
    return import_closure(REPO / "stages" / "run.py", SRC / "gansr" / "stages" / f"{name}.py")


def code_deps(stage: dict) -> list[str]:
    return [dep for dep in stage["deps"] if dep.startswith(("src/", "stages/"))]


def covers(dep: str, path: str) -> bool:
    return path == dep or path.startswith(dep.rstrip("/") + "/")


def test_closure_follows_function_local_and_package_imports(tmp_path: Path) -> None:
    closure = import_closure(SRC / "gansr" / "stages" / "__init__.py")
    assert "src/gansr/data/sources.py" in closure  # imported inside check_inputs
    assert {"src/gansr/__init__.py", "src/gansr/data/__init__.py"} <= closure
    assert "src/gansr/training/phases.py" not in closure  # stages are imported by name at run time


@pytest.mark.parametrize("name", list(STAGES))
def test_each_stage_runs_its_own_module(name: str) -> None:
    assert STAGES[name]["cmd"] == f"python stages/run.py {name}"
    assert f"src/gansr/stages/{name}.py" in STAGES[name]["deps"]


@pytest.mark.parametrize("name", list(STAGES))
def test_dvc_yaml_lists_every_module_a_stage_imports(name: str) -> None:
    deps = code_deps(STAGES[name])
    missing = sorted(path for path in stage_code(name) if not any(covers(dep, path) for dep in deps))
    assert not missing, f"dvc.yaml stage {name} misses {missing}"


@pytest.mark.parametrize("name", list(STAGES))
def test_dvc_yaml_lists_no_code_a_stage_does_not_import(name: str) -> None:
    """Each listed file is imported; a listed folder only if the stage imports all its modules."""
    code = stage_code(name)
    for dep in code_deps(STAGES[name]):
        path = REPO / dep
        files = [f.relative_to(REPO).as_posix() for f in path.rglob("*.py")] if path.is_dir() else [dep]
        assert files and set(files) <= code, f"dvc.yaml stage {name} lists {dep}, which it does not import"


def test_a_stage_run_without_gansr_installed_says_what_to_do_in_one_line(tmp_path: Path) -> None:
    # -S: no site-packages, so no gansr, as with a system Python outside the environment.
    result = subprocess.run([sys.executable, "-S", str(REPO / "stages" / "run.py"), "pretrain"], cwd=tmp_path,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("gansr pretrain: error: the gansr package is not installed")
    assert "source .venv/bin/activate" in result.stderr


def test_an_unknown_stage_is_one_line_naming_the_stages(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(REPO / "stages" / "run.py"), "pretrian"], cwd=tmp_path,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == ("gansr pretrian: error: no stage named 'pretrian'; the stages are download, "
                                     "pairs, validate, shards, pretrain, train_gan, finetune_real, train_real, "
                                     "train_style, evaluate, export")
