"""Two pipelines registering the same model at the same moment: in one SQLite store, and through a server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from gansr import tracking
from gansr.config import TrackingConfig
from gansr.tracking import registry

pytestmark = pytest.mark.slow

CFG = TrackingConfig(experiment="gansr-race", registered_model="gansr-race")
SCORES = (25.0, 26.0)  # y_psnr of the two racing pipelines; the second must end up champion
ROUNDS = 3  # fresh stores, so one lucky interleaving cannot hide the race
RACE_TIMEOUT_S = 300  # all rounds; about 50 s on an idle 2-core machine

# One racer: for each round, meet the other racer at a file barrier, then register.
# A subprocess (not a fork) so each racer imports gansr, and with it the custom layers, itself.
RACER = """
import json, os, sys, time
from pathlib import Path
from gansr import tracking
from gansr.config import TrackingConfig
from gansr.models.generator import build_generator
from gansr.tracking import registry

base, me, other, score = Path(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
read_champion = registry._champion
def slow_champion(*args):  # a slow store: widens the read-to-set window a race needs
    found = read_champion(*args)
    time.sleep(0.5)
    return found
registry._champion = slow_champion
model = build_generator(2, 4, 1)
for folder in sorted(base.glob("round*")):
    store = json.loads((folder / "store.json").read_text())
    os.environ["MLFLOW_TRACKING_URI"] = store["uri"]
    cfg = TrackingConfig(experiment=store["experiment"], registered_model=store["model"])
    (folder / f"ready-{me}").touch()
    while not (folder / f"ready-{other}").exists():
        time.sleep(0.001)
    run_id = (folder / f"run-{me}").read_text()
    result = tracking.register_generator(model, run_id, {"y_psnr": score}, cfg, folder)
    (folder / f"result-{me}.json").write_text(json.dumps({"version": result["version"]}))
"""

@pytest.fixture(params=["sqlite", "server"])
def rounds(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """ROUNDS rounds, each a fresh registered model (in a fresh SQLite store, or on the one server).

    Each round's folder holds store.json (where to register) and one run per racer.
    """
    folders = []
    for index in range(ROUNDS):
        folder = tmp_path / f"round{index}"
        folder.mkdir()
        if request.param == "sqlite":
            store = {"uri": f"sqlite:///{folder / 'mlflow.db'}", "model": CFG.registered_model}
        else:
            store = {"uri": request.getfixturevalue("mlflow_server"), "model": f"race-{tmp_path.name}-{index}"}
        (folder / "store.json").write_text(json.dumps({**store, "experiment": CFG.experiment}))
        monkeypatch.setenv("MLFLOW_TRACKING_URI", store["uri"])
        for racer in ("a", "b"):
            with tracking.start_run(folder, CFG.experiment, run_name=racer) as run:
                (folder / f"run-{racer}").write_text(run.info.run_id)
        folders.append(folder)
    return folders


def test_racing_registrations_leave_the_better_version_champion(tmp_path: Path, rounds: list[Path]) -> None:
    racers = [
        subprocess.Popen([sys.executable, "-c", RACER, str(tmp_path), me, other, str(score)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for me, other, score in (("a", "b", SCORES[0]), ("b", "a", SCORES[1]))
    ]
    try:
        outputs = [racer.communicate(timeout=RACE_TIMEOUT_S) for racer in racers]
    except subprocess.TimeoutExpired:
        for racer in racers:
            racer.kill()
        stuck = "\n".join(f"racer {name}: {racer.communicate()[1][-1500:]}" for name, racer in zip("ab", racers))
        pytest.fail(f"the racers did not finish {ROUNDS} rounds in {RACE_TIMEOUT_S} s; their stderr:\n{stuck}")
    for racer, (_, err) in zip(racers, outputs):
        assert racer.returncode == 0, err[-2000:]
        assert "database is locked" not in err
    for folder in rounds:
        store = json.loads((folder / "store.json").read_text())
        client = MlflowClient(store["uri"])
        better = json.loads((folder / "result-b.json").read_text())["version"]
        worse = json.loads((folder / "result-a.json").read_text())["version"]
        assert {better, worse} == {1, 2}
        aliases = client.get_registered_model(store["model"]).aliases
        assert int(aliases[tracking.CHAMPION]) == better, f"{folder.name}: {aliases}"
        assert int(aliases[tracking.CHALLENGER]) in {better, worse}


def test_a_lost_race_on_a_server_is_repaired_after_setting(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, random_generator) -> None:
    """Without a lock, a worse claimant that set champion last is overruled by the better one."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    versions = {}
    for score in SCORES[::-1]:  # better first, so the worse one would be refused if decided in order
        with tracking.start_run(tmp_path, CFG.experiment, run_name=str(score)) as run:
            run_id = run.info.run_id
        versions[score] = tracking.register_generator(random_generator(), run_id, {"y_psnr": score},
                                                      CFG, tmp_path)["version"]
    client = MlflowClient()
    worse, better = (versions[score] for score in SCORES)
    # As if both had read "no champion": the worse one claims and moves the alias last.
    client.set_model_version_tag(CFG.registered_model, str(worse), tracking.PROMOTION_TAG, "champion: raced")
    client.set_registered_model_alias(CFG.registered_model, tracking.CHAMPION, str(worse))
    registry._converge_champion(client, CFG.registered_model, CFG.champion_metric, since=None)
    assert int(client.get_model_version_by_alias(CFG.registered_model, tracking.CHAMPION).version) == better
