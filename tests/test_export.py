"""gansr.export and the export stage: tiny real generators, every format reloaded, a real SQLite registry."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from mlflow import MlflowClient
from repo_helpers import export_inputs

from gansr import export
from gansr.config import EXPORT_FORMATS, parse_params
from gansr.errors import ConfigError, GansrError
from gansr.layout import EXPORT_FILES, Layout
from gansr.models.archive import save_generator
from gansr.stages import export as export_stage

pytestmark = pytest.mark.slow

STYLES = ("gravel", "brick")


@pytest.fixture(scope="module")
def generators(random_generator: Callable[..., keras.Model]) -> dict[str, keras.Model]:
    """The four variants at tiny size: psnr, gan and real plain, style with two styles."""
    return {"psnr": random_generator(1), "gan": random_generator(2), "real": random_generator(4),
            "style": random_generator(3, styles=STYLES)}


@pytest.fixture(scope="module")
def exported(generators: dict[str, keras.Model], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The plain and the styled generator in every format (TFLite conversion is the slow part)."""
    folder = tmp_path_factory.mktemp("export")
    errors = {name: export.export_generator(generators[name], folder / name, EXPORT_FORMATS)
              for name in ("gan", "style")}
    return {"folder": folder, "errors": errors}


def test_every_format_is_written_and_matches_the_generator(exported: dict[str, Any]) -> None:
    for name in ("gan", "style"):
        assert (exported["folder"] / name / "generator.keras").is_file()
        assert (exported["folder"] / name / "saved_model" / "saved_model.pb").is_file()
        assert (exported["folder"] / name / "generator_fp16.tflite").is_file()
        errors = exported["errors"][name]
        assert set(errors) == set(EXPORT_FORMATS)
        assert errors["keras"] <= 1e-5 and errors["saved_model"] <= export.TOLERANCE["saved_model"]
        assert 0 < errors["tflite"] <= 2 / 255  # float16 weights: close, not exact


@pytest.mark.parametrize("fmt", ["saved_model", "tflite"])
def test_serving_formats_take_any_image_size_and_style(
    exported: dict[str, Any], generators: dict[str, keras.Model], fmt: str
) -> None:
    images = np.random.default_rng(7).random((3, 5, 9, 3), dtype=np.float32)
    inputs = [images, np.array([2, 0, 1], dtype=np.int32)]
    path = exported["folder"] / "style" / EXPORT_FILES[fmt]
    got = export.RUNNERS[fmt](path, inputs)
    assert got.shape == (3, 10, 18, 3)
    np.testing.assert_allclose(got, export.predict(generators["style"], inputs), atol=export.TOLERANCE[fmt])


EXPORT_IN_A_NEW_PROCESS = """
import sys
from pathlib import Path
from gansr.config import EXPORT_FORMATS
from gansr.export import export_generator
from gansr.inference import load_generator
export_generator(load_generator(Path(sys.argv[1])), Path(sys.argv[2]), EXPORT_FORMATS)
"""


def test_the_same_generator_exports_to_the_same_bytes_in_every_process(
    generators: dict[str, keras.Model], tmp_path: Path
) -> None:
    # Each process traces the serving function anew: Keras's own model.export listed the weights
    # in another order each time, and TensorFlow draws a new fingerprint uuid.
    save_generator(generators["style"], tmp_path / "generator.keras")
    for name in ("first", "second"):
        subprocess.run([sys.executable, "-c", EXPORT_IN_A_NEW_PROCESS, str(tmp_path / "generator.keras"),
                        str(tmp_path / name)], check=True)
    files = sorted(path.relative_to(tmp_path / "first") for path in (tmp_path / "first").rglob("*")
                   if path.is_file())
    assert {str(path) for path in files} >= {"generator.keras", "generator_fp16.tflite",
                                             "saved_model/saved_model.pb", "saved_model/fingerprint.pb"}
    for path in files:
        assert (tmp_path / "first" / path).read_bytes() == (tmp_path / "second" / path).read_bytes(), path


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_builtin_ops_bicubic_equals_tf_resize(scale: int) -> None:
    images = np.random.default_rng(scale).random((2, 7, 6, 3), dtype=np.float32)
    expected = tf.image.resize(images, (7 * scale, 6 * scale), method="bicubic").numpy()
    np.testing.assert_allclose(export.ConvBicubicUpsample(scale)(images).numpy(), expected, atol=1e-6)


def test_a_mismatching_reload_fails_naming_the_file(
    generators: dict[str, keras.Model], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other = generators["psnr"]
    monkeypatch.setitem(export.RUNNERS, "keras", lambda path, inputs: export.predict(other, inputs))
    with pytest.raises(GansrError, match=r"gan/generator\.keras: reloaded export differs"):
        export.export_generator(generators["gan"], tmp_path / "gan", ("keras",))


def test_a_damaged_file_fails_naming_it(
    generators: dict[str, keras.Model], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(export.WRITERS, "keras", lambda model, path: path.write_bytes(b"not a zip"))
    with pytest.raises(GansrError, match=r"gan/generator\.keras: the export does not reload"):
        export.export_generator(generators["gan"], tmp_path / "gan", ("keras",))


@pytest.mark.parametrize(("formats", "message"), [
    ([], "export.formats must list at least one of keras, saved_model, tflite"),
    (["keras", "onnx"], "export.formats\\[1\\] must be one of keras, saved_model, tflite, got 'onnx'"),
    ("keras", "export.formats must be a list"),
    (["tflite", "tflite"], "export.formats lists a format twice"),
])
def test_bad_export_formats_are_refused_naming_the_key(formats: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_params({"export": {"formats": formats}})


# --- the export stage over a repository layout with a real SQLite MLflow store ---------------------

PARAMS = parse_params({"tracking": {"experiment": "gansr-test", "registered_model": "sr"},
                       "export": {"formats": ["keras"]}})


@pytest.fixture(scope="module")
def repo(generators: dict[str, keras.Model], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Trained generators with their runs and metrics, as the stages before export leave them."""
    root = tmp_path_factory.mktemp("repo")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        export_stage.run(PARAMS, export_inputs(root, generators, PARAMS.tracking.experiment))
        yield root


def test_export_stage_writes_only_the_chosen_formats(repo: Path) -> None:
    folder = repo / "models" / "export"
    written = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert written == ["gan/generator.keras", "generator.keras", "psnr/generator.keras",
                       "real/generator.keras", "style/generator.keras"]


def test_each_variant_is_its_own_registered_model_with_aliases(repo: Path) -> None:
    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    registry = json.loads((repo / "models" / "registry.json").read_text())
    # The main registration stays at the top level, where `gansr summary` reads it.
    assert registry["name"] == "sr" and registry["version"] == 1 and registry["run_id"]
    assert registry["aliases"] == ["champion", "challenger"] and registry["decision"].startswith("champion")
    assert {v["name"] for v in registry["variants"].values()} == {"sr", "sr-psnr", "sr-real", "sr-style"}
    for registration in registry["variants"].values():
        version = client.get_model_version_by_alias(registration["name"], "champion")
        assert sorted(version.aliases) == ["challenger", "champion"]
        assert version.run_id == registration["run_id"]
    style = client.get_model_version("sr-style", "1")
    assert float(style.tags["own_style_rate"]) == 1.0 and float(style.tags["mean_moved"]) == 0.5
    assert float(style.tags["y_psnr"]) == 25.0
    assert registry["variants"]["style"]["files"] == {"keras": "style/generator.keras"}
    # The real generator is judged on the degraded split: its mean gain there is its champion rule.
    real = client.get_model_version("sr-real", "1")
    assert float(real.tags["degraded_gain_db"]) == float(real.tags["degraded_noise_gain_db"]) == 1.0
    assert "degraded_gain_db" in registry["variants"]["real"]["decision"]


def test_a_failed_check_leaves_the_previous_export_untouched(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, exported = repo / "models" / "registry.json", repo / "models" / "export" / "generator.keras"
    before = registry.read_text(), exported.read_bytes()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setitem(export.RUNNERS, "keras", lambda path, inputs: np.zeros((1, 2, 2, 3), np.float32))
    with pytest.raises(GansrError, match=r"psnr/generator\.keras: reloaded export gives shape"):
        export_stage.run(PARAMS, Layout.at(repo))
    assert (registry.read_text(), exported.read_bytes()) == before
    assert not list((repo / "models").glob(".export.*"))  # no temporary left behind
