"""--framework llamafactory (issue 18): llamafactory-cli train with a YAML whose every key is a field of the
dataclasses LLaMA-Factory 0.9.5 parses (data/launch/llamafactory-0.9.5-keys.txt, read from the released
wheel); micro-batch x accumulation x dp = global batch; layouts it cannot train are refused in one line.

Regenerate the goldens after a deliberate change: RIGSIZE_UPDATE_GOLDENS=1 pytest tests/launch.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from _golden import assert_golden, planned

from rigsize.errors import RigsizeError
from rigsize.launch import launch, llamafactory
from rigsize.launch.bundle import known_sections
from rigsize.launch.plan import planned_run

yaml = pytest.importorskip("yaml")

CASES = {
    "llamafactory-0.9.5-qlora-local": ("qwen2-7b", dict(task="qlora", gpu="L4", gpus=1, framework="llamafactory"),
                                       "local"),
    "llamafactory-0.9.5-lora-8gpu-k8s": ("qwen2-7b", dict(task="lora", gpu="H100-SXM-80GB", gpus=8,
                                         framework="llamafactory", global_batch=64), "k8s"),
    "llamafactory-0.9.5-zero3-slurm": ("qwen2-7b", dict(task="finetune", gpu="H100-SXM-80GB", gpus=16,
                                       framework="llamafactory", zero="3", global_batch=64), "slurm"),
}
TRAINING_SECTIONS = ("ModelArguments", "DataArguments", "TrainingArguments", "FinetuningArguments",
                     "GeneratingArguments")


def rec(case: str) -> dict:
    model, opts = CASES[case][:2]
    return planned(model, **opts)


def bundle(case: str):
    return launch(rec(case), target=CASES[case][2])


def cfg(case: str) -> dict:
    return yaml.safe_load(next(f.text for f in bundle(case).files if f.name == llamafactory.CONFIG_NAME))


@pytest.mark.parametrize("case", list(CASES))
def test_golden(case: str) -> None:
    assert_golden(case, bundle(case))


@pytest.mark.parametrize("case", list(CASES))
def test_every_key_and_variable_is_llamafactorys(case: str) -> None:
    pinned = known_sections(llamafactory.KEYS_FILE)
    allowed = frozenset().union(*(pinned[s] for s in TRAINING_SECTIONS))
    assert set(cfg(case)) <= allowed, set(cfg(case)) - allowed
    words = bundle(case).launch.commands[0].split()
    env = {w.split("=")[0] for w in words if "=" in w and w.split("=")[0].isupper()}
    assert env <= pinned["launcher env"], env - pinned["launcher env"]


def test_trainer_keys_are_fields_of_the_installed_transformers() -> None:
    """The keys written from transformers' side are fields of Seq2SeqTrainingArguments as installed (transformers
    5.x here), not only of the 5.6.0 copy the pinned list was read from."""
    transformers = pytest.importorskip("transformers")
    live = {f.name for f in dataclasses.fields(transformers.Seq2SeqTrainingArguments)}
    pinned = known_sections(llamafactory.KEYS_FILE)
    for case in CASES:
        written = set(cfg(case)) & pinned["TrainingArguments"]
        lf_own = {"overwrite_output_dir", "ray_num_workers"}
        assert written - lf_own <= live, written - live


@pytest.mark.parametrize("case", list(CASES))
def test_micro_batch_times_accumulation_times_dp_is_the_global_batch(case: str) -> None:
    run, c = planned_run(rec(case)), cfg(case)
    assert c["per_device_train_batch_size"] * c["gradient_accumulation_steps"] * run.dp == run.global_batch
    assert c["cutoff_len"] == run.seq
    for f in bundle(case).files:
        if f.name == "ds_config.json":
            ds = json.loads(f.text)
            assert c["deepspeed"] == "ds_config.json" and ds["zero_optimization"]["stage"] == run.zero
            assert ds["train_batch_size"] == run.global_batch
            assert ds["gradient_accumulation_steps"] == c["gradient_accumulation_steps"]


def test_methods_follow_the_task() -> None:
    q = cfg("llamafactory-0.9.5-qlora-local")
    assert (q["finetuning_type"], q["quantization_bit"], q["stage"]) == ("lora", 4, "sft")
    assert q["lora_rank"] == planned_run(rec("llamafactory-0.9.5-qlora-local")).lora_rank
    f = cfg("llamafactory-0.9.5-zero3-slurm")
    assert f["finetuning_type"] == "full" and "lora_rank" not in f and "quantization_bit" not in f
    run = planned_run(rec("llamafactory-0.9.5-zero3-slurm"))
    assert f.get("disable_gradient_checkpointing", False) == (run.recompute == "none")


def test_multi_node_launcher_environment() -> None:
    cmd = bundle("llamafactory-0.9.5-zero3-slurm").launch.commands[0]
    assert cmd.startswith("FORCE_TORCHRUN=1 NPROC_PER_NODE=8 NNODES=2 NODE_RANK=$SLURM_NODEID MASTER_ADDR=$HEAD_ADDR")
    assert bundle("llamafactory-0.9.5-qlora-local").launch.commands[0] == "llamafactory-cli train llamafactory.yaml"


def test_refusals_name_the_nearest_plan() -> None:
    run = planned_run(rec("llamafactory-0.9.5-zero3-slurm"))
    with pytest.raises(RigsizeError, match="Nearest plan it can run: --framework llamafactory --zero 3") as err:
        llamafactory.config(dataclasses.replace(run, tp=2, dp=run.dp // 2))
    assert "\n" not in str(err.value)
    with pytest.raises(RigsizeError, match="the same with --recompute full"):
        llamafactory.config(dataclasses.replace(run, recompute="selective"))
