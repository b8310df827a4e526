"""``ds_config.json`` for a DeepSpeed (ZeRO) plan.

Keys: DeepSpeed 0.19.8, pinned in data/launch/deepspeed-0.19.8-keys.txt (deepspeed/runtime/constants.py,
runtime/zero/config.py, runtime/zero/offload_config.py); tests also load the file with DeepSpeed's own
``DeepSpeedConfig``.  DeepSpeed requires train_batch_size = micro batch x accumulation x data-parallel
size (runtime/config.py, _batch_assertion).  ZeRO shards over data-parallel ranks only: a plan with tensor
or pipeline parallelism is Megatron's.
"""

from __future__ import annotations

import json
from typing import Any

from rigsize.launch.bundle import LaunchError
from rigsize.launch.plan import PlannedRun

VERSION = "0.19.8"
KEYS_FILE = f"deepspeed-{VERSION}-keys.txt"


def accumulation(run: PlannedRun) -> int:
    micro, total = run.micro_batch or 1, run.global_batch or (run.micro_batch or 1) * run.dp
    if total % (micro * run.dp):
        raise LaunchError(f"global batch {total} is not a whole number of micro-batches of {micro} on {run.dp} "
                          f"data-parallel ranks. Nearest plan it can run: --global-batch {micro * run.dp}")
    return total // (micro * run.dp)


def ds_config(run: PlannedRun) -> dict[str, Any]:
    if run.tp > 1 or run.pp > 1 or run.cp > 1:
        raise LaunchError(f"DeepSpeed ZeRO shards over data parallelism only; this plan has tp={run.tp} pp={run.pp} "
                          f"cp={run.cp}. Nearest plan it can run: --framework deepspeed --zero 3 on the same "
                          f"{run.gpus} GPUs, or --framework megatron")
    zero: dict[str, Any] = {"stage": run.zero}
    if run.offload != "none":
        if run.zero < 2 or (run.offload == "params" and run.zero < 3):
            raise LaunchError(f"DeepSpeed offloads the optimizer from ZeRO stage 2 and parameters at stage 3; "
                              f"this plan has --zero {run.zero} --offload {run.offload}. Nearest plan it can run: "
                              f"the same with --zero 3")
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
        if run.offload == "params":
            zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    micro = run.micro_batch or 1
    return {"train_batch_size": micro * accumulation(run) * run.dp, "train_micro_batch_size_per_gpu": micro,
            "gradient_accumulation_steps": accumulation(run), "bf16": {"enabled": run.weights != "fp16"},
            "zero_optimization": zero}


def ds_config_text(run: PlannedRun) -> str:
    return json.dumps(ds_config(run), indent=2) + "\n"


def keys_of(cfg: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys of a ds_config (sections and leaves), for checking against the pinned key list."""
    out = []
    for k, v in cfg.items():
        out.append(prefix + k)
        if isinstance(v, dict):
            out += keys_of(v, prefix + k + ".")
    return out
