"""rigsize launch --lang zh (issue 18): the comment lines (what was written, for which version, the notes) and
the one-line refusals are Chinese; the commands and the files are code and stay byte for byte as in English.

The notes checked are every note of every golden launch (tests/fixtures/launch/*.txt, all engines, frameworks
and platforms) and of the local engines; each must come back from the message catalog changed and in Chinese.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rigsize.launch import launch
from rigsize.launch.plan import select
from rigsize.messages import MESSAGES, translate
from rigsize.planning.search import search
from rigsize.shells.cli import main

GOLDEN = Path(__file__).parents[1] / "fixtures" / "launch"
CJK = re.compile(r"[\u4e00-\u9fff]")


def golden_notes() -> list[str]:
    notes = set()
    for path in sorted(GOLDEN.glob("*.txt")):
        section = path.read_text().split("==> (commands) <==\n", 1)[1].split("\n==> ", 1)[0]
        notes |= {line[2:] for line in section.splitlines() if line.startswith("# ")}
    return sorted(notes)


def local_notes() -> list[str]:
    out = []
    for opts in (dict(engine="llamacpp", gpu="RTX-4090", weights="q4_k_m", max_model_len=8192, gpus=2),
                 dict(engine="ollama", gpu="RTX-4090", weights="q4_k_m"),
                 dict(engine="mlx", gpu="M2-Ultra-192GB", weights="mlx-4bit")):
        b = launch(select(search("llama-3.1-8b", task="inference", top=1, **opts)))
        out += [*b.launch.notes, b.launch.setup]
    return out


def untranslated(texts: list[str]) -> list[str]:
    return [t for t in texts if translate(t, "zh") == t or not CJK.search(translate(t, "zh"))]


def test_every_launch_note_has_chinese() -> None:
    notes = golden_notes()
    assert len(notes) >= 15, notes          # the goldens hold notes of many emitters
    assert not untranslated(notes)
    assert not untranslated([n for n in local_notes() if not n.startswith("pip install")])


def test_a_missing_translation_would_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    note = "run the same command on each of the 2 nodes, node rank 0 first (HEAD_ADDR = node 0's address)"
    assert not untranslated([note])
    monkeypatch.setitem(MESSAGES, "launch.note_nodes_rank0", {"en": MESSAGES["launch.note_nodes_rank0"]["en"]})
    assert untranslated([note]) == [note]


def _run(argv: list[str], out_dir: Path, capsys: pytest.CaptureFixture[str], *lang: str) -> tuple[str, dict]:
    assert main([*argv, "--out-dir", str(out_dir), *lang]) == 0
    return capsys.readouterr().out, {p.name: p.read_bytes() for p in sorted(out_dir.iterdir())}


@pytest.mark.parametrize("argv", [
    ["launch", "llama-3.1-405b", "--task", "inference", "--engine", "vllm", "--gpus", "16", "--tp", "8", "--pp", "2",
     "--target", "slurm", "--engine-version", "0.11.2"],
    ["launch", "qwen2-7b", "--task", "inference", "--engine", "sglang", "--weights", "fp8"],
    ["launch", "llama-3.1-8b", "--task", "inference", "--engine", "ollama", "--gpu", "RTX-4090", "--weights",
     "q4_k_m"],
], ids=["vllm-slurm", "sglang", "ollama"])
def test_comments_in_chinese_code_unchanged(argv: list[str], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    en, en_files = _run(argv, tmp_path / "en", capsys)
    zh, zh_files = _run(argv, tmp_path / "zh", capsys, "--lang", "zh")
    en_lines, zh_lines = en.splitlines(), zh.splitlines()
    assert len(en_lines) == len(zh_lines)
    for e, z in zip(en_lines, zh_lines):
        if e.startswith("# "):
            assert z != e and CJK.search(z), (e, z)
        else:
            assert z == e.replace(str(tmp_path / "en"), str(tmp_path / "zh"))      # commands are code
    assert en_files.keys() == zh_files.keys()
    for name in en_files:
        if name != "rigsize-plan.json":            # it records the out-dir given; its notes stay English (JSON)
            assert en_files[name] == zh_files[name], name
    assert b"\\u" not in zh_files["rigsize-plan.json"] and not CJK.search(zh_files["rigsize-plan.json"].decode())


@pytest.mark.parametrize("argv", [
    ["launch", "qwen2-7b", "--task", "inference", "--engine", "vllm", "--engine-version", "0.10.1"],
    ["launch", "mixtral-8x7b", "--task", "inference", "--engine", "vllm", "--gpus", "2", "--tp", "2", "--ep", "2",
     "--engine-version", "0.6.6.post1"],
    ["launch", "qwen3-30b-a3b", "--task", "inference", "--engine", "vllm", "--engine-version", "0.6.6.post1"],
    ["launch", "jamba-1.5-mini", "--task", "inference", "--engine", "sglang"],
    ["launch", "qwen2.5-72b", "--task", "inference", "--engine", "vllm", "--gpu", "H100-SXM-80GB", "--gpus", "16",
     "--tp", "8", "--engine-version", "0.10.2"],
    ["launch", "qwen2-7b", "--task", "inference", "--engine", "vllm", "--gpu", "H100-SXM-80GB", "--gpus", "2",
     "--dp", "2", "--engine-version", "0.6.6.post1"],
    ["launch", "qwen2-7b", "--task", "inference", "--engine", "vllm", "--weights", "fp16", "--engine-version",
     "0.10.2"],
    ["launch", "qwen2.5-vl-7b", "--task", "inference", "--engine", "vllm", "--images-per-request", "0",
     "--engine-version", "0.11.2"],
    ["launch", "qwen2-7b", "--task", "inference", "--engine", "sglang", "--engine-version", "0.4.9"],
    ["launch", "qwen2-7b", "--task", "inference", "--target", "nowhere"],
    ["launch", "qwen2-7b", "--task", "inference", "--engine", "sglang", "--weights", "fp16", "--engine-version",
     "0.4.10.post2"],
    ["launch", "qwen2-7b"],
    ["launch"],
], ids=lambda a: " ".join(a[1:4]))
def test_refusals_in_chinese(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*argv, "--out-dir", str(tmp_path)]) == 2
    en = capsys.readouterr().err.strip()
    assert main([*argv, "--out-dir", str(tmp_path), "--lang", "zh"]) == 2
    zh = capsys.readouterr().err.strip()
    assert len(zh.splitlines()) == 1 and zh != en and CJK.search(zh), (en, zh)


def test_plan_file_refusals_in_chinese(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad, plan = tmp_path / "bad.json", tmp_path / "plan.json"
    bad.write_text("{}")
    assert main(["plan", "qwen2-7b", "--task", "inference", "--engine", "vllm", "--top", "1", "--json"]) == 0
    plan.write_text(capsys.readouterr().out)
    out = ["--out-dir", str(tmp_path / "out")]
    for argv in (["launch", "--plan-file", str(tmp_path / "none.json")], ["launch", "--plan-file", str(bad)],
                 ["launch", "--plan-file", str(plan), "--rank", "9", *out],
                 ["launch", "--plan-file", str(plan), "--engine", "sglang", *out],
                 ["launch", "--plan-file", str(plan), "--engine-version", "0.11.2", *out],
                 ["launch", "--plan-file", str(plan), "--target", "k8s", "--engine-version", "0.6.6", *out]):
        assert main([*argv, "--lang", "zh"]) == 2
        zh = capsys.readouterr().err.strip()
        assert len(zh.splitlines()) == 1 and CJK.search(zh), zh


def _sample(node, names: dict[str, str]) -> str | None:
    """The text an f-string (or a + of them) would make, each {field} filled with a stand-in value (the same
    expression, the same value)."""
    import ast

    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else
                       names.setdefault(ast.unparse(v.value), f"v{len(names)}") for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left = _sample(node.left, names)
        return None if left is None else left + (_sample(node.right, names) or "")
    return None


def test_every_launch_refusal_has_chinese() -> None:
    """Each LaunchError raised with a sentence written in place (src/rigsize/launch/*.py) has a catalog
    template whose Chinese text it comes back in; _refuse's composed sentences are checked above by running."""
    import ast

    import rigsize.launch as pkg

    missing, seen = [], 0
    for path in sorted(Path(pkg.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text())
        composed = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "_refuse"
                    for n in ast.walk(f)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "LaunchError" and node.args \
                    and id(node) not in composed:
                text = _sample(node.args[0], {})
                if text is None:
                    continue
                seen += 1
                if untranslated([text]):
                    missing.append(f"{path.name}:{node.lineno}: {text}")
    assert seen >= 40
    assert not missing, "\n".join(missing)
