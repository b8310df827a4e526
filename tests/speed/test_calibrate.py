"""``rigsize calibrate`` and ``--profile``: a recorded profile (tests/fixtures/
profile-h100-recorded.json, hand-written in the format calibrate writes) and its effect
on estimates, checked against figures computed by hand; the measurement itself runs
only where PyTorch sees a CUDA GPU.

The fixture states an H100-SXM-80GB that reached 692.58 TFLOP/s on an 8192^3 bf16
matmul (0.70 of the 989.4 TFLOP/s dense datasheet peak) and 2.68 TB/s on a device copy
(0.80 of 3.35 TB/s)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rigsize
from rigsize.hardware.gpus import resolve_gpu
from rigsize.shells.cli import main
from rigsize.speed.calibrate import build_profile, load_profile

PROFILE = Path(__file__).parents[1] / "fixtures" / "profile-h100-recorded.json"


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def test_recorded_profile_loads_with_its_stated_values() -> None:
    p = load_profile(PROFILE)
    assert p["catalog_gpu"] == "H100-SXM-80GB"
    assert p["efficiency"]["compute"] == 0.7 and p["efficiency"]["memory"] == 0.8


def test_build_profile_reproduces_the_recorded_fractions() -> None:
    """From the raw measurements alone: 692.58e12 / 989.4e12 = 0.70, 2.68e12 / 3.35e12 = 0.80."""
    raw = json.loads(PROFILE.read_text())
    measured = {k: raw[k] for k in ("matmul", "hbm_bytes_per_second", "device_name", "torch_version", "cuda_version")}
    built = build_profile(resolve_gpu("H100-SXM-80GB"), measured)
    assert built["efficiency"]["compute"] == pytest.approx(0.70, abs=1e-4)
    assert built["efficiency"]["memory"] == pytest.approx(0.80, abs=1e-4)
    assert built["achievable_flops"]["bf16"] == pytest.approx(692.58e12)


def test_profile_sets_decode_speed_by_hand() -> None:
    """Llama-3.1-8B, batch 1, one decode step at ~129 tokens of context: the step streams
    every weight but the embedding table, (8,030,261,248 - 525,336,576) x 2 B =
    15,009,849,344 B, plus 129 x 131,072 B of KV, at 0.80 x 3.35 TB/s = 2.68 TB/s:
    5.6007 ms + 0.0063 ms, plus the engine's fixed per-step overhead."""
    perf = rigsize.estimate("llama-3.1-8b", prompt=128, output=2, profile=str(PROFILE)).performance
    assert perf.efficiency["memory"] == 0.8 and perf.efficiency["compute"] == 0.7
    by_hand = (15_009_849_344 + 129 * 131_072) / 2.68e12 + perf.efficiency["step_overhead_s"]
    assert perf.tpot_seconds == pytest.approx(by_hand, rel=2e-3)
    assert perf.bound.decode == "memory"


def test_profile_sets_training_gemm_efficiency() -> None:
    perf = rigsize.estimate("llama-3.1-8b", task="pretrain", gpus=8, global_batch=64, profile=str(PROFILE)).performance
    assert perf.efficiency["e_max"] == 0.7
    assert "rigsize calibrate" in perf.efficiency_source


def test_bad_profile_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.json"
    path.write_text('{"schema": "something-else"}')
    with pytest.raises(rigsize.HardwareError, match="not a rigsize profile"):
        rigsize.estimate("llama-3.1-8b", profile=str(path))
    assert main(["estimate", "llama-3.1-8b", "--profile", str(path)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.skipif(_has_cuda(), reason="this machine has a CUDA GPU: test_calibrate_on_this_gpu runs instead")
@pytest.mark.parametrize("args", [["calibrate"], ["calibrate", "--json"], ["calibrate", "--lang", "zh"]])
def test_calibrate_without_gpu_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    assert main(args) == 2
    out = capsys.readouterr()
    err = out.err.strip().splitlines()
    assert len(err) == 1 and ("NVIDIA GPU" in err[0]) and not out.out


@pytest.mark.skipif(not _has_cuda(), reason="needs PyTorch with a CUDA GPU")
def test_calibrate_on_this_gpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The real path: measure, write, load back, and use the profile in an estimate.
    The bounds are physical (a GPU cannot beat its datasheet peak by much, nor reach
    nothing); the measured fractions themselves are the machine's."""
    out = tmp_path / "profile.json"
    assert main(["calibrate", "--output", str(out), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["schema_version"] == 1 and answer["output"] == str(out)
    profile = load_profile(out)
    for key in ("compute", "memory"):
        value = profile["efficiency"][key]
        assert value is None or 0.05 < value <= 1.2, (key, value)
    perf = rigsize.estimate("llama-3.1-8b", gpu=profile["catalog_gpu"], profile=str(out)).performance
    assert perf is not None and perf.tpot_seconds > 0
