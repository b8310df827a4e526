"""Launch emitters (issue 18): golden files per engine and platform, pinned to their versions; every
flag written is in the flag list extracted from that version (data/launch/); DeepSpeed's own config
class accepts the ds_config; SkyPilot's own task schema accepts the task; the numbers agree with the plan.

Regenerate the goldens after a deliberate change: RIGSIZE_UPDATE_GOLDENS=1 pytest tests/launch.
"""

from __future__ import annotations

import json

import pytest
from _golden import assert_golden, planned

from rigsize.errors import RigsizeError
from rigsize.launch import deepspeed, launch, megatron, sglang, skypilot, slurm, trl, vllm
from rigsize.launch.bundle import flags_of, known_flags
from rigsize.launch.plan import planned_run, select
from rigsize.planning.search import search

# (case, model, plan options, target): each a plan rigsize makes, launched as planned
CASES = {
    "vllm-0.33.0-local": ("qwen2-7b", dict(task="inference", gpu="H100-SXM-80GB", engine="vllm", batch=8), "local"),
    "vllm-0.33.0-2node-skypilot": ("qwen2.5-72b", dict(task="inference", gpu="H100-SXM-80GB", gpus=16, tp=8,
                                   engine="vllm", batch=32), "skypilot"),
    "vllm-0.33.0-moe-slurm": ("qwen3-30b-a3b", dict(task="inference", gpu="H100-SXM-80GB", gpus=2, tp=2, ep=2,
                              engine="vllm"), "slurm"),
    "sglang-0.5.23-local": ("qwen2-7b", dict(task="inference", gpu="H100-SXM-80GB", gpus=2, tp=2, engine="sglang",
                            weights="fp8", kv_dtype="fp8", batch=16), "local"),
    # speculative decoding with DeepSeek-V3's own MTP layer (issue 20)
    "vllm-0.33.0-mtp-local": ("deepseek-v3", dict(task="inference", gpu="H200-SXM-141GB", gpus=8, engine="vllm",
                              speculative="mtp"), "local"),
    "sglang-0.5.23-mtp-local": ("deepseek-v3", dict(task="inference", gpu="H200-SXM-141GB", gpus=8, engine="sglang",
                                speculative="mtp"), "local"),
    "trl-1.16.0-lora-local": ("qwen2-7b", dict(task="lora", gpu="H100-SXM-80GB", gpus=1, framework="hf"), "local"),
    "trl-1.16.0-qlora-skypilot": ("qwen2-7b", dict(task="qlora", gpu="L4", gpus=1, framework="hf"), "skypilot"),
    "deepspeed-0.19.8-finetune-slurm": ("qwen2-7b", dict(task="finetune", gpu="H100-SXM-80GB", gpus=16,
                                        framework="deepspeed", zero="3", global_batch=64), "slurm"),
    "megatron-core_v0.19.0-pretrain-skypilot": ("qwen2-7b", dict(task="pretrain", gpu="H100-SXM-80GB", gpus=16,
                                                framework="megatron"), "skypilot"),
}


def rec(case: str) -> dict:
    model, opts = CASES[case][:2]
    return planned(model, **opts)


def bundle(case: str):
    return launch(rec(case), target=CASES[case][2])


@pytest.mark.parametrize("case", list(CASES))
def test_golden(case: str) -> None:
    assert_golden(case, bundle(case))


FLAG_FILES = {"vllm": [vllm.FLAGS_FILE], "sglang": [sglang.FLAGS_FILE],
              "trl": [trl.FLAGS_FILE, trl.ACCELERATE_FLAGS_FILE],
              "megatron": [megatron.FLAGS_FILE, megatron.TORCHRUN_FLAGS_FILE]}


@pytest.mark.parametrize("case", list(CASES))
def test_every_flag_is_in_the_pinned_list(case: str) -> None:
    b = bundle(case)
    allowed = frozenset().union(*(known_flags(f) for f in FLAG_FILES[b.launch.tool]))
    for argv in b.launch.argv:
        unknown = [f for f in flags_of(argv) if f not in allowed]
        assert not unknown, (case, unknown)
    if b.target == "slurm":
        script = next(f.text for f in b.files if f.name == "job.sbatch")
        used = {line.split()[1].split("=")[0] for line in script.splitlines() if line.startswith("#SBATCH")}
        used |= {w.split("=")[0] for line in script.splitlines() if line.startswith("srun")
                 for w in line.split("bash -c")[0].split() if w.startswith("--")}
        assert used <= known_flags(slurm.FLAGS_FILE), used - known_flags(slurm.FLAGS_FILE)


def test_flag_lists_say_where_they_come_from() -> None:
    from importlib import resources

    for f in resources.files("rigsize.data").joinpath("launch").iterdir():
        text = f.read_text()
        if f.name.endswith(".json"):
            comment = json.loads(text)["$comment"]     # SkyPilot's task schema, or a CRD's (test_launch_k8s.py)
            assert "get_task_schema" in comment or ("source: " in comment and " tag " in comment), f.name
        else:
            assert text.startswith("#") and "source" in text[:800], f.name


def _ds_configs() -> list[tuple[str, dict, int]]:
    out = []
    for case in CASES:
        b = bundle(case)
        for f in b.files:
            if f.name == "ds_config.json":
                out.append((case, json.loads(f.text), planned_run(rec(case)).dp))
    assert out
    return out


def test_ds_config_keys_are_deepspeeds() -> None:
    allowed = known_flags(deepspeed.KEYS_FILE)
    for case, cfg, _ in _ds_configs():
        assert set(deepspeed.keys_of(cfg)) <= allowed, (case, set(deepspeed.keys_of(cfg)) - allowed)


def test_ds_config_passes_deepspeeds_own_config_class(monkeypatch: pytest.MonkeyPatch) -> None:
    ds_config_module = pytest.importorskip("deepspeed.runtime.config")
    monkeypatch.setattr(ds_config_module.dist, "get_rank", lambda *a, **k: 0)
    for case, cfg, dp in _ds_configs():
        mpu = type("Mpu", (), {"get_data_parallel_world_size": lambda self, dp=dp: dp,
                               "get_model_parallel_world_size": lambda self: 1,
                               "get_data_parallel_rank": lambda self: 0})()
        parsed = ds_config_module.DeepSpeedConfig(cfg, mpu=mpu)
        assert parsed.zero_optimization_stage == cfg["zero_optimization"]["stage"]
        assert parsed.train_batch_size == cfg["train_batch_size"]
        bad = dict(cfg, train_batch_size=cfg["train_batch_size"] + 1)
        with pytest.raises(AssertionError):       # DeepSpeed's own batch check bites
            ds_config_module.DeepSpeedConfig(bad, mpu=mpu)


def test_skypilot_tasks_pass_skypilots_task_schema() -> None:
    yaml = pytest.importorskip("yaml")
    jsonschema = pytest.importorskip("jsonschema")
    from importlib import resources

    schema = json.loads(resources.files("rigsize.data").joinpath("launch", skypilot.SCHEMA_FILE).read_text())
    schema.pop("$comment")
    for case in CASES:
        b = bundle(case)
        for f in b.files:
            if f.name == "task.yaml":
                task = yaml.safe_load(f.text)
                jsonschema.validate(task, schema)
                run = planned_run(rec(case))
                name, count = task["resources"]["accelerators"].split(":")
                assert int(count) * task["num_nodes"] == run.gpus


@pytest.mark.parametrize("case", list(CASES))
def test_parallel_sizes_multiply_to_the_gpu_count(case: str) -> None:
    run = planned_run(rec(case))
    assert run.tp * run.pp * run.dp * run.cp == run.gpus == run.nodes * run.gpus_per_node
    argv = bundle(case).launch.argv[0]

    def val(flag: str) -> int:
        return int(argv[argv.index(flag) + 1])
    tool = bundle(case).launch.tool
    if tool == "vllm":
        assert val("--tensor-parallel-size") * val("--pipeline-parallel-size") * val("--data-parallel-size") == run.gpus
    if tool == "sglang":
        assert val("--tp-size") * val("--pp-size") * val("--dp-size") == run.gpus
    if tool == "megatron":
        model_parallel = val("--tensor-model-parallel-size") * val("--pipeline-model-parallel-size") * val(
            "--context-parallel-size")
        assert run.gpus % model_parallel == 0 and val("--nproc-per-node") * val("--nnodes") == run.gpus
        dp = run.gpus // model_parallel
        assert val("--global-batch-size") % (val("--micro-batch-size") * dp) == 0


@pytest.mark.parametrize("case", [c for c in CASES if c.startswith(("trl", "deepspeed"))])
def test_micro_batch_times_accumulation_times_dp_is_the_global_batch(case: str) -> None:
    run = planned_run(rec(case))
    argv = bundle(case).launch.argv[0]
    micro = int(argv[argv.index("--per_device_train_batch_size") + 1])
    accum = int(argv[argv.index("--gradient_accumulation_steps") + 1])
    assert micro * accum * run.dp == run.global_batch
    for f in bundle(case).files:
        if f.name == "ds_config.json":
            cfg = json.loads(f.text)
            assert (cfg["train_micro_batch_size_per_gpu"] * cfg["gradient_accumulation_steps"] * run.dp
                    == cfg["train_batch_size"] == run.global_batch)


@pytest.mark.parametrize("case", [c for c in CASES if c.startswith(("vllm", "sglang"))])
def test_kv_budget_admits_the_planned_concurrency(case: str) -> None:
    """The memory the emitted fraction leaves for the KV cache holds the plan's batch at its length,
    by rigsize's own per-sequence KV estimate; the emitted context limit covers the sequence."""
    run = planned_run(rec(case))
    argv = bundle(case).launch.argv[0]
    per = run.per_gpu
    if argv[0] == "vllm":
        frac = float(argv[argv.index("--gpu-memory-utilization") + 1])
        kv_budget = frac * run.memory_visible_bytes - per["weights"] - per["activations"] - per["overhead"]
        context = int(argv[argv.index("--max-model-len") + 1])
    else:
        frac = float(argv[argv.index("--mem-fraction-static") + 1])
        kv_budget = frac * run.memory_visible_bytes - per["weights"]
        context = int(argv[argv.index("--context-length") + 1])
    assert kv_budget >= run.batch * run.kv_bytes_per_sequence
    assert context >= run.seq


def test_peft_accepts_the_lora_settings() -> None:
    peft = pytest.importorskip("peft")
    argv = bundle("trl-1.16.0-lora-local").launch.argv[0]
    r = int(argv[argv.index("--lora_r") + 1])
    targets = argv[argv.index("--lora_target_modules") + 1]
    cfg = peft.LoraConfig(r=r, lora_alpha=32, target_modules=targets, task_type="CAUSAL_LM")
    assert cfg.r == planned_run(rec("trl-1.16.0-lora-local")).lora_rank


def test_plan_record_is_written() -> None:
    b = bundle("vllm-0.33.0-local")
    record = json.loads(next(f.text for f in b.files if f.name == "rigsize-plan.json"))
    assert record["tool"] == "vllm" and record["version"] == vllm.VERSION
    assert record["recommendation"]["choices"]["engine"] == "vllm"


@pytest.mark.parametrize("case,kwargs,expect", [
    ("vllm-0.33.0-local", dict(engine="sglang"), "sized for vllm, not sglang"),
    ("trl-1.16.0-lora-local", dict(engine="vllm"), "--engine is for inference"),
    ("megatron-core_v0.19.0-pretrain-skypilot", dict(framework="deepspeed"), "sized for megatron"),
])
def test_refusals_name_the_nearest_plan(case: str, kwargs: dict, expect: str) -> None:
    with pytest.raises(RigsizeError) as err:
        launch(rec(case), **kwargs)
    assert expect in str(err.value) and "rigsize launch" in str(err.value)


def test_mtp_launch_is_the_sized_draft() -> None:
    """vLLM: --speculative-config with the "mtp" method (vllm/config/speculative.py MTPModelTypes, 0.33.0
    wheel) and the planned token count, no draft model path (the target's own checkpoint); SGLang: NEXTN
    (an alias of EAGLE over the NextN layer), K steps of one chain, K + 1 draft tokens verified."""
    argv = bundle("vllm-0.33.0-mtp-local").launch.argv[0]
    config = json.loads(argv[argv.index("--speculative-config") + 1])
    assert config == {"method": "mtp", "num_speculative_tokens": 1}
    argv = bundle("sglang-0.5.23-mtp-local").launch.argv[0]
    pairs = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("--speculative")}
    assert pairs == {"--speculative-algorithm": "NEXTN", "--speculative-num-steps": "1",
                     "--speculative-eagle-topk": "1", "--speculative-num-draft-tokens": "2"}
    assert "--speculative-config" not in bundle("vllm-0.33.0-local").launch.argv[0]


def test_mtp_launch_refusals_name_what_can() -> None:
    from rigsize.launch import trtllm

    run = planned_run(rec("vllm-0.33.0-mtp-local"))
    with pytest.raises(RigsizeError, match="no 'mtp' speculative method.*--engine-version 0.11.2"):
        vllm.emit(run, version="0.10.2")
    with pytest.raises(RigsizeError, match="--engine vllm or --engine sglang"):
        trtllm.emit(run)


def test_layout_refusals() -> None:
    r = rec("megatron-core_v0.19.0-pretrain-skypilot")
    with pytest.raises(RigsizeError, match="Nearest"):
        deepspeed.ds_config(planned_run(r))          # tp=2: not a ZeRO layout
    r = rec("deepspeed-0.19.8-finetune-slurm")
    with pytest.raises(RigsizeError, match="--zero 1"):
        megatron.megatron_args(planned_run(r))       # ZeRO-3: not Megatron's


def test_text_only_vlm_launch_limits_images_to_zero() -> None:
    """The memory of --images-per-request 0 assumes vLLM builds no vision tower, which it does
    only when --limit-mm-per-prompt is 0 for every modality (interfaces.py _mark_tower_model)."""
    args = dict(task="inference", gpu="H100-SXM-80GB", engine="vllm", top=1)
    text_only = launch(select(search("qwen2.5-vl-7b", images_per_request=0, **args)))
    with_images = launch(select(search("qwen2.5-vl-7b", **args)))
    assert "--limit-mm-per-prompt" in str(text_only.commands) and '"image": 0' in str(text_only.commands)
    assert "--limit-mm-per-prompt" not in str(with_images.commands)
