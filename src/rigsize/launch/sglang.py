"""``python -m sglang.launch_server`` for an inference plan.

Flags: SGLang 0.5.23's parser, pinned in data/launch/sglang-0.5.23-flags.txt (sglang/srt/arg_groups/fields/,
registered by add_cli_args_from_dataclass).  Full names are written (--tp-size, not the --tp that argparse
accepts as an abbreviation).  --mem-fraction-static is the share of GPU memory for the weights and the
KV-cache pool (fields/schedule.py help); activations and runtime overhead live outside it, so rigsize gives
it the plan's usable memory less the plan's activations and overhead: the same KV pool the plan sized.
"""

from __future__ import annotations

import math

from rigsize.launch.bundle import Launch, command_line
from rigsize.launch.plan import PlannedRun, check_servable, model_id

VERSION = "0.5.23"
FLAGS_FILE = f"sglang-{VERSION}-flags.txt"
PORT = 30000         # SGLang's default --port (fields/serving.py)
# --kv-cache-dtype choices (fields/model.py, 0.5.23); --quantization choices (arg_groups/choices.py)
KV_DTYPE = {"bf16": "bf16", "fp8": "fp8_e4m3"}
ONLINE_QUANT = {"fp8": "fp8"}
PREQUANTIZED = ("fp8-block", "int8", "gptq-int4", "awq-int4", "nvfp4")
DTYPE = {"bf16": "bfloat16", "fp16": "float16"}


def mem_fraction_static(run: PlannedRun) -> float:
    """(usable - activations - overhead) / visible, rounded down to 3 decimals (never above the plan's)."""
    usable = (run.gpu_memory_utilization or 0.9) * run.memory_visible_bytes
    static = usable - run.per_gpu["activations"] - run.per_gpu["overhead"]
    return math.floor(static / run.memory_visible_bytes * 1000) / 1000


def emit(run: PlannedRun, head_addr: str = "$HEAD_ADDR", node_rank: str = "$NODE_RANK") -> Launch:
    check_servable(run, "sglang", VERSION, KV_DTYPE, set(ONLINE_QUANT) | set(PREQUANTIZED) | set(DTYPE),
                   "--kv-dtype bf16 or fp8")
    argv = ["python", "-m", "sglang.launch_server", "--model-path", model_id(run),
            "--tp-size", str(run.tp), "--pp-size", str(run.pp), "--dp-size", str(run.dp)]
    if run.ep > 1:
        argv += ["--ep-size", str(run.ep)]
    if run.weights in DTYPE:
        argv += ["--dtype", DTYPE[run.weights]]
    if run.weights in ONLINE_QUANT:
        argv += ["--quantization", ONLINE_QUANT[run.weights]]
    argv += ["--kv-cache-dtype", KV_DTYPE[run.kv_dtype], "--mem-fraction-static", f"{mem_fraction_static(run):g}"]
    if run.max_model_len:
        argv += ["--context-length", str(run.max_model_len)]
    argv += ["--host", "0.0.0.0", "--port", str(PORT)]
    notes = []
    if run.weights in PREQUANTIZED:
        notes.append(f"serve a {run.weights} checkpoint of {run.model}: SGLang reads its quantization_config")
    if run.nodes > 1:
        argv += ["--nnodes", str(run.nodes), "--node-rank", node_rank, "--dist-init-addr", f"{head_addr}:5000"]
        notes.append(f"run the same command on each of the {run.nodes} nodes (HEAD_ADDR = node 0's address)")
    return Launch("sglang", VERSION, (command_line(argv),), notes=tuple(notes), argv=(tuple(argv),),
                  setup=f"pip install 'sglang[all]=={VERSION}'")
