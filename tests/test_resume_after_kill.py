"""`kill -9` during training, then `dvc repro`: training resumes from its last checkpoint."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from repo_helpers import TINY, make_repo, pipeline_env, run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

CHECKPOINT_EVERY = 10
SLOW_ENOUGH = {**TINY, "train": {**TINY["train"], "pretrain_steps": 1500,
                                 "checkpoint_every": CHECKPOINT_EVERY}}


def wait_for_checkpoint(checkpoints: Path, process: subprocess.Popen, timeout: float) -> int:
    """Block until a pretraining checkpoint past the first one exists; return its step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "training ended before it could be killed"
        steps = [int(m.group(1)) for index in checkpoints.glob("psnr-*/ckpt-*.index")
                 if (m := re.match(r"ckpt-(\d+)\.index", index.name))]
        if steps and max(steps) >= 2 * CHECKPOINT_EVERY:
            return max(steps)
        time.sleep(0.5)
    raise AssertionError("no checkpoint appeared in time")


def test_sigkill_mid_training_then_repro_resumes(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", SLOW_ENOUGH)
    assert run(repo, "dvc", "repro", "validate").returncode == 0
    process = subprocess.Popen(["dvc", "repro", "pretrain"], cwd=repo, env=pipeline_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        saved = wait_for_checkpoint(repo / "models" / "checkpoints", process, timeout=300)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # dvc and the stage it runs, at once
        process.wait()
    assert not (repo / "models" / "psnr").exists()  # no half-written output

    resumed = run(repo, "dvc", "repro", "pretrain", "-s")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    match = re.search(r"resumed pretrain from step (\d+)", resumed.stdout + resumed.stderr)
    assert match, (resumed.stdout + resumed.stderr)[-3000:]
    assert int(match.group(1)) >= saved
    assert (repo / "models" / "psnr" / "generator.keras").is_file()
