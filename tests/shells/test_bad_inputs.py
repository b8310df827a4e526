"""Bad input gets one clear line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from rigsize.shells.cli import main

HERE = Path(__file__).parents[1]
CASES = tomllib.loads((HERE / "bad_inputs.toml").read_text())["case"]


def _args(case: dict) -> list[str]:
    return [a.replace("F/", str(HERE / "fixtures" / "bad") + "/") for a in case["args"]]


@pytest.mark.parametrize("case", CASES, ids=[" ".join(c["args"]) or "(none)" for c in CASES])
def test_bad_input_is_one_line_exit_2(case: dict, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(_args(case))
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert case["expect"] in lines[0], lines[0]
    assert "Traceback" not in err + out
    assert "internal error" not in lines[0]


def test_bad_input_in_chinese(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--lang", "zh", "estimate", "qwen2-27b"])
    err = capsys.readouterr().err
    assert code == 2 and "未知模型" in err and "qwen2-7b" in err


def test_real_process_exit_code_and_single_line() -> None:
    """The console entry point, not just main(): bad option value types too."""
    proc = subprocess.run([sys.executable, "-m", "rigsize", "estimate", "qwen2-72b", "--weights"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr
