"""The model architectures each pinned vLLM and SGLang version knows (data/launch/<tool>-<version>-architectures.txt,
tools/extract_architectures.py over the released wheels): a launch for a version whose registry lacks the
model's architecture is a one-line refusal naming the oldest pinned version that has it.

The expected facts come from the engines, not from rigsize: vLLM 0.6.6.post1 starts Qwen3-30B-A3B and
Qwen2.5-VL-7B with "Model architectures [...] are not supported" (the review finding); in the registry.py
of other vLLM wheels Qwen2_5_VLForConditionalGeneration first shows in 0.7.3 (not 0.7.0), Qwen3MoeForCausalLM
in 0.8.4 (not 0.8.3), GptOssForCausalLM in 0.10.1 and Qwen3NextForCausalLM in 0.10.2 (not 0.10.1);
SGLang 0.5.23's sglang/srt/models/ has no Jamba model file.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest
from _golden import planned

from rigsize.errors import RigsizeError
from rigsize.launch import launch, sglang, vllm
from rigsize.launch.architectures import architectures_file, known_architectures, model_architectures
from rigsize.launch.plan import planned_run, select
from rigsize.model.inputs import preset_config, presets
from rigsize.planning.search import search

H100 = "H100-SXM-80GB"
PINNED = [("vllm", v) for v in vllm.VERSIONS] + [("sglang", v) for v in sglang.VERSIONS]


def rec(model: str, **opts) -> dict:
    return planned(model, task="inference", gpu=H100, **opts)


def _text(tool: str, version: str) -> str:
    return resources.files("rigsize.data").joinpath("launch", architectures_file(tool, version)).read_text()


@pytest.mark.parametrize("tool, version", PINNED)
def test_each_list_is_pinned_to_its_wheel(tool: str, version: str) -> None:
    text = _text(tool, version)
    header = [line for line in text.splitlines() if line.startswith("#")]
    source = next(line for line in header if line.startswith("# source: "))
    assert re.search(rf"{tool}-{re.escape(version)}-\S+\.whl \(sha256 [0-9a-f]{{64}};", source), source
    read = "vllm/model_executor/models/registry.py" if tool == "vllm" else "sglang/srt/models/"
    assert any(read in line for line in header)
    names = known_architectures(tool, version)
    assert len(names) >= 90 and all(re.fullmatch(r"[A-Za-z0-9_]+", n) for n in names)
    # the same wheel as the version's flag list, where that header records its sha256
    flags = resources.files("rigsize.data").joinpath("launch", f"{tool}-{version}-flags.txt").read_text()
    sha = re.search(r"\(sha256 ([0-9a-f]{64})", flags)
    if sha:
        assert sha.group(1) in source


def test_lists_hold_what_each_version_is_known_to_serve() -> None:
    assert "Qwen2ForCausalLM" in known_architectures("vllm", "0.6.6.post1")
    assert "Qwen2VLForConditionalGeneration" in known_architectures("vllm", "0.6.6.post1")
    for arch in ("Qwen3MoeForCausalLM", "Qwen2_5_VLForConditionalGeneration"):
        assert arch not in known_architectures("vllm", "0.6.6.post1")
        assert arch in known_architectures("vllm", "0.8.5.post1")
    assert "GptOssForCausalLM" in known_architectures("vllm", "0.10.2")
    assert "GptOssForCausalLM" not in known_architectures("vllm", "0.8.5.post1")
    assert "JambaForCausalLM" not in known_architectures("sglang", "0.5.23")


def test_every_preset_runs_on_the_default_vllm() -> None:
    """The default version knows every preset's architecture (a preset without one is not checked)."""
    missing = [n for n in presets() if (a := preset_config(n).get("architectures"))
               and not set(a) & known_architectures("vllm", vllm.VERSION)]
    assert not missing
    assert sum(bool(preset_config(n).get("architectures")) for n in presets()) >= 40


@pytest.mark.parametrize("model, tool, version, words", [
    ("qwen3-30b-a3b", "vllm", "0.6.6.post1", ["Qwen3MoeForCausalLM", "--engine-version 0.8.5.post1", "0.33.0"]),
    ("qwen2.5-vl-7b", "vllm", "0.6.6.post1", ["Qwen2_5_VLForConditionalGeneration", "--engine-version 0.8.5.post1"]),
    ("qwen3-next-80b-a3b", "vllm", "0.8.5.post1", ["Qwen3NextForCausalLM", "--engine-version 0.10.2"]),
    ("qwen3-next-80b-a3b", "sglang", "0.4.10.post2", ["Qwen3NextForCausalLM", "--engine-version 0.5.5"]),
    ("jamba-1.5-mini", "sglang", None, ["sglang 0.5.23 has no JambaForCausalLM", "nor has any pinned sglang"]),
])
def test_a_version_without_the_architecture_is_refused(model: str, tool: str, version: str | None,
                                                       words: list[str]) -> None:
    opts = dict(engine=tool, **({"engine_version": version} if version else {}))    # planned with its version
    with pytest.raises(RigsizeError) as err:
        launch(rec(model, **opts))
    text = str(err.value)
    assert "\n" not in text and all(w in text for w in words), text


def test_a_version_with_the_architecture_launches() -> None:
    b = launch(rec("qwen2-7b", engine="vllm", engine_version="0.6.6.post1"))
    assert b.launch.version == "0.6.6.post1" and b.launch.argv[0][:3] == ("vllm", "serve", "Qwen/Qwen2-7B")
    b = launch(rec("qwen3-30b-a3b", engine="vllm", engine_version="0.8.5.post1"))
    assert b.launch.argv[0][:3] == ("vllm", "serve", "Qwen/Qwen3-30B-A3B")


def test_a_config_file_plan_is_checked_by_its_config(tmp_path: Path) -> None:
    config = tmp_path / "moe.json"
    config.write_text(json.dumps(preset_config("qwen3-30b-a3b")))
    r = select(search(str(config), top=1, task="inference", gpu=H100, engine="vllm", engine_version="0.6.6.post1"))
    assert model_architectures(planned_run(r)) == ("Qwen3MoeForCausalLM",)
    with pytest.raises(RigsizeError, match="no Qwen3MoeForCausalLM"):
        launch(r)
    config.unlink()                      # the config is gone: the plan's own model.architectures still say it
    assert model_architectures(planned_run(r)) == ("Qwen3MoeForCausalLM",)
    old = {**r, "model": {k: v for k, v in r["model"].items() if k != "architectures"}}
    assert model_architectures(planned_run(old)) == ()     # a plan saved without the field: nothing to check


def test_a_hub_plan_is_checked_by_its_own_architectures() -> None:
    """The plan's model block names the config's architectures (model.architectures), so a plan from a Hub id
    (whose config is not in the plan) is checked too; a plan saved without that field is not."""
    from rigsize.launch.plan import select
    from rigsize.planning.search import search

    rec = select(search("qwen3-30b-a3b", task="inference", gpu="H100-SXM-80GB", engine="vllm",
                        engine_version="0.6.6.post1", top=1))
    assert rec["model"]["architectures"] == ["Qwen3MoeForCausalLM"]
    hub = {**rec, "model": {**rec["model"], "source": "hub", "name": "Qwen/Qwen3-30B-A3B"}}
    with pytest.raises(RigsizeError) as err:
        launch(hub)
    assert "Qwen3MoeForCausalLM" in str(err.value) and "0.8.5.post1" in str(err.value)
    old = {**hub, "model": {k: v for k, v in hub["model"].items() if k != "architectures"}}
    assert launch(old).commands       # nothing to check it by: written as before
