"""params.yaml parsing: defaults, typing, and one-line errors naming the key."""

from pathlib import Path

import pytest
import yaml

from gansr.config import Params, load_params, parse_params
from gansr.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_repository_params_are_valid() -> None:
    params = load_params(REPO / "params.yaml")
    assert params.scale == 4
    assert params.train.patch_size % params.scale == 0


def test_the_defaults_are_the_shipped_params() -> None:
    # One source for every number: a key left out of a params.yaml means what the shipped one says.
    assert Params() == load_params(REPO / "params.yaml")


def test_every_key_in_params_yaml_is_known() -> None:
    # parse_params rejects unknown keys, so this also guards against typos.
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    assert isinstance(parse_params(raw), Params)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"train": {"pretrain_steps": -5}}, "train.pretrain_steps must be > 0, got -5"),
        ({"scale": 5}, "scale must be one of (2, 3, 4), got 5"),
        ({"train": {"precision": "fp8"}}, "train.precision must be one of"),
        ({"train": {"batch_size": "16"}}, "train.batch_size must be a int"),
        ({"loss": {"perceptual_weight": -1}}, "loss.perceptual_weight must be >= 0"),
        ({"train": {"patch_sise": 96}}, "unknown key train.patch_sise"),
        ({"real": {"noise_prob": 1.5}}, "real.noise_prob must be in .0, 1., got 1.5"),
        ({"real": {"pixel_steps": 0}}, "real.pixel_steps must be > 0, got 0"),
        ({"scale": 3, "train": {"patch_size": 96}, "pairs": {"min_hr_size": 96}}, None),
        ({"scale": 4, "train": {"patch_size": 90}}, "train.patch_size must be a multiple of scale"),
        ({"pairs": {"val_fraction": 0.5, "test_fraction": 0.5}}, "must be < 1"),
        ({"data": {"source": "folder"}}, "data.folder must be set"),
        ({"train": 3}, "train must be a mapping"),
    ],
)
def test_bad_values_fail_naming_the_key(raw: dict, message: str | None) -> None:
    if message is None:
        parse_params(raw)
        return
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_params(raw)


def test_unreadable_params_file(tmp_path: Path) -> None:
    bad = tmp_path / "params.yaml"
    bad.write_text("train: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_params(tmp_path / "missing.yaml")


def test_the_real_generator_has_its_own_champion_rule() -> None:
    cfg = parse_params({"tracking": {"registered_model": "sr", "champion_metric": "ssim"}}).tracking
    assert cfg.registered("sr-real").champion_metric == "degraded_gain_db"
    assert cfg.registered("sr-real").registered_model == "sr-real"
    assert cfg.registered("sr-psnr").champion_metric == cfg.registered("sr").champion_metric == "ssim"
