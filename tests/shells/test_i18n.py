"""Every command rendered in Chinese leaves no label in English.

Two checks that fail independently: (1) every label key the terminal renderer looks up
while rendering is in the message catalog with a Chinese text different from its
English one, and every warning it prints was recognised and translated; (2) the output
contains none of the English label words that used to leak (compute, bubble, tp_comm,
mlp, attention, ...), so a label printed without going through the catalog is caught
too."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import rigsize.shells.render as render_mod
from rigsize.messages import MESSAGES
from rigsize.shells.cli import main

FIXTURES = Path(__file__).parents[1] / "fixtures"

COMMANDS = [
    ("estimate", "llama-3.1-8b", "--batch", "8"),                         # inference with speed
    ("estimate", "qwen2-72b"),                                            # does not fit: no speed, says why
    ("estimate", "mixtral-8x7b", "--gpus", "2"),                          # MoE breakdown keys
    ("estimate", "deepseek-v3", "--gpus", "16", "--weights", "fp8"),      # MLA, shared experts
    ("estimate", "llama-3.1-8b", "--task", "finetune", "--gpus", "8", "--zero", "3", "--framework", "deepspeed"),
    ("estimate", "llama-3.1-8b", "--task", "lora"),
    ("estimate", "llama-3.1-8b", "--task", "qlora"),
    ("estimate", "llama-3.1-70b", "--task", "pretrain", "--tp", "8", "--pp", "4", "--dp", "2",
     "--global-batch", "512", "--train-tokens", "1T"),                    # bubble, tp/pp/dp communication
    ("models", "llama"),
    ("gpus",),
    ("formats",),
    ("validate", "--source", "training", "--cases"),
]

# English label words that leaked into Chinese output before (issue 10) and others a
# table prints; matched as whole words outside the assumptions list (which prints
# JSON keys and values, identifiers by design).
ENGLISH_LABELS = [
    "compute", "bubble", "tp_comm", "dp_comm", "pp_comm", "ep_comm", "cp_comm", "mlp", "attention", "embedding",
    "norms", "moe/experts", "moe/router", "memory-bound", "compute-bound", "Parameters", "Weights", "Total",
    "Throughput", "Step time", "Time to train", "Warnings", "Assumptions", "Name", "Kind", "weight", "metric",
    "measured", "predicted", "median", "split", "reserved", "GPU-h", "TDP",
]


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    seen: dict[str, list] = {"labels": [], "warnings": []}
    real_t, real_render, real_translate = render_mod.t, render_mod.render, render_mod.translate

    def t(key: str, lang: str = "en") -> str:
        seen["labels"].append(key)
        return real_t(key, lang)

    def render(key: str, lang: str = "en", /, **params: object) -> str:
        seen["labels"].append(key)
        return real_render(key, lang, **params)

    def translate(text: str, lang: str) -> str:
        out = real_translate(text, lang)
        seen["warnings"].append((text, out))
        return out

    monkeypatch.setattr(render_mod, "t", t)
    monkeypatch.setattr(render_mod, "render", render)
    monkeypatch.setattr(render_mod, "translate", translate)
    monkeypatch.setattr(render_mod, "_part", lambda key, lang: (seen["labels"].append(f"part.{key}"),
                                                                  real_t(f"part.{key}", lang))[1])
    monkeypatch.setattr(render_mod, "_bound", lambda key, lang: (seen["labels"].append(f"bound.{key}"),
                                                                   real_t(f"bound.{key}", lang))[1])
    monkeypatch.setattr(render_mod, "_split", lambda key, lang: (seen["labels"].append(f"split.{key}"),
                                                                   real_t(f"split.{key}", lang))[1])
    monkeypatch.setenv("COLUMNS", "200")      # no wrapping: words stay whole for the scan
    return seen


def _without_assumptions(text: str) -> str:
    """Drop the assumptions list (identifiers as the JSON prints them)."""
    out, skipping = [], False
    for line in text.splitlines():
        if line.strip() in ("假设", "Assumptions"):
            skipping = True
            continue
        if skipping and line.startswith("  - "):
            continue
        skipping = False
        out.append(line)
    return "\n".join(out)


def _check(seen: dict[str, list], text: str) -> None:
    assert seen["labels"], "nothing was rendered through the catalog"
    for key in set(seen["labels"]):
        assert key in MESSAGES, f"label {key!r} has no catalog entry"
        entry = MESSAGES[key]
        assert entry.get("zh") and entry["zh"] != entry["en"], f"label {key!r} is not translated: {entry}"
    body = _without_assumptions(text)
    for english, shown in seen["warnings"]:     # sentences stored in English (warnings, table cells)
        if shown == english and re.search(r"[A-Za-z]{3,}", english) and english in body:
            raise AssertionError(f"sentence left in English: {english!r}")
    for word in ENGLISH_LABELS:
        found = re.search(rf"(?<![\w/.-]){re.escape(word)}(?![\w/-])", body)   # not inside tensor names
        assert not found, f"English label {word!r} in Chinese output: ...{body[max(0, found.start() - 60):found.end() + 20]}..."


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a))
@pytest.mark.parametrize("where", ["after", "before"])
def test_command_in_chinese(capsys: pytest.CaptureFixture[str], recorded: dict, args: tuple, where: str) -> None:
    argv = [*args, "--lang", "zh"] if where == "after" else ["--lang", "zh", *args]
    assert main(argv) == 0
    _check(recorded, capsys.readouterr().out)


def test_calibrate_in_chinese(capsys: pytest.CaptureFixture[str], recorded: dict) -> None:
    """The report line of a calibration, from a recorded profile; on a machine without a
    GPU the command itself answers with one Chinese line and exit 2."""
    from rigsize.shells.render import print_calibration

    profile = json.loads((FIXTURES / "profile-h100-recorded.json").read_text())
    print_calibration("rigsize-profile.json", profile, "zh")
    _check(recorded, capsys.readouterr().out)


def test_errors_in_chinese_before_and_after(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["models", "zzz-none", "--lang", "zh"], ["--lang", "zh", "models", "zzz-none"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "没有与" in err[0]


def test_an_unknown_rigsize_lang_is_refused_as_lang_is(capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """RIGSIZE_LANG=klingon fell back to English in silence, where --lang klingon is an error."""
    monkeypatch.setenv("RIGSIZE_LANG", "klingon")
    assert main(["models", "llama"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "RIGSIZE_LANG=klingon is not one of en, zh" in err[0]
    assert main(["models", "llama", "--lang", "en"]) == 0     # an explicit --lang decides
    monkeypatch.setenv("RIGSIZE_LANG", "ZH")
    assert main(["models", "zzz-none"]) == 2 and "没有与" in capsys.readouterr().err


def test_a_missing_label_would_fail(capsys: pytest.CaptureFixture[str], recorded: dict,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The check has teeth: drop one translation and the same rendering fails."""
    monkeypatch.setitem(MESSAGES, "part.bubble", {"en": "pipeline bubble", "zh": "pipeline bubble"})
    assert main(COMMANDS[7] + ("--lang", "zh")) == 0
    with pytest.raises(AssertionError, match="part.bubble"):
        _check(recorded, capsys.readouterr().out)
