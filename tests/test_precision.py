"""train.precision: what 'auto' picks on this machine, and what each policy changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keras
import pytest
import tensorflow as tf

from gansr.models.generator import build_generator
from gansr.training import precision
from gansr.training.precision import (
    apply_precision,
    cpu_has_native_bf16,
    float32_policy,
    make_optimizer,
    resolve_precision,
)

CPUINFO_BF16 = """processor\t: 0
vendor_id\t: GenuineIntel
flags\t\t: fpu vme sse sse2 avx2 avx512f avx512_vnni avx512_bf16 amx_tile
"""
CPUINFO_AMX = "flags\t\t: fpu sse2 avx2 amx_bf16 amx_tile\n"
CPUINFO_PLAIN = "flags\t\t: fpu vme sse sse2 avx2 avx512f avx512_vnni\n"
# A flag that merely contains the name is not the flag.
CPUINFO_LOOKALIKE = "flags\t\t: fpu avx512_bf16x no_avx512_bf16\n"


@pytest.fixture(autouse=True)
def float32_afterwards() -> Iterator[None]:
    """Every test leaves the global dtype policy as the rest of the suite expects it."""
    yield
    keras.mixed_precision.set_global_policy("float32")


def _cpuinfo(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    return path


def _machine(monkeypatch: pytest.MonkeyPatch, cpuinfo: Path, gpus: list[str] | None = None) -> None:
    """Pretend to be a machine with this /proc/cpuinfo and these GPUs."""
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: cpu_has_native_bf16(cpuinfo))
    real = tf.config.list_physical_devices
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: list(gpus or []) if kind == "GPU" else real(kind))


@pytest.mark.parametrize(("text", "expected"), [
    (CPUINFO_BF16, True), (CPUINFO_AMX, True), (CPUINFO_PLAIN, False), (CPUINFO_LOOKALIKE, False), ("", False),
])
def test_cpu_bf16_flags_are_read_from_cpuinfo(tmp_path: Path, text: str, expected: bool) -> None:
    assert cpu_has_native_bf16(_cpuinfo(tmp_path, text)) is expected


def test_unreadable_cpuinfo_means_no_bf16(tmp_path: Path) -> None:
    assert cpu_has_native_bf16(tmp_path / "missing") is False
    assert cpu_has_native_bf16(tmp_path) is False  # a directory


def test_auto_picks_bfloat16_on_a_cpu_with_native_bf16(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch, _cpuinfo(tmp_path, CPUINFO_BF16))
    assert resolve_precision("auto") == "mixed_bfloat16"


def test_auto_stays_float32_on_a_cpu_without_bf16(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch, _cpuinfo(tmp_path, CPUINFO_PLAIN))
    assert resolve_precision("auto") == "float32"


def test_auto_picks_float16_on_a_gpu_whatever_the_cpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch, _cpuinfo(tmp_path, CPUINFO_BF16), gpus=["/physical_device:GPU:0"])
    assert resolve_precision("auto") == "mixed_float16"


@pytest.mark.parametrize("setting", ["float32", "mixed_float16", "mixed_bfloat16"])
def test_explicit_settings_pass_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str) -> None:
    _machine(monkeypatch, _cpuinfo(tmp_path, CPUINFO_BF16), gpus=["/physical_device:GPU:0"])
    assert resolve_precision(setting) == setting


def test_apply_precision_sets_the_policy_new_models_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _machine(monkeypatch, _cpuinfo(tmp_path, CPUINFO_BF16))
    assert apply_precision("auto") == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    generator = build_generator(4, channels=4, blocks=1)
    assert generator.get_layer("head").compute_dtype == "bfloat16"
    assert generator.get_layer("head").kernel.dtype == "float32"  # variables stay float32
    assert generator.output.dtype == "float32"  # the output layers are pinned to float32


def test_float16_wraps_adam_in_a_loss_scale_optimizer() -> None:
    optimizer = make_optimizer(1e-3, "mixed_float16", beta_1=0.5)
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(optimizer.inner_optimizer, keras.optimizers.Adam)
    assert float(optimizer.inner_optimizer.beta_1) == 0.5


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_other_policies_get_plain_adam(policy: str) -> None:
    optimizer = make_optimizer(2e-4, policy, beta_2=0.99)
    assert type(optimizer) is keras.optimizers.Adam
    assert float(optimizer.beta_2) == 0.99
    assert float(optimizer.learning_rate) == pytest.approx(2e-4)


def test_float32_policy_builds_float32_models_then_restores() -> None:
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    with float32_policy():
        assert keras.mixed_precision.global_policy().name == "float32"
        ema = build_generator(4, channels=4, blocks=1)
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert all(layer.compute_dtype == "float32" for layer in ema.layers if layer.weights)


def test_float32_policy_restores_even_when_the_block_raises() -> None:
    keras.mixed_precision.set_global_policy("mixed_float16")
    with pytest.raises(RuntimeError, match="boom"), float32_policy():
        raise RuntimeError("boom")
    assert keras.mixed_precision.global_policy().name == "mixed_float16"
