"""Every path of the repository from one place: the root, the stages' folders, the file names."""

from __future__ import annotations

from pathlib import Path

import pytest

from gansr import layout
from gansr.errors import ConfigError
from gansr.layout import EXPORTED_VARIANTS, GENERATOR_FILE, Layout, project_root


def test_the_project_is_the_nearest_folder_with_params_or_dvc_yaml(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("scale: 4\n")
    nested = tmp_path / "stages" / "deeper"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert project_root() == tmp_path.resolve()
    (nested / "dvc.yaml").write_text("stages: {}\n")
    assert project_root() == nested.resolve()
    assert project_root(tmp_path) == tmp_path.resolve()  # --root wins


def test_outside_any_project_it_is_the_one_gansr_was_installed_from(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    installed, outside = tmp_path / "checkout", tmp_path / "photos"
    installed.mkdir()
    outside.mkdir()
    (installed / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.chdir(outside)
    monkeypatch.setattr(layout, "INSTALLED_FROM", installed)
    assert project_root() == installed
    monkeypatch.setattr(layout, "INSTALLED_FROM", outside)  # installed from a wheel: no project there
    with pytest.raises(ConfigError, match=f"at or above {outside.resolve()}.*pass --root"):
        project_root()
    with pytest.raises(ConfigError, match=f"--root {outside}: no params.yaml or dvc.yaml there"):
        project_root(outside)


def test_the_installed_checkout_is_this_one() -> None:
    assert layout.INSTALLED_FROM == Path(__file__).resolve().parents[1]


def test_each_variant_has_one_generator_path(tmp_path: Path) -> None:
    layout = Layout.at(tmp_path)
    assert [layout.generator(v) for v in EXPORTED_VARIANTS] == [
        tmp_path / "models" / v / GENERATOR_FILE for v in EXPORTED_VARIANTS]
    assert layout.exported_generator == tmp_path / "models" / "export" / GENERATOR_FILE
    with pytest.raises(ValueError, match="no variant named 'export'"):
        layout.generator("export")
