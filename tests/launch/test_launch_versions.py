"""--engine-version for rigsize launch (issue 18): a golden file per pinned vLLM and SGLang version; every
flag written is in the list extracted from that version's wheel (data/launch/<tool>-<version>-flags.txt);
the launched version is the one the plan's memory was sized for, or the launch is refused; a version that
is not pinned, or a plan the version cannot express, is a one-line refusal naming what can.

The expected spellings come from the wheels, not from the emitter: vLLM 0.10.2's CacheDType is
Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc"] (vllm/config/cache.py), 0.11.2's adds
"bfloat16"; 0.6.6.post1's arg_utils.py registers no --data-parallel-size; SGLang 0.4.10.post2's
--kv-cache-dtype choices are auto, fp8_e5m2, fp8_e4m3 (server_args.py).

Regenerate the goldens after a deliberate change: RIGSIZE_UPDATE_GOLDENS=1 pytest tests/launch.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from _golden import assert_golden, planned

from rigsize.errors import RigsizeError
from rigsize.launch import launch, sglang, vllm
from rigsize.launch.bundle import flags_of, known_flags
from rigsize.shells.cli import main

H100 = "H100-SXM-80GB"
# (case, model, plan options, target, --engine-version): vLLM's and SGLang's versions are planned with (their
# memory budgets depend on them), so the launch takes the plan's
CASES = {
    "vllm-0.11.2-local": ("qwen2-7b", dict(engine="vllm", batch=8, engine_version="0.11.2"), "local", None),
    "vllm-0.11.2-2node-k8s": ("llama-3.1-405b", dict(engine="vllm", gpus=16, tp=8, pp=2,
                              engine_version="0.11.2"),
                              "k8s", None),
    "vllm-0.10.2-ray-2node-slurm": ("llama-3.1-405b", dict(engine="vllm", gpus=16, tp=8, pp=2,
                                    engine_version="0.10.2"), "slurm", None),
    "vllm-0.10.2-moe-slurm": ("qwen3-30b-a3b", dict(engine="vllm", gpus=2, tp=2, ep=2, engine_version="0.10.2"),
                              "slurm", None),
    "vllm-0.8.5.post1-fp8-local": ("qwen2-7b", dict(engine="vllm", gpus=2, tp=2, weights="fp8", batch=16,
                                   engine_version="0.8.5.post1"), "local", None),
    "vllm-0.6.6.post1-skypilot": ("qwen2-7b", dict(engine="vllm", batch=8, engine_version="0.6.6.post1"), "skypilot",
                                  None),
    "sglang-0.5.5-local": ("qwen2-7b", dict(engine="sglang", gpus=2, tp=2, weights="fp8", kv_dtype="fp8", batch=16,
                                            engine_version="0.5.5"), "local", None),
    "sglang-0.4.10.post2-local": ("qwen2-7b", dict(engine="sglang", gpus=2, tp=2, batch=16,
                                                   engine_version="0.4.10.post2"), "local", None),
}


def rec(model: str, **opts) -> dict:
    return planned(model, task="inference", gpu=H100, **opts)


def bundle(case: str):
    model, opts, target, version = CASES[case]
    return launch(rec(model, **opts), target=target, engine_version=version)


def test_every_pinned_version_has_a_case() -> None:
    covered = {(c.split("-")[0], c.split("-")[1]) for c in CASES}
    pinned = {("vllm", v) for v in vllm.VERSIONS} | {("sglang", v) for v in sglang.VERSIONS}
    defaults = {("vllm", vllm.VERSION), ("sglang", sglang.VERSION)}      # their goldens are in test_launch.py
    assert pinned - defaults <= covered


@pytest.mark.parametrize("case", list(CASES))
def test_golden(case: str) -> None:
    assert_golden(case, bundle(case))


@pytest.mark.parametrize("case", list(CASES))
def test_every_flag_is_in_that_versions_list(case: str) -> None:
    tool, version = case.split("-")[:2]
    b = bundle(case)
    assert (b.launch.tool, b.launch.version) == (tool, version)
    allowed = known_flags(f"{tool}-{version}-flags.txt")
    for argv in b.launch.argv:
        assert not [f for f in flags_of(argv) if f not in allowed], (case, argv)
    record = json.loads(next(f.text for f in b.files if f.name == "rigsize-plan.json"))
    assert record["version"] == version
    assert record["version_from"] == "plan"
    assert any(f"written for {tool} {version}" in n for n in b.launch.notes)
    assert f"=={version}" in b.launch.setup


def _argv(case: str) -> list[str]:
    return list(bundle(case).launch.argv[0])


def _value(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_kv_cache_dtype_spelled_as_each_version_names_it() -> None:
    a11, a10 = _argv("vllm-0.11.2-local"), _argv("vllm-0.10.2-moe-slurm")
    assert _value(a11, "--kv-cache-dtype") == "bfloat16"
    assert _value(a10, "--kv-cache-dtype") == "auto" and _value(a10, "--dtype") == "bfloat16"   # auto = model dtype
    fp8 = _argv("vllm-0.8.5.post1-fp8-local")       # fp8 weights, bf16 KV: auto needs the activation dtype said
    assert _value(fp8, "--quantization") == "fp8" and _value(fp8, "--dtype") == "bfloat16"
    assert _value(fp8, "--kv-cache-dtype") == "auto"
    sg = _argv("sglang-0.4.10.post2-local")
    assert _value(sg, "--kv-cache-dtype") == "auto" and _value(sg, "--dtype") == "bfloat16"
    assert _value(_argv("sglang-0.5.5-local"), "--kv-cache-dtype") == "fp8_e4m3"


def test_flags_a_version_lacks_are_not_written() -> None:
    assert "--data-parallel-size" not in _argv("vllm-0.6.6.post1-skypilot")
    assert "--enable-expert-parallel" in _argv("vllm-0.10.2-moe-slurm")
    multi = shlex.split(bundle("vllm-0.11.2-2node-k8s").launch.commands[0])
    assert "--nnodes" in multi and _value(multi, "--nnodes") == "2"
    ray = bundle("vllm-0.10.2-ray-2node-slurm")        # 0.10.2 has no --nnodes: a Ray cluster, node 0 serves
    line = ray.launch.commands[0]
    assert "--nnodes" not in line and _value(list(ray.launch.argv[0]), "--distributed-executor-backend") == "ray"
    assert line.startswith('if [ "$SLURM_NODEID" = 0 ]; then ray start --head --port=6379 && vllm serve ')
    assert line.endswith("else ray start --address=$HEAD_ADDR:6379 --block; fi")


def test_the_k8s_image_is_the_launched_version() -> None:
    text = next(f.text for f in bundle("vllm-0.11.2-2node-k8s").files if f.name == "k8s.yaml")
    assert "vllm/vllm-openai:v0.11.2" in text and "v0.33.0" not in text


def test_sized_settings_are_the_versions_own() -> None:
    """The batching values written are the sized version's defaults, the recommendation's own: 8192 batched
    tokens for 0.8.5.post1 under the OpenAI server on a GPU of >= 70 GiB (its wheel's arg_utils.py,
    EngineArgs._set_default_args_v1: UsageContext.OPENAI_API_SERVER: 8192)."""
    b = bundle("vllm-0.8.5.post1-fp8-local")
    record = json.loads(next(f.text for f in b.files if f.name == "rigsize-plan.json"))
    argv = list(b.launch.argv[0])
    assert record["recommendation"]["inputs"]["engine_version"] == "0.8.5.post1"
    assert int(_value(argv, "--max-num-batched-tokens")) == 8192 == record["recommendation"]["assumptions"][
        "max_num_batched_tokens"]


REFUSALS = [
    # (model, plan options, --engine-version at launch, words the one line must hold)
    ("qwen2-7b", dict(engine="vllm"), "0.10.1", ["0.33.0, 0.11.2, 0.10.2, 0.8.5.post1, 0.6.6.post1"]),
    ("qwen2-7b", dict(engine="vllm"), "0.11.2", ["sized by vllm >= 0.20.0", "--engine-version 0.11.2"]),
    ("qwen2-7b", dict(engine="vllm", engine_version="0.10.2"), "0.11.2", ["sized for vllm 0.10.2, not 0.11.2"]),
    ("mixtral-8x7b", dict(engine="vllm", gpus=2, tp=2, ep=2, engine_version="0.6.6.post1"), None,
     ["--enable-expert-parallel", "--engine-version 0.8.5.post1"]),     # (0.6.6.post1 has no Qwen3-MoE at all)
    ("qwen2-7b", dict(engine="vllm", gpus=2, dp=2, engine_version="0.6.6.post1"), None,
     ["--data-parallel-size", "--engine-version 0.8.5.post1"]),
    ("qwen2.5-72b", dict(engine="vllm", gpus=16, tp=8, engine_version="0.10.2"), None,     # dp=2 over 2 nodes
     ["Ray cluster serves one replica, not dp=2", "--engine-version 0.11.2"]),
    ("qwen2.5-vl-7b", dict(engine="vllm", images_per_request=0, engine_version="0.11.2"), None,
     ["vision tower", "--engine-version 0.33.0"]),
    ("qwen2-7b", dict(engine="sglang"), "0.4.9", ["sglang 0.5.23, 0.5.5, 0.4.10.post2"]),
    ("qwen2-7b", dict(engine="sglang", weights="fp16", engine_version="0.4.10.post2"), None,
     ["bf16 KV", "--engine-version 0.5.5"]),
    # a plan sized by SGLang's newest budget rules (0.5.20+) is not launched as 0.5.5, whose default fraction differs
    ("qwen2-7b", dict(engine="sglang"), "0.5.5", ["sized by sglang >= 0.5.20", "--engine-version 0.5.5"]),
    ("qwen2-7b", dict(engine="trtllm"), "1.0.0", ["trtllm 1.2.1"]),
]


@pytest.mark.parametrize("model, opts, version, words", REFUSALS)
def test_refusals_are_one_line(model: str, opts: dict, version: str | None, words: list[str]) -> None:
    with pytest.raises(RigsizeError) as err:
        launch(rec(model, **opts), engine_version=version)
    text = str(err.value)
    assert "\n" not in text and all(w in text for w in words), text


def test_plan_file_carries_its_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A plan saved with --engine-version 0.10.2 launches 0.10.2 without being told; told another, it refuses."""
    plan = tmp_path / "plan.json"
    assert main(["plan", "qwen2-7b", "--task", "inference", "--engine", "vllm", "--engine-version", "0.10.2",
                 "--top", "1", "--json"]) == 0
    plan.write_text(capsys.readouterr().out)
    assert main(["launch", "--plan-file", str(plan), "--out-dir", str(tmp_path / "a"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["version"], report["version_from"]) == ("0.10.2", "plan")
    assert main(["launch", "--plan-file", str(plan), "--engine-version", "0.11.2", "--out-dir",
                 str(tmp_path / "b")]) == 2
    assert "sized for vllm 0.10.2" in capsys.readouterr().err


def test_cli_sglang_version_is_planned_and_launched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--engine sglang --engine-version: planned with it (SGLang's budget rules depend on it), written for it,
    and said in the output."""
    assert main(["launch", "qwen2-7b", "--task", "inference", "--engine", "sglang", "--engine-version",
                 "0.4.10.post2", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# sglang 0.4.10.post2 on ") and ", target local" in out.splitlines()[0]
    assert "pip install 'sglang[all]==0.4.10.post2'" in out and "--kv-cache-dtype auto" in out
    record = json.loads((tmp_path / "rigsize-plan.json").read_text())
    assert (record["version"], record["version_from"]) == ("0.4.10.post2", "--engine-version")


def test_an_sglang_plan_launches_the_version_it_was_sized_for() -> None:
    """inputs.engine_version of an SGLang plan is the SGLang version whose budget sized it: a pinned one is
    launched as it; one without a pinned flag list (0.5.9) is refused in one line naming those that are."""
    b = launch(rec("qwen2-7b", engine="sglang", engine_version="0.5.5"))
    assert (b.launch.version, b.version_from) == ("0.5.5", "plan")
    with pytest.raises(RigsizeError) as err:
        launch(rec("qwen2-7b", engine="sglang", engine_version="0.5.9"))
    assert "sglang 0.5.9 has no pinned flag list" in str(err.value) and "0.5.5" in str(err.value)


def test_launch_json_names_the_launcher(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """launch --json says which process launcher a training command starts under (the one asked, else the
    framework's default: accelerate for trl sft), and null for a serving engine."""
    for args, expected in ((["qwen2-7b", "--task", "lora", "--framework", "hf", "--gpus", "2", "--launcher", "torchrun"],
                            "torchrun"),
                           (["qwen2-7b", "--task", "lora", "--framework", "hf", "--gpus", "2"], "accelerate"),
                           (["qwen2-7b", "--task", "inference", "--engine", "vllm"], None)):
        assert main(["launch", *args, "--out-dir", str(tmp_path / str(expected)), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["launcher"] == expected, args
        assert report["commands"][0].split()[0] == {"torchrun": "torchrun", "accelerate": "trl", None: "vllm"}[expected]
