"""``trtllm-serve`` for an inference plan, with its ``--extra_llm_api_options`` YAML where a setting has no flag.

Flags and YAML keys: TensorRT-LLM 1.2.x, pinned in data/launch/trtllm-1.2.1-serve-flags.txt (serve.py's click
options; llm_args.py's LlmArgs / KvCacheConfig fields; that file says which copy they were read from).
The PyTorch backend (serve.py's default) loads a Hugging Face checkpoint; it does not quantize at load, so
fp8 / nvfp4 weights mean a ModelOpt-quantized checkpoint.

- Parallelism: --tp_size x --pp_size GPUs in one server.  MoE experts split over --ep_size ranks inside the
  TP group (LlmArgs.moe_expert_parallel_size).  rigsize's dp x ep (attention replicated per rank, experts
  spread over all, as vLLM's EP = TP x DP) is TensorRT-LLM's attention data parallelism:
  --tp_size dp with enable_attention_dp (LlmArgs.enable_attention_dp) and --ep_size dp.
- Memory: --kv_cache_free_gpu_memory_fraction is the share of the memory *left after the weights and
  buffers* that the KV cache takes (serve.py help, KvCacheConfig.free_gpu_memory_fraction), not vLLM's
  share of the whole GPU; rigsize sizes the plan by that rule and writes the share it used.
"""

from __future__ import annotations

import math

from rigsize.launch.bundle import Launch, LaunchError, LaunchFile, command_line, known_sections
from rigsize.launch.plan import PlannedRun, check_servable, model_id

VERSION = "1.2.1"
FLAGS_FILE = f"trtllm-{VERSION}-serve-flags.txt"
PORT = 8000          # trtllm-serve's default --port (serve.py)
YAML_NAME = "extra_llm_api_options.yaml"
# --kv_cache_free_gpu_memory_fraction's default (serve.py) and KvCacheConfig's: the most rigsize writes
DEFAULT_FRACTION = 0.9
KV_DTYPE = {"bf16": "auto", "fp16": "auto", "fp8": "fp8"}      # KvCacheConfig.dtype ("auto" = the model's)
PREQUANTIZED = ("fp8", "fp8-block", "nvfp4")
DTYPE = {"bf16": "auto", "fp16": "float16"}                      # BaseLlmArgs.dtype ("auto" = the checkpoint's)


def sections(name: str = FLAGS_FILE) -> dict[str, frozenset[str]]:
    """The pinned file's ``[section]`` lists."""
    return known_sections(name)


def kv_fraction(run: PlannedRun) -> float:
    """The share the plan was sized with (rigsize sizes TensorRT-LLM by its own rule, memory.runtime._trtllm_engine:
    the KV pool is that share of the memory free after weights, activations and runtime buffers); for a plan file
    written before that rule, its KV pool over that free memory, floored to 3 decimals and capped at TensorRT-LLM's
    default 0.9."""
    if run.kv_free_fraction is not None:
        return float(run.kv_free_fraction)
    per, visible = run.per_gpu, run.memory_visible_bytes
    free = visible - per["weights"] - per["activations"] - per["overhead"]
    pool = (run.gpu_memory_utilization or DEFAULT_FRACTION) * visible - per["weights"] - per["activations"] - \
        per["overhead"]
    return min(DEFAULT_FRACTION, math.floor(pool / free * 1000) / 1000)


def _layout(run: PlannedRun) -> tuple[int, int, bool]:
    """(--tp_size, --ep_size, enable_attention_dp) for the plan, or a refusal naming the nearest plan."""
    gpus = run.tp * run.pp
    if run.nodes > 1:
        raise LaunchError(f"rigsize writes TensorRT-LLM {VERSION} for one node; this plan spans {run.nodes} "
                          "(trtllm-serve runs across nodes under mpirun/srun with trtllm-llmapi-launch). Nearest "
                          f"plan it can run: the same on --gpus {run.gpus_per_node}, or --engine vllm")
    if run.dp == 1:
        if run.ep > 1 and run.tp % run.ep:
            raise LaunchError(f"TensorRT-LLM splits experts inside the TP group (--ep_size divides --tp_size); "
                              f"this plan has tp={run.tp} ep={run.ep}. Nearest plan it can run: --ep {run.tp}")
        return run.tp, run.ep, False
    if run.ep == run.dp and run.tp == 1 and run.pp == 1:      # attention DP, experts over all ranks
        return run.dp, run.dp, True
    raise LaunchError(f"trtllm-serve is one model replica (data parallelism only as attention DP of an MoE "
                      f"model with tp=1); this plan has tp={run.tp} dp={run.dp} ep={run.ep}. Nearest plan it can "
                      f"run: --gpus {gpus} --tp {run.tp} (one replica; run {run.dp} behind a load balancer)")


def extra_options(run: PlannedRun, attention_dp: bool) -> dict[str, object]:
    extra: dict[str, object] = {}
    if DTYPE.get(run.weights, "auto") != "auto":
        extra["dtype"] = DTYPE[run.weights]
    if attention_dp:
        extra["enable_attention_dp"] = True
    if KV_DTYPE[run.kv_dtype] != "auto":
        extra["kv_cache_config"] = {"dtype": KV_DTYPE[run.kv_dtype]}
    return extra


def yaml_text(extra: dict[str, object]) -> str:
    lines = []
    for key, value in extra.items():
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines += [f"  {k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in value.items()]
        else:
            lines.append(f"{key}: {str(value).lower() if isinstance(value, bool) else value}")
    return "\n".join(lines) + "\n"


def emit(run: PlannedRun, head_addr: str = "$HEAD_ADDR", node_rank: str = "$NODE_RANK") -> Launch:
    if run.task == "inference" and run.weights not in (*PREQUANTIZED, *DTYPE):
        raise LaunchError(f"TensorRT-LLM {VERSION}'s PyTorch backend loads bf16/fp16 or ModelOpt fp8/nvfp4 "
                          f"checkpoints in rigsize's list, not {run.weights}. Nearest plan it can run: the same "
                          "with --weights fp8")
    check_servable(run, "trtllm", VERSION, KV_DTYPE, set(PREQUANTIZED) | set(DTYPE), "--kv-dtype fp8 or bf16")
    if run.speculative_tokens:
        raise LaunchError("trtllm-serve takes MTP speculative decoding from speculative_config in its "
                          "--extra_llm_api_options YAML, a key rigsize does not write yet. Nearest plan that launches: "
                          "the same with --engine vllm or --engine sglang")
    tp, ep, attention_dp = _layout(run)
    argv = ["trtllm-serve", model_id(run), "--backend", "pytorch", "--tp_size", str(tp), "--pp_size", str(run.pp)]
    if ep > 1:
        argv += ["--ep_size", str(ep)]
    for flag, value in (("--max_batch_size", run.max_num_seqs), ("--max_num_tokens", run.max_num_batched_tokens),
                        ("--max_seq_len", run.max_model_len)):
        if value is not None:
            argv += [flag, str(value)]
    argv += ["--kv_cache_free_gpu_memory_fraction", f"{kv_fraction(run):g}", "--host", "0.0.0.0", "--port", str(PORT)]
    files, notes = [], []
    extra = extra_options(run, attention_dp)
    if extra:
        files.append(LaunchFile(YAML_NAME, yaml_text(extra)))
        argv += ["--extra_llm_api_options", YAML_NAME]
    if run.weights in PREQUANTIZED:
        notes.append(f"serve a ModelOpt {run.weights} checkpoint of {run.model} (hf_quant_config.json): "
                     "TensorRT-LLM's PyTorch backend does not quantize at load")
    return Launch("trtllm", VERSION, (command_line(argv),), files=tuple(files), notes=tuple(notes),
                  argv=(tuple(argv),), setup=f"pip install tensorrt-llm=={VERSION}")
