"""Megatron-LM ``pretrain_gpt.py`` arguments under ``torchrun`` for a Megatron plan.

Flags: Megatron-LM core_v0.19.0's parser (megatron/training/arguments.py add_megatron_arguments), pinned in
data/launch/megatron-core_v0.19.0-flags.txt; torchrun's in torchrun-2.13.0-flags.txt.  The model's shape
comes from its config (Hugging Face names -> Megatron's: num_hidden_layers -> --num-layers, ...).  ZeRO-1
is Megatron's distributed optimizer (--use-distributed-optimizer); ZeRO-2/3 and CPU offload are not
Megatron's.  Data, tokenizer and optimizer arguments are left to the user (rigsize does not size them).
"""

from __future__ import annotations

from rigsize.launch import launchers
from rigsize.launch.bundle import Launch, LaunchError, LaunchFile, command_line
from rigsize.launch.plan import PlannedRun

VERSION = "core_v0.19.0"
FLAGS_FILE = f"megatron-{VERSION}-flags.txt"
TORCHRUN_FLAGS_FILE = "torchrun-2.13.0-flags.txt"
MASTER_PORT = 29500     # torchrun's default --master-port
LAUNCHERS = ("torchrun",)   # rigsize writes pretrain_gpt.py under torchrun only (srun wraps it per node on Slurm)


def _shape(run: PlannedRun) -> list[str]:
    from rigsize.model.inputs import resolve_model

    cfg = resolve_model(run.model, offline=True).config
    heads, kv = cfg["num_attention_heads"], cfg.get("num_key_value_heads") or cfg["num_attention_heads"]
    out = ["--num-layers", str(cfg["num_hidden_layers"]), "--hidden-size", str(cfg["hidden_size"]),
           "--ffn-hidden-size", str(cfg["intermediate_size"]), "--num-attention-heads", str(heads),
           "--max-position-embeddings", str(cfg.get("max_position_embeddings") or run.seq)]
    if kv != heads:
        out += ["--group-query-attention", "--num-query-groups", str(kv)]
    return out


def megatron_args(run: PlannedRun) -> list[str]:
    if run.task not in ("pretrain", "finetune"):
        raise LaunchError(f"Megatron-LM trains all weights; this is a {run.task} plan. Nearest: rigsize launch "
                          f"{run.model} --task {run.task} --framework hf")
    if run.zero > 1 or run.offload != "none":
        raise LaunchError(f"Megatron-LM shards optimizer states only (--use-distributed-optimizer, like ZeRO-1); "
                          f"this plan has --zero {run.zero} --offload {run.offload}. Nearest plan it can run: "
                          f"--framework megatron --zero 1 --offload none, or --framework deepspeed")
    micro = run.micro_batch or 1
    args = ["--tensor-model-parallel-size", str(run.tp), "--pipeline-model-parallel-size", str(run.pp),
            "--context-parallel-size", str(run.cp), "--expert-model-parallel-size", str(run.ep),
            "--micro-batch-size", str(micro), "--global-batch-size", str(run.global_batch or micro * run.dp),
            "--seq-length", str(run.seq), "--bf16"]
    if run.vpp > 1:
        if run.num_hidden_layers % (run.pp * run.vpp):
            raise LaunchError(f"{run.num_hidden_layers} layers do not split into pp={run.pp} x vpp={run.vpp} "
                              "virtual stages. Nearest plan it can run: --vpp 1")
        args += ["--num-layers-per-virtual-pipeline-stage", str(run.num_hidden_layers // (run.pp * run.vpp))]
    if run.sp and run.tp > 1:
        args.append("--sequence-parallel")
    if run.recompute == "selective":
        args += ["--recompute-granularity", "selective"]
    elif run.recompute == "full":      # every layer recomputed from its input (arguments.py help)
        args += ["--recompute-granularity", "full", "--recompute-method", "uniform", "--recompute-num-layers", "1"]
    if run.zero == 1:
        args.append("--use-distributed-optimizer")
    return _shape(run) + args


def emit(run: PlannedRun, head_addr: str = "$HEAD_ADDR", node_rank: str = "$NODE_RANK",
         launcher: str = "torchrun") -> Launch:
    args = megatron_args(run)
    argv = [*launchers.torchrun(run, head_addr, node_rank), "pretrain_gpt.py", *args, "$DATA_ARGS"]
    script = "#!/usr/bin/env bash\n# Megatron-LM " + VERSION + ": run from a Megatron-LM checkout.\n" \
             "# DATA_ARGS: --data-path, --tokenizer-type/--tokenizer-model, --lr, --train-iters ... (not sized by rigsize)\n" \
             "set -euo pipefail\n" + command_line(argv) + "\n"
    notes = ["DATA_ARGS: data, tokenizer and optimizer arguments (not sized by rigsize)"]
    if run.nodes > 1:
        notes.append(f"run on each of the {run.nodes} nodes with NODE_RANK and HEAD_ADDR set")
    command = "cd Megatron-LM && " + command_line(argv)
    return Launch("megatron", VERSION, (command,), files=(LaunchFile("train_megatron.sh", script, True),),
                  notes=tuple(notes), argv=(tuple(argv),),
                  setup=f"git clone --branch {VERSION} https://github.com/NVIDIA/Megatron-LM", launcher=launcher,
                  launcher_words=argv.index("pretrain_gpt.py"))
