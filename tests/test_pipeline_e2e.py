"""The real `dvc repro` of the whole pipeline on a copy of the repository, at tiny sizes.

One module-scoped run feeds every assertion: outputs on disk, the metrics
file, the MLflow runs, the registered version and its aliases, a no-op
second repro, and the `gansr` CLI on the exported and registered generator.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient
from PIL import Image
from repo_helpers import TINY, git, make_repo, run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # the first test waits for the whole repro


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_repo(tmp_path_factory.mktemp("e2e") / "gansr repo", TINY)  # a space, on purpose
    result = run(root, "dvc", "repro")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return root


def test_every_stage_wrote_its_outputs(repo: Path) -> None:
    for path in ("data/raw/sources.csv", "data/pairs/manifest.parquet", "reports/validation/index.html",
                 "metrics/validation.json", "models/psnr/generator.keras", "models/gan/generator.keras",
                 "models/real_psnr/generator.keras", "models/real/generator.keras",
                 "models/style/generator.keras", "metrics/style.json", "plots/styles.png",
                 "metrics/real.json", "plots/real.png",
                 "metrics/eval.json", "metrics/per_image.csv", "plots/samples.png",
                 "models/export/generator.keras", "models/registry.json", "dvc.lock"):
        assert (repo / path).is_file(), path
    for variant in ("psnr", "gan", "real", "style"):
        for name in ("generator.keras", "saved_model/saved_model.pb", "generator_fp16.tflite"):
            assert (repo / "models" / "export" / variant / name).is_file(), f"{variant}/{name}"
    # Checkpoints are removed once a phase's outputs are safely in place.
    assert not any((repo / "models" / "checkpoints").glob("*/checkpoint"))


def test_metrics_compare_each_generator_with_bicubic(repo: Path) -> None:
    metrics = json.loads((repo / "metrics" / "eval.json").read_text())
    assert metrics["test_images"] >= 1
    for method in ("bicubic", "psnr", "gan", "real"):
        assert 10 < metrics[method]["y_psnr"] < 60
        assert 0 < metrics[method]["ssim"] <= 1
    for method in ("psnr", "gan"):
        assert metrics[method]["gain_db"] == pytest.approx(
            metrics[method]["y_psnr"] - metrics["bicubic"]["y_psnr"], abs=1e-3)
        assert metrics[method]["gain_db"] > 0, method  # even this short training beats bicubic on unseen photos
    speed = json.loads((repo / "metrics" / "speed.json").read_text())["megapixels_per_s"]
    assert all(speed[method] > 0 for method in ("psnr", "gan"))
    shown = run(repo, "dvc", "metrics", "show")
    assert "eval.json" in shown.stdout and "gan.y_psnr" in shown.stdout


def test_style_scores_compare_styled_with_unstyled_and_controls(repo: Path) -> None:
    scores = json.loads((repo / "metrics" / "style.json").read_text())
    assert set(scores["styles"]) == {"gravel", "brick", "colorwheel"}
    for entry in scores["styles"].values():
        assert entry["distance_unstyled"] > 0 and 0 <= entry["towards_own"] <= 1
    # Even four tiny steps move each style towards its own statistics, which training never sees.
    assert scores["mean_moved"] > 0
    controls = scores["controls"]
    # The tiled blend moves every style's statistics, but its textures lie over the photo: they do not count.
    assert controls["tiled_blend"]["statistics_rate"] == 1.0 > controls["tiled_blend"]["own_style_rate"]
    assert controls["unstyled"]["own_style_rate"] == 0.0 and controls["unstyled"]["mean_moved"] == 0
    # Every style is drawn from the photo: it moves with it and differs from photo to photo.
    assert all(entry["shift_16_along_min"] > 0.8 and entry["fixed_pattern"] < 0.1
               for entry in scores["follow"].values())
    assert set(scores["training_loss_reduction"]) == {"gravel", "brick", "colorwheel"}


def test_mlflow_runs_and_registry(repo: Path) -> None:
    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    registration = json.loads((repo / "models" / "registry.json").read_text())
    version = client.get_model_version_by_alias("gansr", "champion")
    assert int(version.version) == registration["version"] == 1
    assert sorted(client.get_model_version("gansr", version.version).aliases) == ["challenger", "champion"]
    run_ = client.get_run(version.run_id)
    assert run_.data.params["train.gan_steps"] == "6"
    assert "gan/d_loss" in run_.data.metrics and "test/y_psnr" in run_.data.metrics
    assert len(run_.data.tags["git.commit"]) == 40
    history = client.get_metric_history(version.run_id, "gan/pixel")
    assert [m.step for m in history] == [4, 6]
    artifacts = [a.path for a in client.list_artifacts(version.run_id, "evaluation")]
    assert "evaluation/samples.png" in artifacts
    # Each training run names the data it trained on by DVC's hash of the validated manifest.
    validated = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["validate"]["outs"]
    digest = next(out["md5"] for out in validated if out["path"] == "data/validated")
    for run_name in ("psnr", "gan", "real_psnr", "real", "style"):
        (found,) = client.search_runs([run_.info.experiment_id], f"attributes.run_name = '{run_name}'")
        (data,) = found.inputs.dataset_inputs
        assert (data.dataset.name, data.dataset.digest) == ("data/validated", digest), run_name
    assert client.get_experiment(run_.info.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    # One registered model per variant, each its own champion, all listed in registry.json.
    assert {v["name"] for v in registration["variants"].values()} == {"gansr", "gansr-psnr", "gansr-real",
                                                                      "gansr-style"}
    for variant, entry in registration["variants"].items():
        assert int(client.get_model_version_by_alias(entry["name"], "champion").version) == 1, variant
        assert entry["max_error"]["tflite"] <= 2 / 255
    style = client.get_model_version("gansr-style", "1")
    assert "own_style_rate" in style.tags


def test_second_repro_is_a_quick_no_op(repo: Path) -> None:
    started = time.monotonic()
    result = run(repo, "dvc", "repro")
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
    assert time.monotonic() - started < 60


def test_a_gan_loss_weight_reruns_only_the_adversarial_stages_and_what_follows(repo: Path) -> None:
    params_file = repo / "params.yaml"
    original = params_file.read_text()
    params = yaml.safe_load(original)
    params["loss"]["adversarial_weight"] *= 2
    try:
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))
        status = run(repo, "dvc", "status", "--json")
        # The two adversarial stages declare it.
        assert set(json.loads(status.stdout)) == {"train_gan", "train_real"}, status.stdout
        # Nothing before them reruns; the stages after them rerun because their outputs then change.
        dry = run(repo, "dvc", "repro", "--dry")
        assert set(re.findall(r"Running stage '(\w+)'", dry.stdout)) == {"train_gan", "train_real"}, dry.stdout
    finally:
        params_file.write_text(original)
    assert json.loads(run(repo, "dvc", "status", "--json").stdout) == {}


def test_editing_the_style_branch_or_its_losses_reruns_only_train_style_and_what_follows(repo: Path) -> None:
    for module in ("src/gansr/style/network.py", "src/gansr/style/losses.py"):
        path = repo / module
        original = path.read_text()
        try:
            path.write_text(original + "# an edit\n")
            status = set(json.loads(run(repo, "dvc", "status", "--json").stdout))
            assert "train_style" in status and status <= {"train_style", "evaluate"}, (module, status)
            ran = re.findall(r"Running stage '(\w+)'", run(repo, "dvc", "repro", "--dry").stdout)
            assert ran[0] == "train_style" and set(ran) <= {"train_style", "evaluate", "export"}, (module, ran)
        finally:
            path.write_text(original)
    assert json.loads(run(repo, "dvc", "status", "--json").stdout) == {}


def test_evaluate_rerun_alone_gives_the_same_scores_and_registers_nothing(repo: Path) -> None:
    scores = ("metrics/eval.json", "metrics/style.json", "metrics/per_image.csv")
    before = {name: (repo / name).read_bytes() for name in scores}
    assert run(repo, "dvc", "repro", "--force", "--single-item", "evaluate").returncode == 0
    assert {name: (repo / name).read_bytes() for name in scores} == before
    result = run(repo, "dvc", "repro")
    assert result.returncode == 0 and "Running stage 'export'" not in result.stdout, result.stdout
    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    assert len(client.search_model_versions("name = 'gansr'")) == 1


def test_cli_upscales_with_exported_and_registered_generator(repo: Path) -> None:
    image = np.random.default_rng(0).integers(0, 256, (10, 14, 4), dtype=np.uint8)
    Image.fromarray(image, "RGBA").save(repo / "small.png")
    result = run(repo, "gansr", "upscale", "small.png", "out.png")
    assert result.returncode == 0, result.stderr
    assert "alpha" in result.stderr  # RGBA input is converted with a note
    with Image.open(repo / "out.png") as out:
        assert out.mode == "RGB" and out.size == (56, 40)
    # The champion was registered with its TFLite export: on LiteRT and on TensorFlow, it gives what the
    # exported files give on each.
    for runtime in ("lite", "tf"):
        for name, model in (("exported", []), ("champion", ["--model", "models:/gansr@champion"])):
            result = run(repo, "gansr", "upscale", "small.png", f"{name}-{runtime}.png", "--runtime", runtime, *model)
            assert result.returncode == 0, result.stderr
    pixels = {name: np.asarray(Image.open(repo / f"{name}.png")).astype(int)
              for name in ("out", "exported-lite", "champion-lite", "exported-tf", "champion-tf")}
    assert np.array_equal(pixels["out"], pixels["champion-lite"])
    assert np.array_equal(pixels["exported-lite"], pixels["champion-lite"])
    assert np.array_equal(pixels["exported-tf"], pixels["champion-tf"])
    assert np.abs(pixels["champion-lite"] - pixels["champion-tf"]).max() <= 2  # float16 weights on LiteRT


def test_a_teammate_pulls_data_and_models_from_a_dvc_remote(repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "dvc remote"
    assert run(repo, "dvc", "remote", "add", "--default", "team", str(remote)).returncode == 0
    pushed = run(repo, "dvc", "push")
    assert pushed.returncode == 0, pushed.stderr
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "pipeline results")

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    pulled = run(clone, "dvc", "pull")
    assert pulled.returncode == 0, pulled.stderr
    for path in ("data/validated/manifest.parquet", "models/gan/generator.keras", "models/export/generator.keras"):
        assert (clone / path).read_bytes() == (repo / path).read_bytes(), path
    assert json.loads(run(clone, "dvc", "status", "--json").stdout) == {}  # nothing to rerun
    assert "up to date" in run(clone, "dvc", "repro").stdout
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(clone / "photo.png")
    upscaled = run(clone, "gansr", "upscale", "photo.png", "photo_x4.png")
    assert upscaled.returncode == 0, upscaled.stderr
    assert Image.open(clone / "photo_x4.png").size == (32, 32)


def test_summary_names_run_version_and_ui(repo: Path) -> None:
    result = run(repo, "gansr", "summary")
    assert result.returncode == 0, result.stderr
    assert "version 1" in result.stdout and "champion" in result.stdout
    assert "make ui" in result.stdout and "bicubic" in result.stdout
