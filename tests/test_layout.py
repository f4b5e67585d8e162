"""Every path of the repository from one place: the root, the stages' folders, the file names."""

from __future__ import annotations

from pathlib import Path

import pytest

from gansr.layout import EXPORTED_VARIANTS, GENERATOR_FILE, Layout, find_root
from gansr.upscale import DEFAULT_MODEL, VARIANT_MODELS


def test_the_root_is_the_nearest_folder_with_params_or_dvc_yaml(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("scale: 4\n")
    nested = tmp_path / "stages" / "deeper"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert find_root() == tmp_path.resolve()
    (nested / "dvc.yaml").write_text("stages: {}\n")
    assert find_root() == nested.resolve()
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    outside.mkdir()
    assert find_root(outside) == outside.resolve()  # no marker anywhere above: the folder itself


def test_each_variant_has_one_generator_path_and_the_cli_uses_them(tmp_path: Path) -> None:
    layout = Layout.at(tmp_path)
    assert [layout.generator(v) for v in EXPORTED_VARIANTS] == [
        tmp_path / "models" / v / GENERATOR_FILE for v in EXPORTED_VARIANTS]
    assert layout.exported_generator == tmp_path / "models" / "export" / GENERATOR_FILE
    with pytest.raises(ValueError, match="no variant named 'export'"):
        layout.generator("export")
    here = Layout.at(Path())
    assert DEFAULT_MODEL == here.exported_generator
    assert VARIANT_MODELS == {v: here.generator(v) for v in EXPORTED_VARIANTS}
