"""``llama-server`` for a local inference plan (llama.cpp), and what the local emitters share.

Flags: llama-server's usage table at the pinned commit (data/launch/llama-server-00dc8057-flags.txt,
tools/server/README.md, generated from common/arg.cpp).  The GGUF file is made from the Hugging Face
checkpoint with llama.cpp's own converter and quantizer (convert_hf_to_gguf.py --outtype f16, then
llama-quantize to the planned type); every value written is the plan's own: -ngl, -c (the KV cells
rigsize sized), the cache types and flash attention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rigsize.launch.bundle import Launch, LaunchError, command_line, known_flags
from rigsize.launch.plan import PlannedRun, model_id

VERSION = "00dc8057"
FLAGS_FILE = f"llama-server-{VERSION}-flags.txt"
PORT = 8080
# rigsize weight format -> llama-quantize type name (tools/quantize/quantize.cpp QUANT_OPTIONS)
QUANT_TYPE = {"q8_0": "Q8_0", "q6_k": "Q6_K", "q5_k_m": "Q5_K_M", "q5_k_s": "Q5_K_S", "q4_k_m": "Q4_K_M",
              "q4_k_s": "Q4_K_S", "q3_k_m": "Q3_K_M",
              "q2_k": "Q2_K", "q4_0": "Q4_0", "iq4_xs": "IQ4_XS", "iq4_nl": "IQ4_NL"}
DENSE = {"fp16": "f16", "bf16": "bf16", "fp32": "f32"}
# rigsize KV format -> --cache-type-k/-v values
CACHE_TYPE = {"fp16": "f16", "bf16": "bf16", "fp32": "f32", "q8_0": "q8_0", "q4_0": "q4_0"}


@dataclass(frozen=True)
class LocalRun:
    """The local settings of a planned run, read from the plan's inputs and memory block."""

    engine: str
    n_ctx: int
    gpu_layers: int | None          # None: every layer
    n_layer: int
    flash_attn: bool | None
    kv: str
    split_mode: str | None
    n_cpu_moe: int | None
    gpus: int


def local_run(run: PlannedRun, engine: str) -> LocalRun:
    inputs: dict[str, Any] = run.record.get("inputs", {})
    if run.task != "inference":
        raise LaunchError(f"{engine} serves models; this is a {run.task} plan. Nearest plan {engine} can run: "
                          f"rigsize launch {run.model} --task inference --engine {engine}")
    if run.engine != engine:
        raise LaunchError(f"this plan was sized for {run.engine}, not {engine} (memory and speed differ). Nearest "
                          f"plan {engine} can run: rigsize launch {run.model} --task inference --engine {engine}")
    n_ctx = run.max_model_len
    if not n_ctx:
        raise LaunchError("the plan records no context size (memory.max_model_len); plan again with this rigsize")
    return LocalRun(engine=engine, n_ctx=int(n_ctx), gpu_layers=inputs.get("gpu_layers"),
                    n_layer=run.num_hidden_layers, flash_attn=inputs.get("flash_attn"), kv=run.kv_dtype,
                    split_mode=inputs.get("split_mode"), n_cpu_moe=inputs.get("n_cpu_moe"), gpus=run.gpus)


def gguf_name(run: PlannedRun) -> str:
    base = run.model.replace("/", "-")
    kind = QUANT_TYPE.get(run.weights) or DENSE.get(run.weights, run.weights)
    return f"{base}-{kind}.gguf"


def gguf_steps(run: PlannedRun) -> tuple[list[str], list[str]]:
    """The commands that make the planned GGUF file from the checkpoint, and notes."""
    if run.weights not in QUANT_TYPE and run.weights not in DENSE:
        raise LaunchError(f"llama.cpp loads GGUF types; {run.weights} is not one. Nearest plan llama.cpp can run: "
                          "the same with --weights q4_k_m")
    hub = model_id(run)
    f16 = f"{run.model.replace('/', '-')}-f16.gguf"
    out = gguf_name(run)
    steps = [f"huggingface-cli download {hub} --local-dir ./{run.model.replace('/', '-')}-hf"]
    if run.weights in DENSE:
        steps.append(command_line(["python", "convert_hf_to_gguf.py", f"./{run.model.replace('/', '-')}-hf",
                                   "--outtype", DENSE[run.weights], "--outfile", out]))
    else:
        steps.append(command_line(["python", "convert_hf_to_gguf.py", f"./{run.model.replace('/', '-')}-hf",
                                   "--outtype", "f16", "--outfile", f16]))
        steps.append(command_line(["llama-quantize", f16, out, QUANT_TYPE[run.weights]]))
    notes = [f"or download a ready {QUANT_TYPE.get(run.weights, run.weights)} GGUF of {hub} and name it {out}"]
    return steps, notes


def check_flags(argv: list[str], flags_file: str) -> None:
    """Every option in ``argv`` is in the pinned list (short flags included)."""
    known = known_flags(flags_file)
    bad = [a for a in argv if a.startswith("-") and not a[1:2].isdigit() and a.split("=", 1)[0] not in known]
    if bad:
        raise AssertionError(f"{bad} not in data/launch/{flags_file}")


def emit(run: PlannedRun, head_addr: str = "", node_rank: str = "") -> Launch:
    lr = local_run(run, "llamacpp")
    if lr.kv not in CACHE_TYPE:
        raise LaunchError(f"llama.cpp has no {lr.kv} KV cache (it takes f16, bf16, q8_0, q4_0). Nearest plan "
                          "llama.cpp can run: the same with --kv-dtype q8_0")
    steps, notes = gguf_steps(run)
    ngl = "all" if lr.gpu_layers is None or lr.gpu_layers > lr.n_layer else str(lr.gpu_layers)
    cpu_only = str(run.record.get("inputs", {}).get("gpu", "")).lower() in ("cpu", "none")
    argv = ["llama-server", "--model", gguf_name(run)]
    argv += ["--device", "none", "--n-gpu-layers", "0"] if cpu_only else ["--n-gpu-layers", ngl]
    argv += ["--ctx-size", str(lr.n_ctx), "--cache-type-k", CACHE_TYPE[lr.kv], "--cache-type-v", CACHE_TYPE[lr.kv]]
    if lr.flash_attn is not None:
        argv += ["--flash-attn", "on" if lr.flash_attn else "off"]
    elif lr.kv in ("q8_0", "q4_0"):
        argv += ["--flash-attn", "on"]
    if lr.n_cpu_moe:
        argv += ["--n-cpu-moe", str(lr.n_cpu_moe)]
    if lr.gpus > 1:
        argv += ["--split-mode", lr.split_mode or "layer"]
    argv += ["--fit", "off", "--port", str(PORT)]
    check_flags(argv, FLAGS_FILE)
    notes.append("--fit off: llama.cpp would otherwise shrink unset parameters to its own fit; the values "
                 "written are the ones rigsize sized")
    if lr.gpus > 1:
        notes.append(f"{lr.gpus} GPUs: llama.cpp splits by each device's free memory (--tensor-split to set it)")
    commands = (*steps, command_line(argv))
    return Launch("llama.cpp", VERSION, commands, notes=tuple(notes), argv=(tuple(argv),),
                  setup="build llama.cpp (cmake -B build -DGGML_CUDA=ON or -DGGML_METAL=ON; cmake --build build) "
                        f"at commit {VERSION}")
