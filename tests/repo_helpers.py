"""Throw-away repositories for tests: a copy of the pipeline for real `dvc repro`, or export's inputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import yaml

from gansr import tracking
from gansr.layout import Layout

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COPIED = ("dvc.yaml", "params.yaml", "stages", "src", ".dvc/config", ".dvcignore", ".gitignore")
TINY = {
    "pairs": {"min_hr_size": 32},
    "model": {"channels": 8, "blocks": 1, "disc_channels": 4},
    "train": {"patch_size": 32, "batch_size": 4, "pretrain_steps": 12, "gan_steps": 6,
              "checkpoint_every": 5, "log_every": 4},
    "real": {"pixel_steps": 6, "gan_steps": 4},
    "style": {"steps": 4, "image_size": 128, "patches": 256},  # smaller, quicker
    "evaluate": {"sample_crop": 32},
}


def with_overrides(overrides: dict[str, dict]) -> dict:
    """The repository's params.yaml with some sections' values replaced."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in overrides.items():
        params[section].update(values)
    return params


def make_repo(path: Path, overrides: dict[str, dict]) -> Path:
    """A fresh git + DVC repository holding the pipeline, with ``overrides`` in params.yaml."""
    path.mkdir(parents=True)
    for name in COPIED:
        source = REPO / name
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, target)
    (path / "params.yaml").write_text(yaml.safe_dump(with_overrides(overrides), sort_keys=False))
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "pipeline under test")
    return path


def git(cwd: Path, *args: str) -> None:
    """Run git with a throw-away identity."""
    subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
                   cwd=cwd, check=True)


def pipeline_env() -> dict[str, str]:
    """This environment minus MLflow settings (each repo uses its own store), venv on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    return env


def run(cwd: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in ``cwd`` with the project's virtualenv first on PATH."""
    return subprocess.run(command, cwd=cwd, env=pipeline_env(), capture_output=True, text=True,
                          timeout=900)


def export_inputs(root: Path, generators: dict[str, keras.Model], experiment: str) -> Layout:
    """What the stages before export leave in ``root``: each generator with its run in the current store, and scores."""
    layout = Layout.at(root)
    for name, model in generators.items():
        folder = getattr(layout, name)
        folder.mkdir(parents=True)
        model.save(folder / "generator.keras")
        with tracking.start_run(root, experiment, run_name=name):
            tracking.tag_generator(folder / "generator.keras")
    layout.metrics.mkdir()
    scores = {"y_psnr": 25.0, "ssim": 0.8}
    plain = [name for name in generators if name != "style"]
    (layout.metrics / "eval.json").write_text(json.dumps(dict.fromkeys(plain, scores)))
    # The degraded split: each generator's gain over bicubic per version (real's champion rule).
    gains = {name: {"gain_db": 0.5 * i} for i, name in enumerate(plain)}
    (layout.metrics / "real.json").write_text(json.dumps(
        {"versions": {version: gains for version in ("noise", "jpeg", "blur", "all")}}))
    (layout.metrics / "style.json").write_text(json.dumps(
        {"own_style_rate": 1.0, "mean_moved": 0.5, "min_content_ssim": 0.7}))
    return layout
