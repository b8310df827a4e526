"""``python -m sglang.launch_server`` for an inference plan.

Flags: SGLang 0.5.23's parser, pinned in data/launch/sglang-0.5.23-flags.txt (sglang/srt/arg_groups/fields/,
registered by add_cli_args_from_dataclass), or an older pinned version's (``VERSIONS``, sglang/srt/server_args.py);
only flags in the chosen version's list are written.  Full names are written (--tp-size, not the --tp that argparse
accepts as an abbreviation).  --mem-fraction-static is the share of the memory free before the weights load
that the weights and the KV-cache pool may take (sglang_budget_rules.md sec. 1); rigsize writes the fraction
the plan was sized with (memory/runtime.py sglang_budget), so the launch holds the KV pool the plan sized.
"""

from __future__ import annotations

import math

from rigsize.launch.architectures import check_architecture
from rigsize.launch.bundle import Launch, LaunchError, command_line, flags_of, known_flags
from rigsize.launch.plan import PlannedRun, check_servable, model_id

VERSION = "0.5.23"           # the default: the newest on PyPI when written (2026-12-01)
# every version with a pinned flag list (data/launch/sglang-<version>-flags.txt), newest first.  The plan's
# memory depends on the version's budget era (memory/runtime.py sglang_era): launch/versions.py checks it.
VERSIONS = ("0.5.23", "0.5.5", "0.4.10.post2")
FLAGS_FILE = f"sglang-{VERSION}-flags.txt"
PORT = 30000         # SGLang's default --port (fields/serving.py)
# --kv-cache-dtype choices (fields/model.py, 0.5.23); --quantization choices (arg_groups/choices.py)
KV_DTYPE = {"bf16": "bf16", "fp8": "fp8_e4m3"}
# versions whose --kv-cache-dtype has no "bf16" (0.4.10.post2: choices auto, fp8_e5m2, fp8_e4m3 in
# server_args.py; 0.5.5 adds bf16): "auto", the model dtype, with --dtype bfloat16
KV_AUTO = ("0.4.10.post2",)
ONLINE_QUANT = {"fp8": "fp8"}
PREQUANTIZED = ("fp8-block", "int8", "gptq-int4", "awq-int4", "nvfp4")
DTYPE = {"bf16": "bfloat16", "fp16": "float16"}


def mem_fraction_static(run: PlannedRun) -> float:
    """The fraction the plan was sized with (SGLang's budget, memory/runtime.py sglang_budget: given, or SGLang's
    default for the GPU, layout and version, written explicitly so the launch holds what the plan sized).  A plan
    file written before rigsize modelled SGLang's budget has none: then (usable - activations - overhead) /
    visible, rounded down to 3 decimals."""
    if run.mem_fraction_static is not None:
        return float(run.mem_fraction_static)
    usable = (run.gpu_memory_utilization or 0.9) * run.memory_visible_bytes
    static = usable - run.per_gpu["activations"] - run.per_gpu["overhead"]
    return math.floor(static / run.memory_visible_bytes * 1000) / 1000


def flags_file(version: str) -> str:
    return f"sglang-{version}-flags.txt"


def emit(run: PlannedRun, head_addr: str = "$HEAD_ADDR", node_rank: str = "$NODE_RANK",
         version: str = VERSION) -> Launch:
    check_servable(run, "sglang", version, KV_DTYPE, set(ONLINE_QUANT) | set(PREQUANTIZED) | set(DTYPE),
                   "--kv-dtype bf16 or fp8")
    check_architecture(run, "sglang", version, VERSIONS, VERSION)
    argv = ["python", "-m", "sglang.launch_server", "--model-path", model_id(run),
            "--tp-size", str(run.tp), "--pp-size", str(run.pp), "--dp-size", str(run.dp)]
    if run.ep > 1:
        argv += ["--ep-size", str(run.ep)]
    if run.weights in DTYPE:
        argv += ["--dtype", DTYPE[run.weights]]
    if run.weights in ONLINE_QUANT:
        argv += ["--quantization", ONLINE_QUANT[run.weights]]
    kv = KV_DTYPE[run.kv_dtype]
    if version in KV_AUTO and run.kv_dtype == "bf16":
        if "--dtype" in argv and argv[argv.index("--dtype") + 1] != "bfloat16":
            raise LaunchError(f"sglang {version} has no bf16 KV cache beside float16 weights (its --kv-cache-dtype "
                              "auto is the model dtype). Nearest version that can: --engine-version 0.5.5")
        argv += [] if "--dtype" in argv else ["--dtype", "bfloat16"]
        kv = "auto"
    argv += ["--kv-cache-dtype", kv, "--mem-fraction-static", f"{mem_fraction_static(run):g}"]
    if run.max_model_len:
        argv += ["--context-length", str(run.max_model_len)]
    if run.speculative_tokens:
        # the checkpoint's own MTP layers: NEXTN, an alias of EAGLE that drafts with the target's NextN layers
        # (arg_groups/speculative_hook.py; the choices of --speculative-algorithm in 0.5.5's and 0.4.10.post2's
        # server_args.py hold it too), one chain (topk 1) of K steps, K + 1 tokens verified (with topk 1 SGLang
        # sets num_draft_tokens = num_steps + 1 itself, speculative_hook.py, 0.5.23 wheel)
        k = run.speculative_tokens
        argv += ["--speculative-algorithm", "NEXTN", "--speculative-num-steps", str(k), "--speculative-eagle-topk",
                 "1", "--speculative-num-draft-tokens", str(k + 1)]
    argv += ["--host", "0.0.0.0", "--port", str(PORT)]
    notes = []
    if run.weights in PREQUANTIZED:
        notes.append(f"serve a {run.weights} checkpoint of {run.model}: SGLang reads its quantization_config")
    if run.nodes > 1:
        argv += ["--nnodes", str(run.nodes), "--node-rank", node_rank, "--dist-init-addr", f"{head_addr}:5000"]
        notes.append(f"run the same command on each of the {run.nodes} nodes (HEAD_ADDR = node 0's address)")
    unknown = [f for f in flags_of(argv) if f not in known_flags(flags_file(version))]
    if unknown:
        raise AssertionError(f"{unknown} not in data/launch/{flags_file(version)}")
    return Launch("sglang", version, (command_line(argv),), notes=tuple(notes), argv=(tuple(argv),),
                  setup=f"pip install 'sglang[all]=={version}'")
