"""PyTorch FSDP for an ``--framework fsdp`` plan: TRL's ``sft`` (1.16.0) with FSDP2, under Accelerate (default)
or torchrun/srun.

- accelerate: ``trl sft ARGS --use_fsdp --fsdp_version 2 ...`` (trl sft is ``accelerate launch`` of
  trl/scripts/sft.py); the FSDP flags are accelerate 1.15.0's (accelerate-1.15.0-launch-flags.txt), with the
  values TRL ships in trl/accelerate_configs/fsdp2.yaml (fsdp_version 2, TRANSFORMER_BASED_WRAP,
  mixed_precision bf16) and the plan's sharding, recompute and offload.
- torchrun / srun: ``python -m trl.scripts.sft ARGS --fsdp --fsdp_config fsdp_config.json``; transformers'
  TrainingArguments builds the same plugin from fsdp_config (keys pinned in
  transformers-5.24.0-fsdp-config-keys.txt).

Mapping (accelerate launch's help for --fsdp_reshard_after_forward: a boolean under FSDP2):
ZeRO-3 = FULL_SHARD = reshard after forward; ZeRO-2 = SHARD_GRAD_OP = keep the gathered parameters until
backward; ZeRO-0/1 have no FSDP2 form.  --recompute full = FSDP's activation checkpointing of every wrapped
layer (and TRL's gradient_checkpointing off: transformers warns that both at once add an all-gather);
--offload params = fsdp_offload_params (parameters and gradients on the CPU, the optimizer steps there).
rigsize sizes full fine-tuning under FSDP with fp32 sharded parameters computed in bf16 (data/frameworks.toml,
fsdp.all), so the model loads in float32 (``--dtype float32``, TRL's default) under bf16 mixed precision; LoRA
with the frozen base in the model dtype (``--dtype bfloat16``) and PEFT's fp32 adapters.
"""

from __future__ import annotations

import json

from rigsize.launch import launchers, trl
from rigsize.launch.bundle import Launch, LaunchError, LaunchFile
from rigsize.launch.plan import PlannedRun

VERSION = trl.VERSION
LAUNCHERS = ("accelerate", "torchrun", "srun")
KEYS_FILE = "transformers-5.24.0-fsdp-config-keys.txt"
CONFIG_NAME = "fsdp_config.json"
WRAP = "TRANSFORMER_BASED_WRAP"       # trl/accelerate_configs/fsdp2.yaml


def check(run: PlannedRun) -> None:
    trl.check(run, frameworks=("fsdp",))
    if run.task == "qlora":
        raise LaunchError("rigsize writes FSDP for full and LoRA fine-tuning; QLoRA under FSDP needs 4-bit storage "
                          "in the FSDP dtype, which rigsize does not size. Nearest plan it can run: rigsize launch "
                          f"{run.model} --task qlora --framework hf")
    if run.zero not in (2, 3):
        raise LaunchError(f"FSDP2 shards gradients and optimizer states (ZeRO-2, SHARD_GRAD_OP) or everything "
                          f"(ZeRO-3, FULL_SHARD); this plan has --zero {run.zero}. Nearest plan it can run: the same "
                          "with --zero 3")
    if run.offload == "optimizer":
        raise LaunchError("FSDP offloads parameters and gradients together (the optimizer then steps on the CPU), "
                          "not the optimizer states alone. Nearest plan it can run: the same with --offload params")
    if run.recompute == "selective":
        raise LaunchError("FSDP's activation checkpointing recomputes whole layers; this plan has --recompute "
                          "selective. Nearest plan it can run: the same with --recompute full")


def fsdp_config(run: PlannedRun) -> dict[str, object]:
    """The fsdp_config of TrainingArguments (torchrun/srun)."""
    return {"version": 2, "reshard_after_forward": run.zero == 3, "auto_wrap_policy": WRAP,
            "activation_checkpointing": run.recompute == "full", "cpu_offload": run.offload == "params"}


def accelerate_fsdp_flags(run: PlannedRun) -> list[str]:
    def b(x: bool) -> str:
        return "true" if x else "false"
    return ["--use_fsdp", "--fsdp_version", "2", "--fsdp_reshard_after_forward", b(run.zero == 3),
            "--fsdp_auto_wrap_policy", WRAP, "--fsdp_activation_checkpointing", b(run.recompute == "full"),
            "--fsdp_offload_params", b(run.offload == "params"),
            "--mixed_precision", "fp16" if run.weights == "fp16" else "bf16"]


def emit(run: PlannedRun, head_addr: str = "$HEAD_ADDR", node_rank: str = "$NODE_RANK",
         launcher: str = "accelerate") -> Launch:
    check(run)
    # full fine-tuning: fp32 shards (data/frameworks.toml fsdp.all); LoRA: the frozen base as sized, in the
    # model dtype (memory.per_gpu._adapter_states), PEFT's adapters fp32 beside it, computed in bf16
    lora = run.task == "lora"
    args = trl.sft_args(run, checkpointing=False, dtype="bfloat16" if lora else "float32")
    files: list[LaunchFile] = []
    if launcher == "accelerate":
        argv, words = trl.launched(run, launcher, args, accelerate_fsdp_flags(run), head_addr, node_rank)
    else:
        files.append(LaunchFile(CONFIG_NAME, json.dumps(fsdp_config(run), indent=2) + "\n"))
        argv, words = trl.launched(run, launcher, [*args, "--fsdp", "--fsdp_config", CONFIG_NAME], [], head_addr,
                                   node_rank)
    notes = [*trl.node_notes(run, launcher), "DATASET: a Hugging Face dataset id or local dataset TRL can read",
             f"FSDP2 {'FULL_SHARD' if run.zero == 3 else 'SHARD_GRAD_OP'} over {run.dp} ranks, "
             + ("a bf16 frozen base with fp32 adapters" if lora else "fp32 parameters")
             + " computed in bf16, as rigsize sized it"]
    setup = f"pip install trl=={VERSION} peft" + (" transformers==5.24.0" if files else "")
    return Launch("trl", VERSION, (launchers.line(launcher, argv, words),), files=tuple(files), notes=tuple(notes),
                  argv=(tuple(argv),), setup=setup, launcher=launcher, launcher_words=words)
