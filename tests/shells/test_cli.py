"""The CLI and JSON contracts: one JSON object, the published schema, localized text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from rigsize.report import schema
from rigsize.shells.cli import main

ROOT = Path(__file__).parents[2]


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> object:
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_published_schema_is_current() -> None:
    """schema/estimate.schema.json is what the code produces (regenerate: python -m rigsize.report)."""
    assert json.loads((ROOT / "schema" / "estimate.schema.json").read_text()) == schema()


@pytest.mark.parametrize("model", ["qwen2-72b", "deepseek-v3", "72B", "mixtral-8x7b"])
def test_estimate_json_validates_against_schema(capsys: pytest.CaptureFixture[str], model: str) -> None:
    out = run_json(capsys, "estimate", model)
    jsonschema.validate(out, schema())
    assert out["schema_version"] == 1
    m = out["model"]
    assert sum(m["breakdown"].values()) == m["params"]
    for key in ("name", "source", "approximate", "params", "active_params", "stored_params",
                "kv_bytes_per_token", "weight_bytes", "breakdown"):
        assert key in m


def test_qwen2_72b_numbers_by_hand(capsys: pytest.CaptureFixture[str]) -> None:
    """Qwen2-72B config: 80 layers, hidden 8192, 64 heads, 8 KV heads, FFN 29568, vocab 152064, untied."""
    m = run_json(capsys, "estimate", "qwen2-72b")["model"]
    h, L, kv, hd, ffn, vocab = 8192, 80, 8, 128, 29568, 152064
    per_layer = (h * h + h) + 2 * (kv * hd * h + kv * hd) + h * h + 3 * h * ffn + 2 * h
    assert m["params"] == 2 * vocab * h + L * per_layer + h
    assert m["kv_bytes_per_token"] == 2 * L * kv * hd * 2      # K and V, bf16
    assert m["weight_bytes"] == m["params"] * 2


def test_bare_size_prints_its_config(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "estimate", "72B")
    assert out["model"]["approximate"] is True
    assert out["model"]["config"]["num_key_value_heads"] == 8
    assert any("approximate" in w for w in out["warnings"])


def test_assumptions_echo_defaults_and_inputs_echo_options(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "estimate", "qwen2-72b", "--kv-dtype", "fp8", "--weights", "AWQ-INT4")
    assert out["inputs"]["kv_dtype"] == "fp8" and out["model"]["kv_dtype"] == "fp8"
    assert out["model"]["weight_format"] == "awq-int4"
    assert "weights" not in out["assumptions"]
    assert out["model"]["kv_bytes_per_token"] == 2 * 80 * 8 * 128   # one byte per element


def test_models_lists_presets_with_sources(capsys: pytest.CaptureFixture[str]) -> None:
    rows = run_json(capsys, "models", "llama-3")["models"]
    assert {r["name"] for r in rows} >= {"llama-3-8b", "llama-3-70b", "llama-3.1-405b"}
    assert all(r["source"] and r["as_of"] for r in rows)


# every command, with --lang and --json before or after its name (calibrate: no GPU here,
# so one line and exit 2 in either language; on a GPU machine test_calibrate runs it)
EVERY = [("estimate", "qwen2-7b"), ("models", "qwen2"), ("gpus", "h100"), ("formats",),
         ("validate", "--source", "training")]


@pytest.mark.parametrize("args", EVERY, ids=lambda a: a[0])
@pytest.mark.parametrize("where", ["before", "after"])
def test_json_and_lang_anywhere(capsys: pytest.CaptureFixture[str], args: tuple, where: str) -> None:
    flags = ["--lang", "zh", "--json"]
    argv = [*flags, *args] if where == "before" else [*args, *flags]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["schema_version"] == 1 and all(ord(c) < 128 for c in json.dumps(out))   # JSON is never localized
    text = [*args, "--lang", "zh"] if where == "after" else ["--lang", "zh", *args]
    assert main(text) == 0
    assert re.search("[\u4e00-\u9fff]", capsys.readouterr().out)


@pytest.mark.parametrize("argv", [["calibrate", "--lang", "zh"], ["--lang", "zh", "calibrate"],
                                  ["calibrate", "--json"], ["--json", "calibrate"]])
def test_calibrate_takes_lang_and_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    pytest.importorskip("torch").cuda.is_available() and pytest.skip("GPU machine: see test_calibrate.py")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and ("需要 NVIDIA GPU" in err[0] if "zh" in argv else "needs an NVIDIA GPU" in err[0])


def test_bad_lang_anywhere_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["estimate", "qwen2-7b", "--lang", "fr"], ["--lang", "fr", "gpus"]):
        assert main(argv) == 2
        assert capsys.readouterr().err.count("\n") == 1


def test_no_speed_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    """Qwen2-72B in bf16 is 145.4 GB of weights: it cannot fit one 80 GB H100, so no
    speed is given, and a warning says so instead of the block silently going missing."""
    out = run_json(capsys, "estimate", "qwen2-72b")
    assert out["performance"] is None and not out["memory"]["fits"]
    why = [w for w in out["warnings"] if w.startswith("no speed given")]
    assert len(why) == 1 and "GiB short" in why[0]
    train = run_json(capsys, "estimate", "llama-3.1-70b", "--task", "finetune")
    assert train["performance"] is None and any(w.startswith("no speed given") for w in train["warnings"])
    assert main(["estimate", "qwen2-72b", "--lang", "zh"]) == 0
    assert "未给出速度" in capsys.readouterr().out


def test_text_output_in_chinese(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIGSIZE_LANG", "zh")
    assert main(["estimate", "qwen2-7b"]) == 0
    out = capsys.readouterr().out
    assert "参数量" in out and "模型权重" in out


def test_json_is_never_localized(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "--lang", "zh", "estimate", "72B")
    assert all(ord(c) < 128 for c in json.dumps(out))


def test_python_api_matches_cli(capsys: pytest.CaptureFixture[str]) -> None:
    import rigsize

    api = rigsize.estimate("qwen2-7b", kv_dtype="fp8").model_dump(mode="json")
    cli = run_json(capsys, "estimate", "qwen2-7b", "--kv-dtype", "fp8")
    assert api == cli


def test_api_accepts_hyphenated_keys_and_rejects_unknown() -> None:
    import rigsize

    assert rigsize.estimate("qwen2-7b", **{"kv-dtype": "fp8"}).model.kv_dtype == "fp8"
    with pytest.raises(rigsize.InputError, match="did you mean 'kv_dtype'"):
        rigsize.estimate("qwen2-7b", kv_dtpye="fp8")


def test_readme_option_table_is_generated() -> None:
    from rigsize.planning.options import markdown_table

    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme
    assert markdown_table("plan") in readme[readme.index("### `rigsize plan`"):]     # the plan section's own


def test_readme_quick_start_is_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    block = text.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make run", "make test"]


@pytest.mark.parametrize("lang, cost", [("en", "cost"), ("zh", "成本")])
def test_plan_table_headers_are_words_not_message_keys(lang: str, cost: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Every column header of the plan table is a catalog word (the cost column printed the raw key
    'plan.cost: {}' in both languages since the package was regrouped)."""
    assert main(["plan", "qwen2.5-7b", "--task", "inference", "--gpu", "H100", "--max-gpus", "1", "--lang", lang]) == 0
    out = capsys.readouterr().out
    assert cost in out and "plan." not in out and ": {}" not in out


def test_listed_text_keeps_its_square_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    """Warnings, assumptions and server lines are data, not rich markup: a source such as
    'data/runtime.toml [vllm.era.v0_20]' is printed as written (rich dropped the bracketed part)."""
    assert main(["plan", "qwen2.5-7b", "--task", "inference", "--gpu", "H100", "--max-gpus", "1", "--engine", "vllm",
                 "--top", "1"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "data/runtime.toml [vllm.era." in out
