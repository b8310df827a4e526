"""``torchrun ... -m torchtitan.train`` for a torchtitan plan (pre-training or full fine-tuning).

torchtitan 0.3.0 has no TOML job files any more: ``--module M --config C`` picks a config_registry function (a
model and its recipe, e.g. llama3:llama3_8b) and ``--section.key VALUE`` overrides go through tyro
(torchtitan/config/manager.py).  Flags, activation-checkpoint subcommands and the registry's configs are pinned
in data/launch/torchtitan-0.3.0-flags.txt, read from the released wheel's own parser
(tools/extract_torchtitan_flags.py).  A model is launched only where a registry config names its Hugging
Face checkpoint (hf_assets_path); torchtitan trains its own model definitions, not arbitrary checkpoints.

- Data parallelism: ZeRO-3 is FSDP2 (--parallelism.data-parallel-shard-degree dp); no ZeRO is DDP
  (--parallelism.data-parallel-replicate-degree dp); ZeRO-1/2 are not torchtitan's.  CPU offload
  (--training.enable-cpu-offload) moves parameters, gradients and optimizer states together.
- --training.global-batch-size / --training.local-batch-size give the accumulation
  (global / (local x dp), trainer.py); recompute none/selective/full is the activation-checkpoint subcommand.
"""

from __future__ import annotations

from rigsize.launch import deepspeed, launchers
from rigsize.launch.bundle import Launch, LaunchError, command_line, known_sections
from rigsize.launch.plan import PlannedRun, model_id

VERSION = "0.3.0"
FLAGS_FILE = f"torchtitan-{VERSION}-flags.txt"
TORCHRUN_FLAGS_FILE = "torchrun-2.13.0-flags.txt"
MASTER_PORT = 29500          # torchrun's default --master-port
AC = {"none": "none", "selective": "selective", "full": "full"}
LAUNCHERS = ("torchrun",)   # rigsize writes torchtitan.train under torchrun only (srun wraps it per node on Slurm)


def registry_config(run: PlannedRun) -> tuple[str, str]:
    """(module, config) of the registry function whose hf_assets_path is the plan's checkpoint."""
    hub = model_id(run)
    configs = {}
    for line in known_sections(FLAGS_FILE)["configs"]:
        name, _, asset = line.partition(" ")
        if asset and not name.split(":")[1].startswith("sft_"):
            configs[asset.lower()] = tuple(name.split(":"))
    found = configs.get(hub.rsplit("/", 1)[-1].lower())
    if not found:
        raise LaunchError(f"torchtitan {VERSION} trains its own model definitions and has no recipe for {hub} "
                          f"(it has {', '.join(sorted(configs))}). Nearest plan it can run: rigsize launch "
                          f"{run.model} --task {run.task} --framework megatron")
    return found


def titan_args(run: PlannedRun) -> list[str]:
    if run.task not in ("pretrain", "finetune"):
        raise LaunchError(f"torchtitan trains all weights; this is a {run.task} plan. Nearest: rigsize launch "
                          f"{run.model} --task {run.task} --framework hf")
    if run.zero in (1, 2) or (run.zero == 0 and run.offload != "none") or run.offload == "optimizer":
        raise LaunchError(f"torchtitan shards with FSDP2 (ZeRO-3, optional CPU offload of parameters, gradients and "
                          f"optimizer together) or replicates (DDP); this plan has --zero {run.zero} --offload "
                          f"{run.offload}. Nearest plan it can run: the same with --zero 3"
                          + (" --offload params" if run.offload != "none" else ""))
    if run.vpp > 1:
        raise LaunchError(f"rigsize writes torchtitan's default pipeline schedule (one stage per rank); this plan "
                          f"has vpp={run.vpp}. Nearest plan it can run: the same with --vpp 1")
    if (run.record.get("inputs") or {}).get("precision") == "fp8":
        raise LaunchError("rigsize writes torchtitan's bf16 recipes; this plan trains fp8 GEMMs. Nearest plan it can "
                          "run: the same with --precision bf16")
    module, config = registry_config(run)
    micro = run.micro_batch or 1
    deepspeed.accumulation(run)          # the global batch is whole micro-batches on every dp rank
    shard, replicate = (run.dp, 1) if run.zero == 3 else (1, run.dp)
    args = ["--module", module, "--config", config,
            "--parallelism.data-parallel-shard-degree", str(shard),
            "--parallelism.data-parallel-replicate-degree", str(replicate),
            "--parallelism.tensor-parallel-degree", str(run.tp),
            "--parallelism.pipeline-parallel-degree", str(run.pp),
            "--parallelism.context-parallel-degree", str(run.cp)]
    if run.ep > 1:      # 0.3.0's parser refuses CUDA graphs with the default all-to-all token dispatcher
        args += ["--parallelism.expert-parallel-degree", str(run.ep), "--training.disable-cuda-graphs"]
    args += ["--training.local-batch-size", str(micro),
             "--training.global-batch-size", str(run.global_batch or micro * run.dp),
             "--training.seq-len", str(run.seq)]
    if run.offload == "params":
        args.append("--training.enable-cpu-offload")
    return args + [f"activation-checkpoint:{AC[run.recompute]}"]


def emit(run: PlannedRun, head_addr: str = "$HEAD_ADDR", node_rank: str = "$NODE_RANK",
         launcher: str = "torchrun") -> Launch:
    args = titan_args(run)
    argv = [*launchers.torchrun(run, head_addr, node_rank), "-m", "torchtitan.train", *args]
    hub = model_id(run)
    notes = [f"tokenizer and config: torchtitan's scripts/download_hf_assets.py --repo_id {hub} --assets tokenizer "
             f"(into ./assets/hf/{hub.rsplit('/', 1)[-1]}, the registry config's hf_assets_path); data, optimizer and "
             "steps are the registry config's (override with --section.key)"]
    if run.nodes > 1:
        notes.append(f"run on each of the {run.nodes} nodes with NODE_RANK and HEAD_ADDR set")
    return Launch("torchtitan", VERSION, (command_line(argv),), notes=tuple(notes), argv=(tuple(argv),),
                  setup=f"pip install torchtitan=={VERSION}", launcher=launcher,
                  launcher_words=argv.index("torchtitan.train"))
