"""--framework torchtitan (issue 18): torchrun -m torchtitan.train --module M --config C with --section.key overrides,
pinned to torchtitan 0.3.0; every flag, subcommand and registry config is in the list read from the released
wheel's own tyro parser (data/launch/torchtitan-0.3.0-flags.txt); the degrees multiply to the GPU count.

Regenerate the goldens after a deliberate change: RIGSIZE_UPDATE_GOLDENS=1 pytest tests/launch.
"""

from __future__ import annotations

import dataclasses

import pytest
from _golden import assert_golden, planned

from rigsize.errors import RigsizeError
from rigsize.launch import launch, torchtitan
from rigsize.launch.bundle import flags_of, known_flags, known_sections
from rigsize.launch.plan import planned_run, select
from rigsize.planning.search import search

H100 = "H100-SXM-80GB"
CASES = {
    "torchtitan-0.3.0-fsdp-local": ("llama-3.1-8b", dict(task="pretrain", gpu=H100, gpus=8, framework="torchtitan",
                                    zero="3"), "local"),
    "torchtitan-0.3.0-tp8-2node-slurm": ("llama-3.1-70b", dict(task="pretrain", gpu=H100, gpus=16, tp=8,
                                         framework="torchtitan", zero="3"), "slurm"),
    "torchtitan-0.3.0-moe-ep4-k8s": ("qwen3-30b-a3b", dict(task="pretrain", gpu=H100, gpus=8, ep=4,
                                     framework="torchtitan", zero="3"), "k8s"),
}


def rec(case: str) -> dict:
    model, opts = CASES[case][:2]
    return planned(model, **opts)


def bundle(case: str):
    return launch(rec(case), target=CASES[case][2])


def split(argv) -> tuple[list[str], list[str]]:
    """(torchrun's part, torchtitan's part) of the argv."""
    i = list(argv).index("torchtitan.train")
    return list(argv[:i]), list(argv[i + 1:])


@pytest.mark.parametrize("case", list(CASES))
def test_golden(case: str) -> None:
    assert_golden(case, bundle(case))


@pytest.mark.parametrize("case", list(CASES))
def test_every_flag_is_in_the_pinned_lists(case: str) -> None:
    pinned = known_sections(torchtitan.FLAGS_FILE)
    run_part, titan = split(bundle(case).launch.argv[0])
    assert set(flags_of(run_part)) <= known_flags(torchtitan.TORCHRUN_FLAGS_FILE)
    assert set(flags_of(titan)) <= pinned["flags"] | pinned["loader"], set(flags_of(titan)) - pinned["flags"]
    (sub,) = [a for a in titan if a.startswith("activation-checkpoint:")]
    assert sub.split(":")[1] in pinned["activation-checkpoint"]
    module, config = titan[titan.index("--module") + 1], titan[titan.index("--config") + 1]
    assert any(line.startswith(f"{module}:{config} ") for line in pinned["configs"])


@pytest.mark.parametrize("case", list(CASES))
def test_degrees_multiply_to_the_gpu_count_and_batches_divide(case: str) -> None:
    run = planned_run(rec(case))
    _, titan = split(bundle(case).launch.argv[0])

    def val(flag: str) -> int:
        return int(titan[titan.index(flag) + 1])
    dp = val("--parallelism.data-parallel-shard-degree") * val("--parallelism.data-parallel-replicate-degree")
    model_parallel = val("--parallelism.tensor-parallel-degree") * val("--parallelism.pipeline-parallel-degree") * \
        val("--parallelism.context-parallel-degree")
    assert dp * model_parallel == run.gpus
    assert val("--training.global-batch-size") % (val("--training.local-batch-size") * dp) == 0
    assert val("--training.global-batch-size") == run.global_batch and val("--training.seq-len") == run.seq
    assert titan[-1] == f"activation-checkpoint:{run.recompute}"


def test_registry_configs_name_their_checkpoints() -> None:
    """The recipe picked is the one whose hf_assets_path is the planned checkpoint (read from the wheel)."""
    assert torchtitan.registry_config(planned_run(rec("torchtitan-0.3.0-fsdp-local"))) == ("llama3", "llama3_8b")
    assert torchtitan.registry_config(planned_run(rec("torchtitan-0.3.0-moe-ep4-k8s"))) == ("qwen3", "qwen3_30b_a3b")


def test_expert_parallel_turns_off_cuda_graphs() -> None:
    _, titan = split(bundle("torchtitan-0.3.0-moe-ep4-k8s").launch.argv[0])
    assert "--training.disable-cuda-graphs" in titan and "--parallelism.expert-parallel-degree" in titan


def test_torchtitans_own_parser_accepts_the_overrides() -> None:
    """Where torchtitan 0.3.0 and tyro are installed (not in rigsize's test extras: its data stack is large)."""
    manager = pytest.importorskip("torchtitan.config.manager")
    _, titan = split(bundle("torchtitan-0.3.0-fsdp-local").launch.argv[0])
    cfg = manager.ConfigManager().parse_args(titan)
    assert cfg.parallelism.data_parallel_shard_degree == 8 and cfg.training.seq_len == planned_run(
        rec("torchtitan-0.3.0-fsdp-local")).seq


def test_refusals_name_the_nearest_plan() -> None:
    run = planned_run(rec("torchtitan-0.3.0-fsdp-local"))
    for changed, expect in ((dict(zero=1), "the same with --zero 3"), (dict(task="lora"), "--framework hf"),
                            (dict(vpp=2), "--vpp 1"), (dict(offload="optimizer"), "--zero 3 --offload params")):
        with pytest.raises(RigsizeError, match=expect) as err:
            torchtitan.titan_args(dataclasses.replace(run, **changed))
        assert "\n" not in str(err.value)
    other = select(search("qwen2-7b", task="pretrain", gpu=H100, gpus=8, framework="torchtitan", zero="3", top=1))
    with pytest.raises(RigsizeError, match="no recipe for Qwen/Qwen2-7B.*Nearest plan it can run: rigsize launch "
                                           "qwen2-7b --task pretrain --framework megatron"):
        launch(other)
