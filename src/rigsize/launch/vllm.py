"""``vllm serve`` for an inference plan.

Flags: vLLM 0.33.0's own parser, pinned in data/launch/vllm-0.33.0-flags.txt (vllm/engine/arg_utils.py,
EngineArgs.add_cli_args).  Expert parallelism is vLLM's switch, not a size: with --enable-expert-parallel
the MoE layers are split over EP = TP x DP ranks (vLLM docs, "Expert Parallel Deployment").  Several
nodes: one ``vllm serve`` per node with --nnodes / --node-rank / --master-addr (multiprocessing backend;
arg_utils.py checks that --nnodes divides DP x PP x TP).
"""

from __future__ import annotations

from rigsize.launch.bundle import Launch, LaunchError, command_line
from rigsize.launch.plan import PlannedRun, check_servable, model_id

VERSION = "0.33.0"
FLAGS_FILE = f"vllm-{VERSION}-flags.txt"
PORT = 8000          # vLLM's default --port (FrontendArgs.port)
# rigsize weight format -> vLLM --quantization for formats vLLM quantizes online from a bf16/fp16 checkpoint
# (QuantizationMethods in vllm/model_executor/layers/quantization/__init__.py, 0.33.0); pre-quantized
# checkpoints (gptq/awq/fp8-block/nvfp4/int8) carry quantization_config, which vLLM reads by itself.
ONLINE_QUANT = {"fp8": "fp8"}
PREQUANTIZED = ("fp8-block", "int8", "gptq-int4", "awq-int4", "nvfp4")
DTYPE = {"bf16": "bfloat16", "fp16": "float16"}
# rigsize KV format -> --kv-cache-dtype (CacheDType in vllm/config/cache.py, 0.33.0)
KV_DTYPE = {"bf16": "bfloat16", "fp16": "float16", "fp8": "fp8"}


def emit(run: PlannedRun, head_addr: str = "$HEAD_ADDR", node_rank: str = "$NODE_RANK") -> Launch:
    check_servable(run, "vllm", VERSION, KV_DTYPE, set(ONLINE_QUANT) | set(PREQUANTIZED) | set(DTYPE),
                   "--kv-dtype fp8")
    argv = ["vllm", "serve", model_id(run),
            "--tensor-parallel-size", str(run.tp), "--pipeline-parallel-size", str(run.pp),
            "--data-parallel-size", str(run.dp)]
    if run.ep > 1:
        if run.ep != run.tp * run.dp:
            raise LaunchError(f"vllm sets EP = TP x DP = {run.tp * run.dp}, not ep={run.ep}. Nearest plan vllm can "
                              f"run: the same with --ep {run.tp * run.dp}")
        argv.append("--enable-expert-parallel")
    if run.weights in DTYPE:
        argv += ["--dtype", DTYPE[run.weights]]
    if run.weights in ONLINE_QUANT:
        argv += ["--quantization", ONLINE_QUANT[run.weights]]
    argv += ["--kv-cache-dtype", KV_DTYPE[run.kv_dtype]]
    for flag, value in (("--max-model-len", run.max_model_len), ("--max-num-seqs", run.max_num_seqs),
                        ("--max-num-batched-tokens", run.max_num_batched_tokens),
                        ("--gpu-memory-utilization", run.gpu_memory_utilization)):
        if value is not None:
            argv += [flag, str(value)]
    if run.record.get("inputs", {}).get("images_per_request") == 0 and run.record["model"].get("params_vision"):
        # the text-only deployment the memory was sized for: vLLM then builds no vision tower
        argv += ["--limit-mm-per-prompt", '{"image": 0, "video": 0}']
    argv += ["--port", str(PORT)]
    notes = []
    if run.weights in PREQUANTIZED:
        notes.append(f"serve a {run.weights} checkpoint of {run.model}: vLLM reads its quantization_config")
    argvs = [argv]
    if run.nodes > 1:
        multi = argv + ["--nnodes", str(run.nodes), "--node-rank", node_rank, "--master-addr", head_addr]
        argvs = [multi]
        notes.append(f"run the same command on each of the {run.nodes} nodes, node rank 0 first "
                     "(HEAD_ADDR = node 0's address)")
    return Launch("vllm", VERSION, tuple(command_line(a) for a in argvs), notes=tuple(notes),
                  argv=tuple(tuple(a) for a in argvs), setup=f"pip install vllm=={VERSION}")
