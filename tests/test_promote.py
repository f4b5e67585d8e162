"""`gansr info` and `gansr promote` against a real SQLite MLflow store with tiny registered generators."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import keras
import pytest
from mlflow import MlflowClient

from gansr import tracking
from gansr.cli import main
from gansr.config import TrackingConfig
from gansr.errors import TrackingError

CFG = TrackingConfig(experiment="gansr-promote", registered_model="gansr", champion_margin=0.1)
SCORES = {1: 26.0, 2: 25.5, 3: 26.5}  # version: test Y-PSNR (first, worse, better)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory,
         random_generator: Callable[..., keras.Model]) -> Iterator[Path]:
    """A repository (params.yaml, default store) holding versions 1–3 of `gansr`, entered as the CWD."""
    root = tmp_path_factory.mktemp("repo")
    (root / "params.yaml").write_text("tracking:\n  experiment: gansr-promote\n  champion_margin: 0.1\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.chdir(root)
        for version, score in SCORES.items():
            with tracking.start_run(root, CFG.experiment, run_name=f"v{version}") as run:
                run_id = run.info.run_id
            metrics = {"y_psnr": score, "ssim": 0.8 + version / 100}
            assert tracking.register_generator(random_generator(version), run_id, metrics, CFG, root)[
                "version"] == version
        yield root


@pytest.fixture
def client(root: Path) -> MlflowClient:
    """The registry with champion on v1 and challenger on v3, whatever an earlier test moved."""
    tracking.connect(root)
    client = MlflowClient()
    client.set_registered_model_alias("gansr", "champion", "1")
    client.set_registered_model_alias("gansr", "challenger", "3")
    return client


def gansr(*args: str) -> int:
    """Run the command; its exit code (0 when it returns normally)."""
    try:
        main(list(args))
    except SystemExit as exit_info:
        return int(exit_info.code or 0)
    return 0


def champion(client: MlflowClient) -> int:
    return int(client.get_model_version_by_alias("gansr", "champion").version)


def test_promote_moves_the_champion_to_a_better_challenger(client: MlflowClient, capsys) -> None:
    assert gansr("promote") == 0
    # The margin comes from params.yaml.
    decision = "champion: v3 (y_psnr 26.50 dB) beats v1 (26.00 dB) by more than 0.1"
    assert capsys.readouterr().out.strip() == decision
    assert champion(client) == 3
    assert client.get_model_version("gansr", "3").tags["promotion"] == decision


def test_promote_refuses_a_worse_version_in_one_line(client: MlflowClient, capsys) -> None:
    assert gansr("promote", "--version", "2") == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "not promoted: v2 (y_psnr 25.50 dB) does not beat champion v1 (26.00 dB)" in err
    assert "--force" in err
    assert champion(client) == 1
    assert client.get_model_version("gansr", "2").tags["promotion"].startswith("not promoted: v2")


def test_force_promotes_a_worse_version_and_says_so(client: MlflowClient, capsys) -> None:
    assert gansr("promote", "--version", "2", "--force") == 0
    out = capsys.readouterr().out.strip()
    assert out == ("champion (forced): v2 (y_psnr 25.50 dB) does not beat champion v1 (26.00 dB) "
                   "by more than 0.1")
    assert champion(client) == 2


def test_a_gain_within_the_margin_is_refused(client: MlflowClient, root: Path) -> None:
    wide = dataclasses.replace(CFG, champion_margin=1.0)
    with pytest.raises(TrackingError, match=re.escape("beat champion v1 (26.00 dB) by more than 1")):
        tracking.promote(root, wide, alias="challenger")
    assert champion(client) == 1


def test_promoting_the_champion_changes_nothing(client: MlflowClient, capsys) -> None:
    assert gansr("promote", "--version", "1") == 0
    assert capsys.readouterr().out.strip() == "v1 is already champion"


def test_an_unknown_version_alias_or_model_is_one_line_exit_1(client: MlflowClient, capsys) -> None:
    for args in (["--version", "9"], ["--alias", "nope"], ["--name", "nope"]):
        assert gansr("promote", *args) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("gansr promote: error: cannot promote")
    assert champion(client) == 1


def test_promote_usage_errors_exit_2(capsys) -> None:
    assert gansr("promote", "--version", "2", "--alias", "challenger") == 2
    assert gansr("promote", "--version", "0") == 2
    assert "not allowed with" in capsys.readouterr().err


def test_info_lists_versions_newest_first_as_an_aligned_table(client: MlflowClient, capsys) -> None:
    assert gansr("info") == 0
    title, header, *rows = capsys.readouterr().out.splitlines()
    assert title == f"gansr in {tracking.tracking_uri(Path.cwd())}"
    assert header.split() == ["version", "aliases", "run", "id", "y_psnr", "ssim", "created"]
    assert [row.split()[:2] for row in rows] == [["3", "challenger"], ["2", "-"], ["1", "champion"]]
    assert rows[0].split()[3:5] == ["26.50", "0.8300"]
    # Aligned: every row's score starts under its header.
    assert {row.index(f"{SCORES[int(row.split()[0])]:.2f}") for row in rows} == {header.index("y_psnr")}
    assert re.fullmatch(r".* \d{4}-\d\d-\d\d \d\d:\d\d", rows[0])


def test_info_uses_the_tracking_uri_from_the_environment(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)  # no params.yaml, no mlflow.db here
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root}/mlflow.db")
    assert gansr("info", "--name", "gansr") == 0
    assert len(capsys.readouterr().out.splitlines()) == 2 + len(SCORES)


def test_info_for_an_unknown_model_says_so(root: Path, capsys) -> None:
    assert gansr("info", "--name", "nope") == 1
    assert "no registered model 'nope'" in capsys.readouterr().err
