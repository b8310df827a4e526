"""The JSON contracts: every ``--json`` prints exactly one object with ``schema_version``,
each command's output validates against its published ``schema/<command>.schema.json``,
and each published schema accepts and rejects a fixed set of hand-written samples
(tests/fixtures/schema_samples), so a schema generated from the same models as the
output cannot pass by construction."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from rigsize.report import SCHEMAS, schema
from rigsize.shells.cli import main

ROOT = Path(__file__).parents[2]
SAMPLES = Path(__file__).parents[1] / "fixtures" / "schema_samples"
COMMANDS = sorted(SCHEMAS)


def published(command: str) -> dict:
    return json.loads((ROOT / "schema" / f"{command}.schema.json").read_text())


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main([*args]) == 0
    out = capsys.readouterr().out
    obj = json.loads(out)          # one JSON document: json.loads rejects trailing text
    assert isinstance(obj, dict) and obj["schema_version"] == 1
    return obj


@pytest.mark.parametrize("command", COMMANDS)
def test_published_schemas_are_current(command: str) -> None:
    """schema/*.schema.json is what the code produces (regenerate: python -m rigsize.report --write schema)."""
    assert published(command) == schema(command)


@pytest.mark.parametrize("args", [
    ("models", "--json"), ("models", "llama", "--json"), ("--json", "models", "zzz-no-match"),
    ("gpus", "--json"), ("gpus", "h100", "--json"), ("formats", "--json"), ("--json", "formats"),
    ("validate", "--source", "training", "--json"),
    ("estimate", "qwen2-72b", "--json"), ("estimate", "llama-3.1-8b", "--task", "lora", "--json"),
    ("launch", "llama-3.1-8b", "--task", "inference", "--engine", "vllm", "--gpu", "H100",
     "--out-dir", "/tmp/rigsize-contract-launch", "--json"),
])
def test_every_json_output_is_one_object_matching_its_schema(capsys: pytest.CaptureFixture[str], args) -> None:
    command = next(a for a in args if not a.startswith("-"))
    obj = run_json(capsys, *args)
    jsonschema.validate(obj, published(command))


def test_list_outputs_carry_their_rows(capsys: pytest.CaptureFixture[str]) -> None:
    names = {r["name"] for r in run_json(capsys, "models", "llama-3", "--json")["models"]}
    assert {"llama-3-8b", "llama-3-70b", "llama-3.1-405b"} <= names
    gpus = run_json(capsys, "gpus", "--json")["gpus"]
    h100 = next(g for g in gpus if g["name"] == "H100-SXM-80GB")
    assert h100["dense_flops"]["bf16"] == pytest.approx(989.4e12, rel=1e-3)   # NVIDIA H100 datasheet, dense
    fmts = {f["name"]: f for f in run_json(capsys, "formats", "--json")["formats"]}
    assert fmts["bf16"]["bits_per_weight"] == 16


# ---- the schemas against hand-written samples ----------------------------------------

def _set(obj: dict, dotted: str, value: object) -> None:
    *path, last = dotted.split(".")
    for key in path:
        obj = obj[key]
    if value == "__delete__":
        del obj[last]
    else:
        obj[last] = value


def _sample(path: Path) -> object:
    raw = json.loads(path.read_text())
    if "_patch" in raw:        # a hand-made change to the command's valid sample
        command = path.name.split(".")[0]
        base = json.loads(next(SAMPLES.glob(f"{command}.valid-*.json")).read_text())
        obj = copy.deepcopy(base)
        for dotted, value in raw["_patch"].items():
            _set(obj, dotted, value)
        return obj
    if "_replace_with" in raw:
        return raw["_replace_with"]
    return {k: v for k, v in raw.items() if k != "_why"}


VALID = sorted(SAMPLES.glob("*.valid-*.json"))
INVALID = sorted(SAMPLES.glob("*.invalid-*.json"))


def test_every_schema_has_valid_and_invalid_samples() -> None:
    for command in COMMANDS:
        assert any(p.name.startswith(f"{command}.valid-") for p in VALID), command
        assert any(p.name.startswith(f"{command}.invalid-") for p in INVALID), command


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_schema_accepts_hand_written_sample(path: Path) -> None:
    jsonschema.validate(_sample(path), published(path.name.split(".")[0]))


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_schema_rejects_hand_written_sample(path: Path) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_sample(path), published(path.name.split(".")[0]))
