"""The settings of a local inference job (llama.cpp, Ollama, MLX): every default resolved from
``data/local_engines.toml`` (each read from the engine's source at a pinned version) and echoed
under ``assumptions``; impossible combinations refused with one-line errors."""

from __future__ import annotations

from typing import Any

from rigsize.errors import InputError
from rigsize.hardware.gpus import GPU
from rigsize.memory import runtime
from rigsize.memory.llamacpp import ALL_LAYERS, GGML_ENGINES, LOCAL_ENGINES, Host, LocalSettings, data
from rigsize.model import formats
from rigsize.model.architecture import Architecture
from rigsize.model.formats import KVFormat, WeightFormat
from rigsize.planning.layout import TRAINING_TASKS
from rigsize.units import GiB

# Options only the local engines read, and the engines that read them.
LOCAL_ONLY = {"gpu_layers": GGML_ENGINES, "n_cpu_moe": ("llamacpp",), "flash_attn": GGML_ENGINES,
              "split_mode": ("llamacpp",), "host_cpu": LOCAL_ENGINES, "host_ram": LOCAL_ENGINES}
# vLLM's batching and memory-budget options, which no local engine has.
SERVING_ONLY = ("max_num_batched_tokens", "max_num_seqs", "enforce_eager", "gpu_memory_utilization",
                "mem_fraction_static", "tp", "pp",
                "dp", "ep", "cp")
DEFAULT_HOST_CPU = "RYZEN-9-9950X"       # an ASSUMED desktop host: two DDR5-5600 channels (data/cpus.toml)


def check_engine_options(opts: dict[str, Any]) -> None:
    """One-line refusals: local-engine options on a serving engine and the reverse."""
    engine = opts.get("engine") or "vllm"
    offload = opts.get("offload", "none") != "none"      # training with ZeRO-Offload reads the host CPU too
    training = opts.get("task") in TRAINING_TASKS
    for name, engines in LOCAL_ONLY.items():
        if name == "host_cpu" and offload:
            continue
        if name == "host_cpu" and training and opts.get(name) is not None:
            raise InputError("input.conflict", what="--host-cpu: training reads the host CPU only with --offload "
                             "optimizer|params (ZeRO-Offload's CPU step)")
        if opts.get(name) is not None and engine not in engines:
            flag = "--" + name.replace("_", "-")
            raise InputError("input.conflict", what=f"{flag} is a setting of --engine {' / '.join(engines)}, "
                             f"not {engine}")
    if engine in LOCAL_ENGINES:
        for name in SERVING_ONLY:
            if opts.get(name) not in (None, False):
                flag = "--" + name.replace("_", "-")
                raise InputError("input.conflict", what=f"{flag} is a serving-engine setting; --engine {engine} "
                                 "has no such option (use --gpus and --split-mode for several GPUs)")


def parse_ram(text: Any) -> int:
    """``--host-ram``: "64GiB" / "64G" (binary), "192GB" (decimal), "512MiB", or a byte count."""
    import re

    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*(b|[kmgt]i?b?)?\s*", str(text), flags=re.I)
    if not m:
        raise InputError("input.conflict", what=f"--host-ram '{text}': write e.g. 64GiB, 192GB or a byte count")
    unit = (m.group(2) or "b").lower()
    scale = 1 if unit == "b" else {"k": 1, "m": 2, "g": 3, "t": 4}[unit[0]]
    base = 1000 if unit.endswith("b") and "i" not in unit and unit != "b" else 1024
    value = float(m.group(1)) * (base ** scale if unit != "b" else 1)
    if not 2**30 <= value <= 2**44:
        raise InputError("input.conflict", what=f"--host-ram {text}: between 1 GiB and 16 TiB")
    return int(value)


def is_unified(gpu: GPU) -> bool:
    return bool(getattr(gpu, "unified_memory", False)) or getattr(gpu, "kind", "gpu") in ("apple", "apu", "cpu")


CPU_ONLY = ("cpu", "none")      # --gpu cpu: llama.cpp on the host CPU alone (-ngl 0, no GPU backend)


def cpu_device(opts: dict[str, Any], assumptions: dict[str, Any]) -> GPU:
    """The host CPU as the one compute device of a CPU-only run: its catalog bandwidth (measured where
    cited, else the channels x 8 B x MT/s peak) and FP32 rate, and the RAM as its memory."""
    name = opts.get("host_cpu") or DEFAULT_HOST_CPU
    row = _cpu(name, given=True)
    assert row is not None
    if "host_cpu" not in opts:
        assumptions["host_cpu"] = f"{row['name']} (assumed desktop host; give --host-cpu)"
    ram = parse_ram(opts["host_ram"]) if opts.get("host_ram") is not None else None
    if ram is None:
        ram = int(data()["host"]["default_ram_bytes"])
        assumptions["host_ram"] = f"{ram / GiB:.0f} GiB (assumed; give --host-ram)"
    measured = row.get("measured_bytes_per_second")
    bw = measured if isinstance(measured, (int, float)) else row["memory_bytes_per_second"]
    return GPU.model_validate({
        "name": row["name"], "kind": "cpu", "unified_memory": True, "gpu_wired_fraction": None,
        "vendor": row["vendor"], "architecture": row["architecture"], "memory_bytes": int(ram),
        "hbm_bytes_per_second": bw, "dense_flops": {"fp32": row.get("fp32_flops", "unknown")},
        "interconnect": {"kind": "none", "per_direction_bytes_per_second": "unknown"}, "gpus_per_node": 1,
        "tdp_watts": row.get("tdp_watts", "unknown"), "source": f"CPU catalog: {row['source']}",
        "as_of": row["as_of"], "notes": "the host CPU as the compute device (--gpu cpu)"})


def check_device(engine: str, gpu: GPU) -> None:
    kind = getattr(gpu, "kind", "gpu")
    if kind == "cpu" and engine == "mlx":
        raise InputError("input.conflict", what="--engine mlx runs on Apple silicon only; --gpu cpu runs "
                         "llama.cpp or Ollama on the host CPU")
    if engine == "mlx" and kind != "apple":
        raise InputError("input.conflict", what=f"--engine mlx runs on Apple silicon only (Metal); {gpu.name} is "
                         f"a {kind}; use --engine llamacpp or ollama")


def local_formats(engine: str, weights: WeightFormat, kv_name: str | None, assumptions: dict[str, Any],
                  flash_attn: bool) -> tuple[KVFormat, KVFormat]:
    """The weight format the engine loads and its K/V cache types."""
    if engine in GGML_ENGINES and weights.layout not in ("gguf", "dense"):
        raise InputError("input.conflict", what=f"--engine {engine} loads GGUF files: --weights {weights.name} is "
                         "not a GGUF type (try q4_k_m, q4_0, iq4_xs, q8_0 or f16)")
    if engine == "mlx" and not (weights.name.startswith("mlx-") or weights.layout == "dense"):
        raise InputError("input.conflict", what=f"--engine mlx loads MLX weights: --weights {weights.name} is not "
                         "an MLX format (try mlx-4bit, mlx-8bit or bf16)")
    if kv_name is None:
        kv = formats.resolve_kv_format("fp16")
        assumptions["kv_dtype"] = "f16" if engine in GGML_ENGINES else "fp16 (the model dtype)"
    else:
        kv = formats.resolve_kv_format("fp16" if kv_name.lower() == "f16" else kv_name)
    if engine in GGML_ENGINES and kv.name not in ("fp16", "bf16", "q8_0", "q4_0", "fp32"):
        raise InputError("input.conflict", what=f"--kv-dtype {kv.name}: llama.cpp's cache types are f16, bf16, "
                         "q8_0 and q4_0")
    if engine == "mlx" and kv.layout == "ggml_block":
        raise InputError("input.conflict", what=f"--kv-dtype {kv.name} is a llama.cpp cache type; mlx-lm keeps "
                         "its cache in the model dtype here (fp16)")
    if kv.layout == "ggml_block" and not flash_attn:
        raise InputError("input.conflict", what=f"--kv-dtype {kv.name}: llama.cpp quantizes the V cache only "
                         "with flash attention; drop --no-flash-attn")
    return kv, kv


def _version(text: str) -> tuple[int, ...]:
    """"0.6.7" -> (0, 6, 7); a leading "v" and a pre-release tail ("-rc1") are ignored."""
    import re

    m = re.fullmatch(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-+.]\S*)?", text.strip())
    if not m:
        raise InputError("input.conflict", what=f"--engine-version '{text}' is not a version like 0.6.7")
    return tuple(int(x or 0) for x in m.groups())


def ollama_num_ctx(version: str, devices: tuple[GPU, ...], trained: int | None) -> tuple[int, str]:
    """Ollama's default context for ``version``: 2048, then 4096 (0.6.7), then by total GPU
    memory (0.15.5: >= 47 GiB 262144, >= 23 GiB 32768, else 4096), capped at the trained context."""
    chosen = None
    for row in data()["ollama"]["context"]:
        if _version(version) >= _version(row["since"]):
            chosen = row
    assert chosen is not None
    if "num_ctx" in chosen:
        n, why = chosen["num_ctx"], f"Ollama {version} default num_ctx"
    else:
        vram = sum(d.memory_bytes for d in devices) / GiB
        n = next(ctx for gib, ctx in chosen["vram_tiers"] if vram >= gib)
        why = f"Ollama {version} default by total GPU memory ({vram:.0f} GiB)"
    if trained and n > trained:
        n, why = trained, why + ", capped at the model's trained context"
    return n, why


def host_for(gpu: GPU, opts: dict[str, Any], assumptions: dict[str, Any]) -> Host:
    """The host: the SoC itself for unified memory; else --host-cpu (the CPU catalog) and
    --host-ram, with stated defaults."""
    h = data()["host"]
    pcie = float(h["pcie_bytes_per_second"])
    ic = gpu.interconnect
    if ic.kind == "pcie" and isinstance(ic.per_direction_bytes_per_second, (int, float)):
        pcie = float(ic.per_direction_bytes_per_second)
    if getattr(gpu, "kind", "gpu") == "cpu":
        return Host(gpu.name, gpu.memory_bytes, float(gpu.hbm_bytes_per_second), gpu.flops("fp32"), pcie,
                    unified=True, source=gpu.source)
    if is_unified(gpu):
        if opts.get("host_ram") is not None:
            raise InputError("input.conflict", what=f"--host-ram: {gpu.name} has unified memory; its RAM is the "
                             "device's own")
        if opts.get("host_cpu") is not None:
            raise InputError("input.conflict", what=f"--host-cpu: {gpu.name} is a system on a chip; its CPU shares "
                             "the device's memory")
        bw = gpu.hbm_bytes_per_second if isinstance(gpu.hbm_bytes_per_second, (int, float)) else None
        return Host(gpu.name, gpu.memory_bytes, bw, gpu.flops("fp32"), pcie, unified=True,
                    source=f"{gpu.name}: unified memory")
    name = opts.get("host_cpu")
    cpu = _cpu(name or DEFAULT_HOST_CPU, given=name is not None)
    if name is None:
        assumptions["host_cpu"] = (f"{cpu['name']} (assumed desktop host, {cpu['memory_channels']} x "
                                   f"{cpu['memory_type']}; give --host-cpu)" if cpu
                                   else f"unknown (no CPU catalog row {DEFAULT_HOST_CPU})")
    ram = parse_ram(opts["host_ram"]) if opts.get("host_ram") is not None else None
    if ram is None:
        ram = int(h["default_ram_bytes"])
        assumptions["host_ram"] = f"{ram / GiB:.0f} GiB (assumed; give --host-ram)"
    bw = flops = None
    if cpu:
        measured = cpu.get("measured_bytes_per_second")
        bw = measured if isinstance(measured, (int, float)) else cpu.get("memory_bytes_per_second")
        f = cpu.get("fp32_flops")
        flops = f if isinstance(f, (int, float)) else None
    return Host(cpu["name"] if cpu else "unknown", int(ram), bw, flops, pcie, source=(cpu or {}).get("source", ""))


def _cpu(name: str, given: bool) -> dict[str, Any] | None:
    """A CPU catalog row as a dict (hardware.cpus, written alongside this issue), or None."""
    try:
        from rigsize.hardware import cpus
    except ImportError:
        if given:
            raise InputError("input.conflict", what="--host-cpu: no CPU catalog in this build") from None
        return None
    try:
        row = cpus.resolve_cpu(name)
    except InputError:
        if given:
            raise
        return None
    except Exception:  # noqa: BLE001 - a catalog error of the other module; say it for a given name only
        if given:
            raise
        return None
    return row.model_dump() if hasattr(row, "model_dump") else dict(vars(row))


def resolve_local(engine: str, gpu: GPU, devices: tuple[GPU, ...], arch: Architecture, opts: dict[str, Any],
                  assumptions: dict[str, Any], workload_seq: int, weights: WeightFormat,
                  ) -> tuple[runtime.Engine, LocalSettings]:
    """The engine (for the shared report fields) and the local settings."""
    check_device(engine, gpu)
    d = data()
    trained = arch.max_position_embeddings
    version = opts.get("engine_version")
    if engine == "llamacpp":
        version = version or d["llamacpp"]["version"]
        n_ctx = opts.get("max_model_len")
        if n_ctx is None:
            n_ctx = trained or workload_seq
            assumptions["n_ctx"] = f"{n_ctx:,} (llama.cpp -c 0: the model's trained context)"
        n_ubatch = int(d["llamacpp"]["n_ubatch"])
    elif engine == "ollama":
        version = version or d["ollama"]["newest_modelled"]
        n_ctx = opts.get("max_model_len")
        if n_ctx is None:
            n_ctx, why = ollama_num_ctx(version, devices, trained)
            assumptions["num_ctx"] = f"{n_ctx:,} ({why})"
        n_ubatch = int(d["ollama"]["n_ubatch"])
    else:
        version = version or d["mlx"]["version"]
        step = int(d["mlx"]["kv_step"])
        n_ctx = opts.get("max_model_len") or -(-workload_seq // step) * step
        assumptions["kv_tokens"] = f"{n_ctx:,} (mlx-lm KVCache grows by {step} tokens for the request's tokens)"
        n_ubatch = int(d["mlx"]["prefill_step_size"])
    if "engine_version" not in opts:
        assumptions["engine_version"] = version
    if workload_seq > n_ctx:
        raise InputError("input.conflict", what=f"a sequence of {workload_seq:,} tokens exceeds the context "
                         f"{n_ctx:,}; raise --max-model-len (-c / num_ctx) or shorten --prompt/--output")
    flash = opts.get("flash_attn")
    quantized_kv = str(opts.get("kv_dtype") or "").lower() in ("q8_0", "q4_0")
    if flash is None:
        flash = engine != "ollama" or quantized_kv
        assumptions["flash_attn"] = (
            "on (llama.cpp -fa auto: on where the backend supports it)" if engine == "llamacpp"
            else "on (OLLAMA_FLASH_ATTENTION=1, which OLLAMA_KV_CACHE_TYPE needs)" if engine == "ollama" and flash
            else "off (OLLAMA_FLASH_ATTENTION unset)" if engine == "ollama"
            else "on (mlx fused scaled_dot_product_attention)")
    kv_k, kv_v = local_formats(engine, weights, opts.get("kv_dtype"), assumptions, flash)
    n_layer = arch.num_hidden_layers
    ngl = opts.get("gpu_layers")
    if ngl is None:
        ngl = n_layer + 1
        if engine != "mlx":
            assumptions["gpu_layers"] = f"all ({n_layer + 1}: {n_layer} layers + the output layer)"
    ngl = min(int(ngl), n_layer + 1, ALL_LAYERS)
    n_cpu_moe = int(opts.get("n_cpu_moe") or 0)
    if n_cpu_moe and not arch.num_experts:
        raise InputError("input.conflict", what=f"--n-cpu-moe: {arch.model_type} has no MoE experts")
    split = opts.get("split_mode") or "layer"
    if len(devices) > 1 and "split_mode" not in opts:
        assumptions["split_mode"] = "layer (llama.cpp default)"
    if len(devices) > 1 and split == "row":
        assumptions["row_split_speed"] = ("the GPUs read their rows at once; the per-layer exchange of partial "
                                          "results is counted as PCIe bandwidth only (no latency figure was read, "
                                          "and no -sm row run is in the validation data): an upper bound")
    host = host_for(gpu, opts, assumptions)
    settings = LocalSettings(engine=engine, version=version, n_ctx=int(n_ctx), n_ubatch=n_ubatch, gpu_layers=ngl,
                             n_cpu_moe=n_cpu_moe, flash_attn=bool(flash), split_mode=split, kv_k=kv_k, kv_v=kv_v,
                             host=host, devices=devices)
    eng = runtime.Engine(name=engine, era=engine, version=version, gpu_memory_utilization=1.0,
                         max_num_batched_tokens=n_ubatch, max_num_seqs=1, kv_block_size=1, max_model_len=int(n_ctx),
                         chunked_prefill=True, cuda_graphs="none")
    return eng, settings


def overhead_per_gpu(gpu: GPU) -> int:
    """Fixed memory a GPU's runtime takes outside llama.cpp's buffers: the CUDA/HIP context
    (runtime.toml, as for transformers); none charged on Metal/unified memory devices, where
    no figure was read."""
    if is_unified(gpu) or gpu.vendor.lower() not in ("nvidia", "amd"):
        return 0
    return int(runtime.data()["applied"]["training_cuda_context_bytes"])
