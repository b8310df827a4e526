"""launch --plan-file checks the plan it reads, and --out-dir the folder it writes: a hand-edited
or foreign file, or a folder that cannot be written, is one line on stderr and exit 2."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from rigsize.planning.search import search
from rigsize.shells.cli import main


@pytest.fixture(scope="module")
def plan() -> dict:
    return search("qwen2.5-0.5b", task="inference", gpu="L4", max_gpus=1, top=1, engine="vllm")


def _edited(plan: dict, edit: str, value: object) -> dict:
    out = copy.deepcopy(plan)
    where = out if edit == "schema_version" else out["recommendations"][0]
    *path, last = edit.split(".")
    for key in path:
        where = where[key]
    if value is KeyError:
        del where[last]
    else:
        where[last] = value
    return out


@pytest.mark.parametrize(("edit", "value", "expect"), [
    ("parallel.tp", 0, "parallel.tp = 0 must be a whole number >= 1"),
    ("parallel.tp", -4, "parallel.tp = -4 must be a whole number >= 1"),
    ("parallel.tp", "eight", 'parallel.tp = "eight" must be a whole number >= 1'),
    ("parallel.pp", 1.5, "parallel.pp = 1.5 must be a whole number >= 1"),
    ("schema_version", 99, "schema_version 99; this rigsize reads 1"),
    ("hardware.gpu", "BOGUS", 'hardware.gpu "BOGUS" is not in the GPU or CPU catalog'),
    ("choices.gpu", "H100-SXM-80GB", "choices.gpu \"H100-SXM-80GB\" and hardware.gpu \"L4\" differ"),
    ("parallel", KeyError, "the recommendation lacks parallel"),
    ("memory.per_gpu", KeyError, "a recommendation field is missing or malformed"),
])
def test_a_bad_plan_file_is_one_line(plan: dict, edit: str, value: object, expect: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(_edited(plan, edit, value)))
    code = main(["launch", "--plan-file", str(path), "--out-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and expect in err, err
    assert not (tmp_path / "out").exists()


def test_the_plan_as_written_launches(plan: dict, tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    assert main(["launch", "--plan-file", str(path), "--out-dir", str(tmp_path / "out")]) == 0


@pytest.mark.parametrize(("where", "expect"), [
    ("file", "exists and is not a folder"),
    ("file/sub", "is not a folder you can write to"),
])
def test_an_out_dir_that_cannot_be_a_folder(plan: dict, where: str, expect: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("{}")
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    code = main(["launch", "--plan-file", str(path), "--out-dir", str(tmp_path / where)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and expect in err, err
