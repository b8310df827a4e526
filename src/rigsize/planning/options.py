"""Every user-settable option, declared once.

The CLI flags, their help text, the JSON/API keys (snake_case canonical, hyphenated
aliases accepted) and the README's option table are all generated from ``OPTIONS``.
Values are parsed and range-checked here, so the CLI, the Python API and (later) the
HTTP API reject the same inputs with the same one-line messages.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from rigsize.errors import InputError
from rigsize.numbers import parse_count, parse_duration, parse_quantity
from rigsize.planning import limits

Kind = Literal["count", "quantity", "fraction", "choice", "flag", "text", "duration"]


@dataclass(frozen=True)
class Option:
    """One option: its canonical name, type, range, default and help.

    ``default=None`` means "computed from the model, GPU or task"; the value applied
    is then echoed under ``assumptions`` in every result.
    """

    name: str
    kind: Kind
    help: str
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    commands: tuple[str, ...] = ("estimate",)
    tasks: str = "any"     # "training" or "inference": rejected for the other kind of task

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, value: Any) -> Any:
        """Convert and check one value (a CLI string or a JSON value)."""
        if value is None:
            return None
        if self.kind == "flag":
            if isinstance(value, bool):
                return value
            text = str(value).lower()
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off"):
                return False
            raise InputError("input.bad_choice", option=self.flag, value=value, choices="true, false")
        if self.kind == "choice":
            text = str(value).lower()
            if text not in self.choices:
                raise InputError("input.bad_choice", option=self.flag, value=value, choices=", ".join(self.choices))
            return text
        if self.kind == "text":
            return str(value)
        if self.kind == "duration":
            number: float = parse_duration(value, self.flag)
        else:
            number = parse_count(value, self.flag) if self.kind == "count" else parse_quantity(value, self.flag)
        if self.minimum is not None and number < self.minimum:
            raise InputError("input.too_small", option=self.flag, value=value, minimum=_fmt(self.minimum))
        if self.maximum is not None and number > self.maximum:
            raise InputError("input.too_large", option=self.flag, value=value, maximum=_fmt(self.maximum))
        return number


def _fmt(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


_PAR = ("estimate",)

OPTIONS: tuple[Option, ...] = (
    # --- what runs ---
    Option("task", "choice", "Job: inference, full fine-tuning, LoRA, QLoRA or pre-training.",
           "inference", ("inference", "finetune", "lora", "qlora", "pretrain")),
    Option("weights", "text", "Weight format (see 'rigsize formats'); default: the checkpoint's own "
           "(its config's torch_dtype; bf16 for bare sizes; a float32 checkpoint served by vLLM/SGLang in "
           "bf16; nf4 for qlora)."),
    Option("kv_dtype", "text", "KV-cache format: bf16, fp16, fp8, int8 (llama.cpp/Ollama: f16, q8_0, q4_0); "
           "default: the activation dtype the GPU supports (llama.cpp: f16)."),
    Option("offline", "flag", "Use only the local Hugging Face cache for Hub ids.", False),
    # --- on what ---
    Option("gpu", "text", "GPU name from 'rigsize gpus' (case-insensitive; default H100-SXM-80GB); local inference: "
           "'A,B' for a mixed llama.cpp layer split, 'cpu' for the host CPU alone."),
    Option("gpu_spec", "text", "A TOML/JSON file describing a GPU the catalog lacks (same fields as the catalog)."),
    Option("gpus", "count", "Total GPU count.", None, minimum=1, maximum=limits.MAX_GPUS),
    # --- how it runs ---
    Option("tp", "count", "Tensor-parallel size.", None, minimum=1, maximum=limits.MAX_GPUS, commands=_PAR),
    Option("pp", "count", "Pipeline-parallel size.", None, minimum=1, maximum=limits.MAX_GPUS, commands=_PAR),
    Option("dp", "count", "Data-parallel size.", None, minimum=1, maximum=limits.MAX_GPUS, commands=_PAR),
    Option("ep", "count", "Expert-parallel size (divides tp x dp x cp).", None, minimum=1, maximum=limits.MAX_GPUS),
    Option("cp", "count", "Context-parallel size.", None, minimum=1, maximum=limits.MAX_GPUS),
    Option("pp_first_layers", "count", "Training (Megatron): decoder layers on the first pipeline stage "
           "(--decoder-first-pipeline-num-layers); the rest split evenly.", None, minimum=1,
           maximum=limits.MAX_LAYERS, commands=_PAR, tasks="training"),
    Option("pp_last_layers", "count", "Training (Megatron): decoder layers on the last pipeline stage "
           "(--decoder-last-pipeline-num-layers).", None, minimum=1, maximum=limits.MAX_LAYERS, commands=_PAR,
           tasks="training"),
    Option("sp", "flag", "Megatron sequence parallelism (default: on when tp > 1 in training).", tasks="training"),
    Option("zero", "choice", "ZeRO stage.", "0", ("0", "1", "2", "3")),
    Option("offload", "choice", "Offload optimizer states or parameters to CPU memory.", "none",
           ("none", "optimizer", "params")),
    Option("recompute", "choice", "Activation recomputation.", "none", ("none", "selective", "full")),
    Option("framework", "choice", "Training framework whose memory accounting and documented defaults to "
           "follow (data/frameworks.toml).", None,
           ("hf", "trl", "deepspeed", "megatron", "fsdp", "torchtitan", "torchtune", "unsloth", "llamafactory"),
           tasks="training"),
    Option("optimizer_in_backward", "flag", "Training: step each parameter during backward and free its "
           "gradient (torchtune optimizer_in_bwd; needs one micro-batch per step); default: the framework's.",
           tasks="training"),
    Option("chunked_loss", "flag", "Training: cross-entropy over chunks of the logits (bf16 logits, fp32 one "
           "chunk at a time) instead of fp32 logits for the whole batch; default: the framework's.",
           tasks="training"),
    Option("adapter_dtype", "choice", "LoRA/QLoRA: dtype of the adapters, their gradients and AdamW moments; "
           "default: the framework's (PEFT: fp32).", None, ("bf16", "fp32"), tasks="training"),
    Option("activation_offload", "flag", "Training: move saved activations to CPU memory as they are produced "
           "(torchtune, Unsloth); default: the framework's.", tasks="training"),
    Option("optimizer", "choice", "Optimizer.", "adamw", ("adamw", "adamw-8bit", "adamw-bf16"), tasks="training"),
    Option("precision", "choice", "Training: precision of the linear layers' GEMMs (fp8: Transformer Engine's FP8 "
           "recipe; attention and the lm_head stay bf16; MFU is then against the fp8 peak, as NeMo reports it).",
           "bf16", ("bf16", "fp8"), tasks="training"),
    # --- workload ---
    Option("batch", "count", "Concurrent sequences (inference) or micro-batch (training).", None,
           minimum=1, maximum=limits.MAX_BATCH),
    Option("seq", "count", "Sequence length in tokens (inference: prompt + output).", None,
           minimum=1, maximum=limits.MAX_CONTEXT),
    Option("prompt", "count", "Prompt (input) tokens per request.", None, minimum=1, maximum=limits.MAX_CONTEXT, tasks="inference"),
    Option("output", "count", "Output tokens per request.", None, minimum=1, maximum=limits.MAX_CONTEXT, tasks="inference"),
    Option("images_per_request", "count", "Images in each request (vision-language models: Qwen2.5-VL, Qwen3-VL, "
           "Gemma 3, Llama 4, Mistral 3, GLM-4V, InternVL): each adds the model's own tokens per image at --image-size to the prompt.", None,
           minimum=0, maximum=1024, tasks="inference"),
    Option("image_size", "text", "Image width x height in pixels for --images-per-request, e.g. 1280x720 "
           "(default 1024x1024).", tasks="inference"),
    Option("micro_batch", "count", "Sequences per micro-batch per data-parallel rank.", None,
           minimum=1, maximum=limits.MAX_BATCH),
    Option("global_batch", "count", "Sequences per optimizer step across all ranks.", None,
           minimum=1, maximum=limits.MAX_BATCH),
    Option("lora_rank", "count", "LoRA rank.", 16, minimum=1, maximum=65536, tasks="training"),
    Option("lora_targets", "text", "Comma-separated LoRA target modules (default: all linear layers).", tasks="training"),
    Option("engine", "choice", "Inference engine whose speed assumptions to use (fitted per engine on "
           "measured H100/H200 runs); transformers: plain generate() (contiguous KV cache, no paging); llamacpp, "
           "ollama, mlx: local inference (GGUF or MLX weights, one request, layers on GPU and CPU).", "vllm",
           ("vllm", "sglang", "trtllm", "transformers", "llamacpp", "ollama", "mlx"), tasks="inference"),
    Option("engine_version", "text", "vLLM or SGLang version whose memory-budget rules to follow (e.g. 0.6.6, "
           "0.10.1, 0.21; SGLang 0.4.10 on; default: the newest modelled; a line such as 0.21 only where no rule "
           "changes inside it (0.5, 0.6, 0.8, 0.10, 0.11 are refused); a release newer than the newest read takes that one's rules, and says so); with --engine ollama the Ollama version whose default "
           "context applies (2048 before 0.6.7, 4096 before 0.15.5, then by GPU memory). rigsize launch: the "
           "engine version to write flags for, one the emitter pins (vLLM, SGLang: several; default the plan's, "
           "else the newest).", tasks="inference"),
    Option("gpu_layers", "count", "llama.cpp/Ollama: layers on the GPU (llama.cpp -ngl; the output layer counts "
           "as one); the rest stay in system RAM and run on the CPU (default: all).", None, minimum=0,
           maximum=limits.MAX_LAYERS + 1, tasks="inference"),
    Option("n_cpu_moe", "count", "llama.cpp: keep the MoE expert tensors of the first N layers in system RAM "
           "(--n-cpu-moe N).", None, minimum=0, maximum=limits.MAX_LAYERS, tasks="inference"),
    Option("host_cpu", "text", "Local inference, and training with --offload: the host CPU from the CPU catalog "
           "(its memory bandwidth serves offloaded layers and ZeRO-Offload's CPU optimizer step; default stated "
           "in assumptions)."),
    Option("host_ram", "text", "Local inference: system RAM (64GiB, 192GB or bytes; default stated in "
           "assumptions).", tasks="inference"),
    Option("flash_attn", "flag", "llama.cpp/Ollama: flash attention on or off (--flash-attn; default: the "
           "engine's).", tasks="inference"),
    Option("split_mode", "choice", "llama.cpp with several GPUs: split whole layers (layer) or each matrix by "
           "rows (row) across them (--split-mode).", None, ("layer", "row"), tasks="inference"),
    Option("max_model_len", "count", "Inference: the engine's context limit (vLLM --max-model-len; default: the "
           "model's max_position_embeddings).", None, minimum=16, maximum=limits.MAX_CONTEXT, tasks="inference"),
    Option("max_num_batched_tokens", "count", "Inference: tokens per engine step, the size of vLLM's profiling "
           "pass (default: the version's default for this GPU).", None, minimum=1, maximum=limits.MAX_CONTEXT,
           tasks="inference"),
    Option("max_num_seqs", "count", "Inference: sequences per engine step (default: the version's default).",
           None, minimum=1, maximum=limits.MAX_BATCH, tasks="inference"),
    Option("enforce_eager", "flag", "Inference: no CUDA graphs (vLLM --enforce-eager).", False, tasks="inference"),
    Option("sampler", "choice", "Inference, vLLM: the top-k/top-p sampler of its start-up warm-up, which sets "
           "part of the profiled peak: sort (PyTorch; no FlashInfer, or VLLM_USE_FLASHINFER_SAMPLER=0 before "
           "0.17), flashinfer, triton (default: what pip install of the version runs).", None,
           ("sort", "flashinfer", "triton"), tasks="inference"),
    Option("speculative", "choice", "Inference: speculative decoding with the model's own multi-token-prediction "
           "layers (vLLM --speculative-config method mtp, SGLang EAGLE over the NextN layer); for models with MTP "
           "layers (DeepSeek-V3/R1, Qwen3-Next with mtp_num_hidden_layers).", None, ("mtp",), tasks="inference"),
    Option("speculative_tokens", "count", "Inference, --speculative: draft tokens proposed per step (vLLM "
           "num_speculative_tokens; default 1).", None, minimum=1, maximum=16, tasks="inference"),
    Option("acceptance_rate", "fraction", "Inference, --speculative: probability that each draft token is "
           "accepted (default: a published figure where one exists, DeepSeek-V3 at 1 token: 0.85).", None,
           minimum=0.0, maximum=1.0, tasks="inference"),
    Option("efficiency", "text", "Override achievable-efficiency assumptions: KEY=VALUE[,KEY=VALUE] with keys "
           "compute, memory, nvfp4_memory, roofline_p, attention_compute, link, step_overhead_s, "
           "collective_latency_s, ttft_overhead_s; for "
           "--engine llamacpp / ollama / mlx: memory, compute, cpu_memory, cpu_compute, cpu_compute_vec_dot, pcie, "
           "token_overhead_s, layer_overhead_s, moe_layer_overhead_s."),
    Option("profile", "text", "A GPU profile written by 'rigsize calibrate': its measured efficiencies replace "
           "the fitted defaults."),
    Option("train_tokens", "quantity", "Training: tokens to train on (e.g. 15T); adds train_days and gpu_hours.",
           None, minimum=1, maximum=limits.MAX_TOKENS, tasks="training"),
    Option("network", "text", "Training: network between nodes, per GPU (ib-hdr-200x8, ib-ndr-400, roce-400x8, "
           "ib-xdr-800, opa-100x4, eth-100; default ib-ndr-400).", tasks="training"),
    Option("gpus_per_node", "count", "GPUs per node (default: the GPU's typical server).", None, minimum=1,
           maximum=1024),
    Option("vpp", "count", "Training: virtual pipeline stages per rank (interleaved 1F1B).", 1, minimum=1,
           maximum=1024, tasks="training"),
    Option("gpu_memory_utilization", "fraction", "Share of visible GPU memory the inference engine may use.",
           None, minimum=0.05, maximum=1.0, tasks="inference"),
    Option("mem_fraction_static", "fraction", "SGLang (--engine sglang): share of the memory free before the "
           "weights load that the weights and the KV pool may take (default: SGLang's own rule for the GPU, "
           "layout and version).", None, minimum=0.05, maximum=1.0, tasks="inference"),
    Option("kv_cache_free_gpu_memory_fraction", "fraction", "TensorRT-LLM (--engine trtllm): share of the memory "
           "left after the weights, the profiled activation peak and non-torch memory that the KV cache takes "
           "(default 0.9, trtllm-serve's).", None, minimum=0.05, maximum=1.0, tasks="inference"),
    # --- cost ---
    Option("pricing", "choice", "Price to pay: cloud on-demand, spot, 1-year or 3-year commitment, or owning "
           "(on-prem: needs --server-price).", "on-demand", ("on-demand", "spot", "1y", "3y", "on-prem")),
    Option("provider", "text", "Only instances of this cloud provider (aws, gcp, azure, oci, lambda, ...; see "
           "'rigsize clouds')."),
    Option("region", "text", "Only instances offered in this region (e.g. us-east-1)."),
    Option("prices", "text", "Your own prices: a TOML file of [[instance]] rows (schema in the README) or a "
           "SkyPilot catalog vms.csv; its rows replace or add to the packaged ones."),
    Option("max_price_age", "count", "Days after which a price is flagged stale.", 180, minimum=1, maximum=36500),
    Option("server_price", "quantity", "Owning: purchase price of one server of this plan's GPUs per node, USD.",
           None, minimum=1, maximum=1e9),
    Option("amortization_years", "quantity", "Owning: years over which the server is written off (default: "
           "data/ownership.toml).", None, minimum=0.1, maximum=50),
    Option("power_price", "quantity", "Owning: electricity price, USD per kWh (default: data/ownership.toml, "
           "US).", None, minimum=0.0, maximum=10),
    Option("pue", "quantity", "Owning: data-centre power usage effectiveness (default: data/ownership.toml).",
           None, minimum=1.0, maximum=5.0),
    Option("colo_per_kw_month", "quantity", "Owning: colocation price per kW of IT load per month, USD.", 0,
           minimum=0, maximum=1e6),
    Option("ops_per_server_year", "quantity", "Owning: operations cost per server per year, USD.", 0, minimum=0,
           maximum=1e9),
    Option("epochs", "quantity", "Training: passes over --dataset-tokens (instead of --train-tokens).", None,
           minimum=0.001, maximum=1e6, tasks="training"),
    Option("dataset_tokens", "quantity", "Training: tokens in the dataset (with --epochs).", None, minimum=1,
           maximum=limits.MAX_TOKENS, tasks="training"),
)

_PLAN = ("plan",)

# rigsize plan takes estimate's model, workload, precision and cost flags (a flag given pins
# that choice), and these, which set goals and the search.
PLAN_OPTIONS: tuple[Option, ...] = (
    Option("objective", "choice", "Rank plans by: cheapest (lowest $/h; training: lowest $ per "
           "trained token, $/h over tokens/s, which is the lowest run cost with --train-tokens), fastest "
           "(highest tokens/s), fewest-gpus, or pareto (the cost/speed front, by cost).", "cheapest",
           ("cheapest", "fastest", "fewest-gpus", "pareto", "lowest-latency", "cheapest-per-token"), commands=_PLAN),
    Option("ttft", "duration", "Goal: mean time to first token at most this (e.g. 200ms, 1.5).", None, minimum=1e-6,
           commands=_PLAN, tasks="inference"),
    Option("tpot", "duration", "Goal: mean time per output token at most this (e.g. 30ms).", None, minimum=1e-6,
           commands=_PLAN, tasks="inference"),
    Option("throughput", "quantity", "Goal: total output tokens per second at least this.", None, minimum=1e-6,
           commands=_PLAN, tasks="inference"),
    Option("users", "count", "Concurrent users (the same as --batch).", None, minimum=1, maximum=limits.MAX_BATCH,
           commands=_PLAN, tasks="inference"),
    Option("budget_per_hour", "quantity", "Limit: USD per hour at most this.", None, minimum=0, commands=_PLAN),
    Option("max_gpus", "count", "Limit: at most this many GPUs (default 4096 for pre-training, 64 otherwise).",
           None, minimum=1, maximum=limits.MAX_PLAN_GPUS, commands=_PLAN),
    Option("deadline_days", "quantity", "Goal (training, with --train-tokens): the run ends within this many days, "
           "allowance included.", None, minimum=1e-3, commands=_PLAN, tasks="training"),
    Option("allow_quant", "flag", "Search every weight format the GPU runs and an fp8 KV cache too.", False,
           commands=_PLAN),
    Option("any_count", "flag", "Search every GPU count, not only 1, 2, 4, 8 and whole nodes.", False,
           commands=_PLAN),
    Option("have", "text", "Hardware you have: '4x RTX-4090', '2x8 H100' (2 nodes of 8), '2x H100, 4x A100-80GB'.",
           commands=_PLAN),
    Option("dry_run", "flag", "Count the candidates without evaluating them.", False, commands=_PLAN),
    Option("explain", "flag", "Say why the top plan beat the runner-up.", False, commands=_PLAN),
    Option("top", "count", "Recommendations to return.", 3, minimum=1, maximum=100, commands=_PLAN),
)

_LAUNCH = ("launch",)

# rigsize launch takes the plan's flags (it plans first) or a saved plan, and these.
LAUNCH_OPTIONS: tuple[Option, ...] = (
    Option("plan_file", "text", "A saved 'rigsize plan --json' to launch instead of planning (with --rank or "
           "--scenario).", commands=_LAUNCH),
    Option("rank", "count", "Which recommendation of the plan to launch (1 = best).", 1, minimum=1, maximum=100,
           commands=_LAUNCH),
    Option("scenario", "text", "The overview's scenario to launch (low_latency, high_throughput, finetune, lora, "
           "qlora, pretrain).", commands=_LAUNCH),
    Option("target", "choice", "Where it runs: the bare commands, a SkyPilot task, a Slurm sbatch script or "
           "Kubernetes manifests (LeaderWorkerSet for inference, JobSet for training).",
           "local", ("local", "skypilot", "slurm", "k8s"), commands=_LAUNCH),
    Option("launcher", "choice", "Training: what starts one process per GPU (torchrun, accelerate launch, the "
           "deepspeed launcher, or srun under --target slurm); default: the framework's own (trl/fsdp: accelerate, "
           "the rest torchrun). A framework that cannot run under it is refused, naming the one it can.",
           None, ("torchrun", "accelerate", "deepspeed", "srun"), commands=_LAUNCH),
    Option("out_dir", "text", "Folder to write the files and rigsize-plan.json into (default: launch-<model>).",
           commands=_LAUNCH),
)

BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS + PLAN_OPTIONS + LAUNCH_OPTIONS}


def options_for(command: str) -> tuple[Option, ...]:
    if command == "launch":     # the plan's flags, then the launch's own
        return options_for("plan") + LAUNCH_OPTIONS
    if command == "plan":       # estimate's flags pin choices; the plan's own set goals and the search
        return tuple(o for o in OPTIONS if "estimate" in o.commands) + PLAN_OPTIONS
    return tuple(o for o in OPTIONS if command in o.commands)


def canonical_key(key: str) -> str:
    """``"kv-dtype"`` and ``"kv_dtype"`` both name ``kv_dtype``."""
    return key.strip().lower().replace("-", "_")


def parse_options(raw: Mapping[str, Any], command: str = "estimate") -> dict[str, Any]:
    """Validate a mapping of option values (CLI strings or JSON values).

    Unknown keys are an error with a "did you mean"; values that are ``None`` are
    dropped (they mean "use the default").
    """
    known = {o.name: o for o in options_for(command)}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = canonical_key(key)
        option = known.get(name)
        if option is None:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise InputError("input.unknown_key", key=key, hint=hint)
        parsed = option.parse(value)
        if parsed is not None:
            out[name] = parsed
    return out


def markdown_table(command: str = "estimate") -> str:
    """The option reference for the README, generated from ``OPTIONS``."""
    lines = ["| flag | JSON key | type | default | help |", "|---|---|---|---|---|"]
    for o in options_for(command):
        kind = "/".join(o.choices) if o.choices else o.kind
        default = "computed" if o.default is None else str(o.default)
        lines.append(f"| `{o.flag}` | `{o.name}` | {kind} | {default} | {o.help} |")
    return "\n".join(lines)


if __name__ == "__main__":  # regenerate the README's option tables: estimate (default) or plan
    import sys

    print(markdown_table(sys.argv[1] if len(sys.argv) > 1 else "estimate"))
