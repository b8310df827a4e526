"""Training launchers (issue 18): ``--launcher torchrun|accelerate|deepspeed|srun``, PyTorch FSDP through
Accelerate or torchrun, and torchtune's ``tune run`` overrides.  Golden files pinned to the versions; every flag
checked against the list pinned from that version (the launcher's words against the launcher's list, the
program's against the program's); the tools' own parsers where they install here (accelerate 1.15.0's launch
parser, DeepSpeed 0.19.8's runner and hostfile parser, transformers' TrainingArguments for fsdp_config); process
counts = GPUs and micro-batch x accumulation x dp = global batch.

Regenerate the goldens after a deliberate change: RIGSIZE_UPDATE_GOLDENS=1 pytest tests/launch.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from _golden import assert_golden, planned

from rigsize.errors import RigsizeError
from rigsize.launch import fsdp, launch, launchers, slurm, torchtune, trl
from rigsize.launch.bundle import flags_of, known_flags, known_sections
from rigsize.launch.plan import planned_run, select
from rigsize.planning.search import search

H100 = "H100-SXM-80GB"
# (case, model, plan options, target, launcher)
CASES = {
    "trl-1.16.0-lora-torchrun-local": ("qwen2-7b", dict(task="lora", gpu=H100, gpus=2, framework="hf"), "local",
                                       "torchrun"),
    "trl-1.16.0-zero3-deepspeed-1node-local": ("qwen2-7b", dict(task="finetune", gpu=H100, gpus=8,
                                               framework="deepspeed", zero="3", global_batch=32), "local",
                                               "deepspeed"),
    "trl-1.16.0-zero3-deepspeed-2node-k8s": ("qwen2-7b", dict(task="finetune", gpu=H100, gpus=16,
                                             framework="deepspeed", zero="3", global_batch=64), "k8s", "deepspeed"),
    "trl-1.16.0-zero3-srun-slurm": ("qwen2-7b", dict(task="finetune", gpu=H100, gpus=16, framework="deepspeed",
                                    zero="3", global_batch=64), "slurm", "srun"),
    "fsdp-1.16.0-full-shard-accelerate-local": ("qwen2-7b", dict(task="finetune", gpu=H100, gpus=8,
                                                framework="fsdp", global_batch=32), "local", None),
    "fsdp-1.16.0-zero2-recompute-torchrun-slurm": ("qwen2-7b", dict(task="finetune", gpu=H100, gpus=16,
                                                   framework="fsdp", zero="2", recompute="full", global_batch=64),
                                                   "slurm", "torchrun"),
    "fsdp-1.16.0-lora-srun-slurm": ("qwen2-7b", dict(task="lora", gpu=H100, gpus=2, framework="fsdp", zero="3"),
                                    "slurm", "srun"),
    "fsdp-1.16.0-2node-accelerate-skypilot": ("qwen2-7b", dict(task="finetune", gpu=H100, gpus=16,
                                              framework="fsdp", global_batch=64), "skypilot", "accelerate"),
    "torchtune-0.6.1-lora-2gpu-local": ("llama-3.1-8b", dict(task="lora", gpu=H100, gpus=2, framework="torchtune"),
                                        "local", None),
    "torchtune-0.6.1-full-1gpu-local": ("qwen2.5-3b", dict(task="finetune", gpu=H100, gpus=1,
                                        framework="torchtune"), "local", None),
    "torchtune-0.6.1-qlora-1gpu-skypilot": ("llama-3.1-8b", dict(task="qlora", gpu=H100, gpus=1,
                                            framework="torchtune"), "skypilot", None),
    "torchtune-0.6.1-full-2node-slurm": ("llama-3.1-8b", dict(task="finetune", gpu=H100, gpus=16,
                                         framework="torchtune", zero="3", recompute="full", global_batch=64,
                                         optimizer="adamw"),
                                         "slurm", "torchrun"),
}


def rec(case: str) -> dict:
    model, opts = CASES[case][:2]
    return planned(model, **opts)


def bundle(case: str):
    return launch(rec(case), target=CASES[case][2], launcher=CASES[case][3])


@pytest.mark.parametrize("case", list(CASES))
def test_golden(case: str) -> None:
    assert_golden(case, bundle(case))


def _program_flags(b) -> frozenset[str]:
    if b.launch.tool == "torchtune":
        return known_sections(torchtune.RECIPES_FILE)["flags"]
    names = known_flags(trl.FLAGS_FILE)
    if b.launch.launcher == "accelerate":        # trl sft hands the flags TRL does not know to accelerate launch
        names |= known_flags(trl.ACCELERATE_FLAGS_FILE)
    return names


@pytest.mark.parametrize("case", list(CASES))
def test_every_flag_is_in_the_pinned_list(case: str) -> None:
    b = bundle(case)
    argv = b.launch.argv[0]
    words = b.launch.launcher_words
    own = (known_sections(torchtune.RECIPES_FILE)["flags"] if b.launch.tool == "torchtune"
           else known_flags(launchers.FLAGS_FILES[b.launch.launcher]))
    assert not [f for f in flags_of(argv[:words]) if f not in own], (case, argv[:words])
    unknown = [f for f in flags_of(argv[words:]) if f not in _program_flags(b)]
    assert not unknown, (case, unknown)
    if b.target == "slurm":
        script = next(f.text for f in b.files if f.name == "job.sbatch")
        used = {line.split()[1].split("=")[0] for line in script.splitlines() if line.startswith("#SBATCH")}
        used |= {w.split("=")[0] for line in script.splitlines() if line.startswith("srun")
                 for w in line.split("bash -c")[0].split() if w.startswith("--")}
        assert used <= known_flags(slurm.FLAGS_FILE), used - known_flags(slurm.FLAGS_FILE)


def _val(argv, flag: str) -> int:
    for i, w in enumerate(argv):
        if w == flag:
            return int(argv[i + 1])
        if w.startswith(flag + "="):
            return int(w.split("=", 1)[1])
    raise KeyError(flag)


def processes(b) -> int:
    """How many processes the emitted command starts, read from the launcher's own flags."""
    argv, launcher = b.launch.argv[0], b.launch.launcher
    if b.launch.tool == "torchtune":
        return _val(argv, "--nproc_per_node") * _val(argv, "--nnodes") if "--nproc_per_node" in argv else 1
    if launcher == "torchrun":
        return _val(argv, "--nproc-per-node") * _val(argv, "--nnodes")
    if launcher == "deepspeed":
        return _val(argv, "--num_gpus") * (_val(argv, "--num_nodes") if "--num_nodes" in argv else 1)
    if launcher == "srun":
        return _val(argv, "--nodes") * _val(argv, "--ntasks-per-node")
    return _val(argv, "--num_processes") if "--num_processes" in argv else 1


@pytest.mark.parametrize("case", list(CASES))
def test_process_count_is_the_gpu_count(case: str) -> None:
    run = planned_run(rec(case))
    assert processes(bundle(case)) == run.gpus == run.nodes * run.gpus_per_node == run.dp


def _overrides(argv) -> dict[str, str]:
    return dict(w.split("=", 1) for w in argv if "=" in w and not w.startswith("-"))


@pytest.mark.parametrize("case", list(CASES))
def test_micro_batch_times_accumulation_times_dp_is_the_global_batch(case: str) -> None:
    run = planned_run(rec(case))
    b = bundle(case)
    argv = b.launch.argv[0]
    if b.launch.tool == "torchtune":
        o = _overrides(argv)
        micro, accum = int(o["batch_size"]), int(o["gradient_accumulation_steps"])
    else:
        micro, accum = _val(argv, "--per_device_train_batch_size"), _val(argv, "--gradient_accumulation_steps")
    assert micro * accum * processes(b) == run.global_batch
    if "global_batch" in CASES[case][1]:
        assert run.global_batch == CASES[case][1]["global_batch"]       # the batch asked for is the batch run


def test_srun_tasks_get_their_rank_from_slurm() -> None:
    """One task per GPU, each with torch.distributed's env:// variables from Slurm's own (srun(1))."""
    script = next(f.text for f in bundle("trl-1.16.0-zero3-srun-slurm").files if f.name == "job.sbatch")
    assert "#SBATCH --ntasks-per-node=8" in script
    (line,) = [x for x in script.splitlines() if x.startswith("srun")]
    inner = shlex.split(line)[-1]
    for var in ("RANK=$SLURM_PROCID", "LOCAL_RANK=$SLURM_LOCALID", "WORLD_SIZE=$SLURM_NTASKS",
                "MASTER_ADDR=$HEAD_ADDR", "MASTER_PORT=29500"):
        assert var in inner.split()
    assert "python -m trl.scripts.sft" in inner


def _substituted(argv) -> list[str]:
    """The argv as a node would run it (node rank 1, head 10.0.0.1), whichever platform's variables it names."""
    values = {"$NODE_RANK": "1", "$SLURM_NODEID": "1", "$JOB_COMPLETION_INDEX": "1", "$SKYPILOT_NODE_RANK": "1",
              "$HEAD_ADDR": "10.0.0.1"}
    out = []
    for w in argv:
        for var, value in values.items():
            w = w.replace(var, value)
        out.append(w)
    return out


@pytest.mark.parametrize("case", [c for c in CASES if CASES[c][3] == "deepspeed"])
def test_deepspeed_runner_parses_the_command_and_hostfile(case: str) -> None:
    runner = pytest.importorskip("deepspeed.launcher.runner")
    b, run = bundle(case), planned_run(rec(case))
    argv = _substituted(b.launch.argv[0])
    args = runner.parse_args(argv[1:])
    assert args.module and args.user_script == "trl.scripts.sft" and args.num_gpus == run.gpus_per_node
    hostfiles = [f for f in b.files if f.name == launchers.HOSTFILE]
    if run.nodes > 1:
        assert args.no_ssh and args.node_rank == 1 and args.num_nodes == run.nodes and args.hostfile == "hostfile"
        pool = runner._parse_hostfile(hostfiles[0].text.splitlines())
        assert list(pool.values()) == [run.gpus_per_node] * run.nodes
    else:
        assert not hostfiles and args.num_nodes == -1


@pytest.mark.parametrize("case", [c for c in CASES if c.startswith("fsdp") and bundle(c).launch.launcher == "accelerate"])
def test_accelerate_parses_the_fsdp_flags(case: str) -> None:
    """The flags trl sft leaves to accelerate launch (those TRL's parser does not know) parse with accelerate's
    own parser, into the plan's FSDP2 sharding; none of them is swallowed by TRL's parser."""
    launch_mod = pytest.importorskip("accelerate.commands.launch")
    run = planned_run(rec(case))
    extra = fsdp.accelerate_fsdp_flags(run) + launchers.accelerate_flags(run, "10.0.0.1", "1")
    trl_flags = known_flags(trl.FLAGS_FILE)
    assert not [f for f in flags_of(extra) if any(t.startswith(f) for t in trl_flags)]   # argparse prefixes too
    args = launch_mod.launch_command_parser().parse_args(extra + ["sft.py"])
    assert args.use_fsdp and str(args.fsdp_version) == "2"
    assert args.fsdp_reshard_after_forward == ("true" if run.zero == 3 else "false")
    assert args.fsdp_activation_checkpointing == ("true" if run.recompute == "full" else "false")
    assert args.num_processes == run.gpus and args.mixed_precision == "bf16"


@pytest.mark.parametrize("case", [c for c in CASES if c.startswith("fsdp") and
                                  bundle(c).launch.launcher in ("torchrun", "srun")])
def test_fsdp_config_builds_transformers_fsdp_plugin(case: str) -> None:
    transformers = pytest.importorskip("transformers")
    run = planned_run(rec(case))
    cfg = json.loads(next(f.text for f in bundle(case).files if f.name == fsdp.CONFIG_NAME))
    assert set(cfg) <= known_flags(fsdp.KEYS_FILE)
    args = transformers.TrainingArguments("out", fsdp=True, fsdp_config=dict(cfg))
    plugin = args.fsdp_plugin_args
    assert plugin["fsdp_version"] == 2 and plugin["reshard_after_forward"] == (run.zero == 3)
    assert plugin["activation_checkpointing"] == (run.recompute == "full")
    assert plugin.get("cpu_offload", False) == (run.offload == "params")


def test_fsdp_config_keys_are_the_ones_transformers_reads() -> None:
    """Each pinned key appears in TrainingArguments._process_fsdp_args of the installed transformers."""
    transformers = pytest.importorskip("transformers")
    import inspect

    source = inspect.getsource(transformers.TrainingArguments._process_fsdp_args)
    for key in known_flags(fsdp.KEYS_FILE):
        assert f'"{key}"' in source, key


def test_fsdp_offload_and_sharding_follow_the_plan() -> None:
    r = rec("fsdp-1.16.0-full-shard-accelerate-local")
    r["parallel"] = dict(r["parallel"], offload="params")
    argv = launch(r).launch.argv[0]
    assert argv[argv.index("--fsdp_offload_params") + 1] == "true"
    r["parallel"] = dict(r["parallel"], offload="none", zero=2)
    argv = launch(r).launch.argv[0]
    assert argv[argv.index("--fsdp_reshard_after_forward") + 1] == "false"
    assert argv[argv.index("--dtype") + 1] == "float32"     # FSDP's fp32 sharded parameters, as sized


def test_trl_loads_16_bit_weights_as_sized() -> None:
    """TRL 1.16.0 loads in float32 unless told (ModelConfig.dtype default 'float32'); hf/trl plans are sized with
    16-bit parameters, so every non-FSDP trl launch says --dtype bfloat16."""
    for case in [c for c in CASES if c.startswith("trl")]:
        argv = bundle(case).launch.argv[0]
        assert argv[argv.index("--dtype") + 1] == "bfloat16"


# --- torchtune -------------------------------------------------------------------------------------------

def test_torchtune_picks_the_config_its_header_names() -> None:
    """llama3_1/8B_lora.yaml's header: 'tune run --nproc_per_node 2 lora_finetune_distributed --config
    llama3_1/8B_lora' (torchtune 0.6.1)."""
    argv = bundle("torchtune-0.6.1-lora-2gpu-local").launch.argv[0]
    assert argv[:6] == ("tune", "run", "--nnodes", "1", "--nproc_per_node", "2")
    assert argv[6:9] == ("lora_finetune_distributed", "--config", "llama3_1/8B_lora")
    single = bundle("torchtune-0.6.1-qlora-1gpu-skypilot").launch.argv[0]
    assert single[2:5] == ("lora_finetune_single_device", "--config", "llama3_1/8B_qlora_single_device")


@pytest.mark.parametrize("case", [c for c in CASES if c.startswith("torchtune")])
def test_torchtune_overrides_are_the_configs_keys(case: str) -> None:
    b, run = bundle(case), planned_run(rec(case))
    argv = b.launch.argv[0]
    name = argv[argv.index("--config") + 1]
    (cfg,) = [c for c in torchtune.configs() if c.name == name]
    assert cfg.recipe == argv[argv.index("--config") - 1]
    o = _overrides(argv)
    assert set(o) <= cfg.keys
    assert o["enable_activation_checkpointing"] == str(run.recompute == "full")
    assert o["dtype"] == "bf16"
    if "tokenizer.max_seq_len" in o:
        assert int(o["tokenizer.max_seq_len"]) == run.seq
    if run.task in ("lora", "qlora"):
        assert int(o["model.lora_rank"]) == run.lora_rank
    if run.nodes > 1:       # without an endpoint tune run goes standalone (one node)
        assert argv[argv.index("--rdzv_endpoint") + 1] == "$HEAD_ADDR:29500"


def test_torchtune_optimizer_in_backward_as_planned() -> None:
    r = rec("torchtune-0.6.1-full-1gpu-local")
    o = _overrides(bundle("torchtune-0.6.1-full-1gpu-local").launch.argv[0])
    assert o["optimizer_in_bwd"] == str(bool(r["assumptions"].get("optimizer_in_backward")))


# --- refusals: one line each, naming what works -----------------------------------------------------------

REFUSALS = [
    ("trl-1.16.0-lora-torchrun-local", dict(launcher="srun"), "--target slurm"),
    ("trl-1.16.0-lora-torchrun-local", dict(launcher="mpirun"), "one of torchrun"),
    ("fsdp-1.16.0-full-shard-accelerate-local", dict(launcher="deepspeed"), "--launcher accelerate"),
    ("torchtune-0.6.1-lora-2gpu-local", dict(launcher="accelerate"), "--launcher torchrun"),
]


@pytest.mark.parametrize("case,kw,hint", REFUSALS)
def test_a_launcher_a_framework_cannot_run_under_is_refused(case: str, kw: dict, hint: str) -> None:
    with pytest.raises(RigsizeError) as err:
        launch(rec(case), target=CASES[case][2], **kw)
    assert hint in str(err.value) and "\n" not in str(err.value)


def test_launcher_on_an_inference_plan_is_refused() -> None:
    r = select(search("qwen2-7b", top=1, task="inference", gpu=H100, engine="vllm"))
    with pytest.raises(RigsizeError, match="--launcher is for training"):
        launch(r, launcher="torchrun")


@pytest.mark.parametrize("change,hint", [(dict(zero=1), "--zero 3"), (dict(recompute="selective"), "--recompute full"),
                                         (dict(offload="optimizer"), "--offload params")])
def test_fsdp_refuses_what_it_has_no_form_for(change: dict, hint: str) -> None:
    r = rec("fsdp-1.16.0-full-shard-accelerate-local")
    r["parallel"] = dict(r["parallel"], **change)
    with pytest.raises(RigsizeError) as err:
        launch(r)
    assert hint in str(err.value) and "\n" not in str(err.value)


def test_torchtune_without_a_config_names_a_preset_that_has_one() -> None:
    r = select(search("qwen3-8b", top=1, task="lora", gpu=H100, gpus=1, framework="torchtune"))
    with pytest.raises(RigsizeError) as err:
        launch(r)
    msg = str(err.value)
    assert "no lora_finetune_single_device config for Qwen/Qwen3-8B" in msg and "--framework torchtune" in msg
    named = msg.split("rigsize launch ")[1].split()[0]
    launch(select(search(named, top=1, task="lora", gpu=H100, gpus=1, framework="torchtune")))   # it runs


def test_cli_launcher_flag(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from rigsize.shells.cli import cli

    out = CliRunner().invoke(cli, ["launch", "qwen2-7b", "--task", "lora", "--gpu", H100, "--gpus", "2",
                                   "--framework", "hf", "--launcher", "torchrun", "--out-dir", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert "torchrun --nproc-per-node 2" in out.output
    assert json.loads((tmp_path / "rigsize-plan.json").read_text())["launcher"] == "torchrun"
    bad = CliRunner().invoke(cli, ["launch", "qwen2-7b", "--task", "lora", "--gpu", H100, "--framework", "hf",
                                   "--launcher", "mpirun", "--out-dir", str(tmp_path)])
    assert bad.exit_code != 0 and "Traceback" not in bad.output


@pytest.mark.parametrize("case", [c for c in CASES if CASES[c][2] in ("skypilot", "k8s")])
def test_platform_files_pass_their_schemas(case: str) -> None:
    """SkyPilot 0.14.1's task schema and JobSet v0.12.0's CRD schema (vendored) accept the wrapped launch."""
    yaml = pytest.importorskip("yaml")
    jsonschema = pytest.importorskip("jsonschema")
    from importlib import resources

    from rigsize.launch import k8s, skypilot

    b = bundle(case)
    name, file = (skypilot.SCHEMA_FILE, "task.yaml") if b.target == "skypilot" else (k8s.JOBSET_SCHEMA_FILE, "k8s.yaml")
    schema = json.loads(resources.files("rigsize.data").joinpath("launch", name).read_text())
    schema.pop("$comment")
    docs = [d for d in yaml.safe_load_all(next(f.text for f in b.files if f.name == file)) if d]
    for d in docs:
        if b.target == "skypilot" or d["kind"] == "JobSet":
            jsonschema.validate(d, schema)


@pytest.mark.parametrize("preset,task,gpus,config", [
    ("qwen2.5-7b", "lora", 2, "qwen2_5/7B_lora"), ("qwen2.5-7b", "lora", 1, "qwen2_5/7B_lora_single_device"),
    ("llama-3-8b", "lora", 2, "llama3/8B_lora"), ("gemma-2-9b", "qlora", 1, "gemma2/9B_qlora_single_device"),
    ("phi-3-mini-4k", "finetune", 4, "phi3/mini_full"), ("mistral-7b-v0.1", "lora", 2, "mistral/7B_lora"),
    ("llama-3.3-70b", "qlora", 8, "llama3_3/70B_qlora"), ("llama-2-7b", "finetune", 1, "llama2/7B_full_low_memory"),
])
def test_torchtune_config_per_preset(preset: str, task: str, gpus: int, config: str) -> None:
    """Presets map to the config torchtune names for that model (torchtune 0.6.1's recipes/configs tree)."""
    from dataclasses import replace

    from rigsize.model.inputs import presets

    run = replace(planned_run(rec("torchtune-0.6.1-lora-2gpu-local")), model=preset, hub_id=presets()[preset].hub_id,
                  task=task, gpus=gpus)
    assert torchtune.find_config(run).name == config


@pytest.mark.parametrize("case", [c for c in CASES if c.startswith("torchtune") or CASES[c][3] == "torchrun"])
def test_torchruns_own_parser_reads_the_command(case: str) -> None:
    """torch 2.13's torchrun parser (which tune run copies action by action, torchtune/_cli/run.py) reads the
    launcher words into the plan's nodes and processes and hands the rest to the program."""
    run_mod = pytest.importorskip("torch.distributed.run")
    b, run = bundle(case), planned_run(rec(case))
    argv = list(_substituted(b.launch.argv[0]))
    if b.launch.tool == "torchtune":
        if run.gpus == 1:
            pytest.skip("one GPU: tune run runs the recipe in process, no torchrun")
        argv = argv[2:]          # tune run's words: torchrun's
    else:
        argv = argv[1:]
    args = run_mod.get_args_parser().parse_args(argv)
    assert int(args.nproc_per_node) * int(args.nnodes) == run.gpus
    if b.launch.tool == "torchtune":
        assert args.training_script == torchtune.recipe_of(run) and args.training_script_args[0] == "--config"
        assert (args.rdzv_endpoint == "10.0.0.1:29500") == (run.nodes > 1)
    else:
        assert args.module and args.training_script == trl.SFT_MODULE


@pytest.mark.parametrize("framework, launcher, target", [("torchtune", None, "local"), ("trl", "torchrun", "local"),
                                                         ("trl", "deepspeed", "local"), ("fsdp", "srun", "slurm"),
                                                         ("trl", None, "skypilot")])
def test_gpus_that_do_not_fill_whole_nodes_are_refused(framework: str, launcher: str | None, target: str) -> None:
    """12 GPUs on nodes of 8: torchrun's world size is nproc-per-node x nnodes (16 here), the deepspeed
    hostfile gives every node the same slots, srun --ntasks-per-node and SkyPilot's NAME:COUNT the same
    count per node, so every per-node launch starts 16 processes for a plan sized at 12: refused, naming
    the whole-node counts either side."""
    r = select(search("llama-3.1-8b", task="finetune", gpu="H100-SXM-80GB", gpus=12, zero="3", framework=framework,
                      top=1))
    assert r["hardware"]["nodes"] == 2 and r["hardware"]["gpus_per_node"] == 8
    with pytest.raises(RigsizeError) as err:
        launch(r, target=target, launcher=launcher)
    text = str(err.value)
    assert "12 GPUs do not fill its 2 nodes of 8" in text and "--gpus 8 or --gpus 16" in text and "\n" not in text
