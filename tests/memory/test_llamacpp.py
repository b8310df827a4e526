"""Local inference memory (rigsize.memory.llamacpp): placement by llama.cpp's rules, KV cache
sizes as llama.cpp logs print them, Ollama's default context by version, refusals."""

import pytest

from rigsize import estimate
from rigsize.errors import InputError, RigsizeError
from rigsize.memory.llamacpp import i_gpu_start, weight_placement
from rigsize.model.inputs import resolve_model

MiB = 2**20


def _job(model="llama-3.1-8b", **opts):
    from rigsize.planning.job import build_job
    from rigsize.planning.options import parse_options

    spec = resolve_model(model)
    job, _ = build_job(spec, parse_options(opts), {})
    return job


def test_i_gpu_start_counts_the_output_layer():
    # llama-model.cpp load_tensors: i_gpu_start = max(n_layer + 1 - n_gpu_layers, 0)
    assert i_gpu_start(32, 33) == 0
    assert i_gpu_start(32, 32) == 1
    assert i_gpu_start(32, 1) == 32        # only the output layer on the GPU
    assert i_gpu_start(32, 0) == 33


def test_all_layers_leave_only_the_input_embedding_in_ram():
    job = _job(engine="llamacpp", gpu="RTX-4090", weights="q4_k_m", max_model_len=4096)
    arch = job.spec.arch
    placed = weight_placement(arch, job.weights, job.local)
    embed = next(t for t in arch.tensors if t.role == "embed")
    from rigsize.memory.llamacpp import tensor_bytes
    assert placed["host"] == tensor_bytes(embed, arch, job.weights)
    total = sum(tensor_bytes(t, arch, job.weights) for t in arch.tensors)
    assert placed["gpu0"] + placed["host"] == total


def test_gpu_layers_zero_keeps_every_weight_in_ram():
    job = _job(engine="llamacpp", gpu="RTX-4090", weights="q4_0", max_model_len=4096, gpu_layers=0)
    placed = weight_placement(job.spec.arch, job.weights, job.local)
    assert placed["gpu0"] == 0


def test_weights_move_to_ram_layer_by_layer():
    full = _job(engine="llamacpp", gpu="RTX-4090", weights="q8_0", max_model_len=4096)
    part = _job(engine="llamacpp", gpu="RTX-4090", weights="q8_0", max_model_len=4096, gpu_layers=17)
    a = weight_placement(full.spec.arch, full.weights, full.local)
    b = weight_placement(part.spec.arch, part.weights, part.local)
    layer = (a["gpu0"] - b["gpu0"]) / 16       # 16 decoder layers moved (the output layer stays)
    assert b["host"] - a["host"] == pytest.approx(16 * layer)


@pytest.mark.parametrize("kv, mib", [("f16", 1024), ("q8_0", 544), ("q4_0", 288)])
def test_kv_cache_of_llama3_8b_at_8192(kv, mib):
    # llama.cpp prints for Llama 3 8B at -c 8192 "KV self size = 1024.00 MiB, K (f16): 512.00 MiB,
    # V (f16): 512.00 MiB"; q8_0 is 34/64 of it and q4_0 18/64 (ggml-common.h block sizes)
    r = estimate("llama-3.1-8b", engine="llamacpp", gpu="RTX-4090", weights="q4_k_m", max_model_len=8192,
                 kv_dtype=kv)
    assert r.memory.per_gpu.kv_cache == mib * MiB


def test_memory_grows_with_gpu_layers_on_the_gpu_and_falls_in_ram():
    rows = [estimate("llama-3.1-70b", engine="llamacpp", gpu="RTX-4090", weights="q4_k_m", max_model_len=4096,
                     gpu_layers=n) for n in (10, 30, 50)]
    gpu = [r.memory.per_gpu.total for r in rows]
    ram = [r.memory.details["host/weights"] for r in rows]
    assert gpu == sorted(gpu) and ram == sorted(ram, reverse=True)


def test_70b_q4_with_40_layers_on_a_4090_fits_and_all_layers_do_not():
    part = estimate("llama-3.1-70b", engine="llamacpp", gpu="RTX-4090", weights="q4_k_m", max_model_len=8192,
                    gpu_layers=40)
    full = estimate("llama-3.1-70b", engine="llamacpp", gpu="RTX-4090", weights="q4_k_m", max_model_len=8192)
    assert part.memory.fits and not full.memory.fits


@pytest.mark.parametrize("version, gpu, ctx", [
    ("0.6.6", "RTX-4090", 2048),        # envconfig OLLAMA_CONTEXT_LENGTH default 2048 through v0.6.6
    ("0.6.7", "RTX-4090", 4096),        # 4096 from v0.6.7
    ("0.15.4", "RTX-4090", 4096),
    ("0.15.5", "RTX-4090", 32768),      # routes.go VRAM tiers: >= 23 GiB -> 32768
    ("0.32.15", "H100-SXM-80GB", 131072),   # >= 47 GiB -> 262144, capped at Llama 3.1's 131072
])
def test_ollama_default_context_by_version(version, gpu, ctx):
    r = estimate("llama-3.1-8b", engine="ollama", engine_version=version, gpu=gpu)
    assert r.memory.max_model_len == ctx


def test_ollama_defaults_to_q4_k_m():
    r = estimate("llama-3.1-8b", engine="ollama", gpu="RTX-4090")
    assert r.model.weight_format == "q4_k_m"


@pytest.mark.parametrize("opts, words", [
    ({"engine": "vllm", "gpu_layers": 20}, "--gpu-layers"),
    ({"engine": "mlx", "gpu": "RTX-4090"}, "Apple silicon"),
    ({"engine": "llamacpp", "gpu": "RTX-4090", "weights": "awq-int4"}, "GGUF"),
    ({"engine": "llamacpp", "gpu": "RTX-4090", "kv_dtype": "q8_0", "flash_attn": False}, "flash attention"),
    ({"engine": "llamacpp", "gpu": "RTX-4090", "tp": 2}, "--tp"),
    ({"engine": "llamacpp", "gpu": "RTX-4090", "n_cpu_moe": 4}, "no MoE"),
    ({"engine": "vllm", "kv_dtype": "q8_0"}, "q8_0"),
])
def test_bad_combinations_are_one_line_errors(opts, words):
    with pytest.raises(RigsizeError) as err:
        estimate("llama-3.1-8b", **opts)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_n_cpu_moe_moves_only_experts():
    base = _job("qwen3-30b-a3b", engine="llamacpp", gpu="RTX-4090", weights="q4_k_m", max_model_len=4096)
    moe = _job("qwen3-30b-a3b", engine="llamacpp", gpu="RTX-4090", weights="q4_k_m", max_model_len=4096,
               n_cpu_moe=48)
    a = weight_placement(base.spec.arch, base.weights, base.local)
    b = weight_placement(moe.spec.arch, moe.weights, moe.local)
    from rigsize.memory.llamacpp import tensor_bytes
    experts = sum(tensor_bytes(t, moe.spec.arch, moe.weights) for t in moe.spec.arch.tensors
                  if t.role.startswith("expert_"))
    assert b["host"] - a["host"] == experts
    assert isinstance(InputError("input.conflict", what="x"), RigsizeError)


@pytest.mark.parametrize("model, opts", [
    ("llama-3.1-70b", dict(gpu="RTX-4090", weights="q4_k_m", gpu_layers=44)),
    ("llama-3.1-8b", dict(gpu="RTX-3060-12GB", weights="q8_0")),
    ("gemma-3-27b", dict(gpu="M2-Max-32GB", weights="q4_k_m")),
    ("qwen3-30b-a3b", dict(gpu="RTX-4090", weights="q4_k_m", n_cpu_moe=30)),
])
def test_longest_context_is_the_edge_of_fitting(model, opts):
    """The longest context reported fits, one more token does not (or it is the model's limit)."""
    r = estimate(model, engine="llamacpp", max_model_len=4096, **opts)
    longest = r.memory.max_context_single
    assert longest > 0
    at = estimate(model, engine="llamacpp", max_model_len=longest, **opts)
    assert at.memory.fits
    limit = resolve_model(model).arch.max_position_embeddings
    if longest < limit:
        assert not estimate(model, engine="llamacpp", max_model_len=longest + 1, **opts).memory.fits


def test_ollama_offloads_the_most_layers_that_fit():
    r = estimate("llama-3.1-70b", engine="ollama", gpu="RTX-4090")
    assert r.memory.fits
    ngl = int(str(r.assumptions["gpu_layers"]).split()[0])
    assert 0 < ngl < 81
    more = estimate("llama-3.1-70b", engine="ollama", gpu="RTX-4090", gpu_layers=ngl + 1)
    assert not more.memory.fits


def test_mlx_has_no_prompt_logits_buffer():
    # mlx-lm evaluates only the cache during prefill: no 2048 x vocab logits; llama.cpp keeps n_ubatch x vocab f32
    mlx = estimate("llama-3.1-8b", engine="mlx", gpu="M2-Max-32GB", weights="mlx-4bit")
    assert mlx.memory.per_gpu.activations < 2048 * 128256 * 4


def test_cpu_only_runs_everything_in_ram_at_the_cpu_bandwidth():
    r = estimate("llama-3.1-8b", engine="llamacpp", gpu="cpu", host_cpu="EPYC-9654", host_ram="384GiB",
                 weights="q4_k_m", max_model_len=8192)
    assert r.memory.fits and r.memory.usable_bytes == 384 * 2**30
    # decode is bound by 12 x DDR5-4800 = 460.8 GB/s (data/cpus.toml): at most that over the 4.3 GiB read
    assert r.performance.output_tokens_per_second < 460.8e9 / (4.3 * 2**30)
    # the CPU-only llama-bench fit rows set its efficiency (data/efficiency.toml [local.cpu]), not the GPU default
    assert r.performance.efficiency_source.startswith("local.cpu:")
    assert not any("not fitted" in w for w in r.warnings)
    with pytest.raises(RigsizeError):
        estimate("llama-3.1-8b", engine="mlx", gpu="cpu")
    with pytest.raises(RigsizeError):
        estimate("llama-3.1-8b", engine="llamacpp", gpu="cpu", gpu_layers=10)


@pytest.mark.parametrize("text, n", [("64GiB", 64 * 2**30), ("64G", 64 * 2**30), ("192GB", 192 * 10**9),
                                     ("68719476736", 2**36)])
def test_host_ram_spellings(text, n):
    from rigsize.memory.local_engines import parse_ram

    assert parse_ram(text) == n


def test_image_requests_load_the_mmproj_on_the_gpu() -> None:
    """llama.cpp loads the vision tower from the separate --mmproj GGUF for image requests and offloads it to
    the GPU by default (docs/multimodal.md): Qwen2.5-VL-7B's tower and projector, 676,550,144 parameters
    (transformers' params_vision) in F16, join the first GPU's weights; a text-only run leaves them out."""
    import rigsize

    opts = dict(engine="llamacpp", gpu="RTX-4090", weights="q4_k_m")
    text = rigsize.estimate("qwen2.5-vl-7b", images_per_request=0, **opts)
    images = rigsize.estimate("qwen2.5-vl-7b", images_per_request=2, **opts)
    assert images.memory.per_gpu.weights - text.memory.per_gpu.weights == 2 * 676_550_144
    assert "not modelled" in images.assumptions["vision_tower"]


def test_host_ram_short_is_said_to_be_host_ram(capsys: pytest.CaptureFixture[str]) -> None:
    """Every layer in system RAM and 1 GiB of it: the table said "Does not fit, short by
    79.18 GiB" (the H100's free memory) and the warning "the busiest GPU is 25.68 GiB short"."""
    import rigsize
    from rigsize.shells.cli import main

    r = rigsize.estimate("7B", engine="llamacpp", gpu_layers=0, host_ram="1GiB")
    d = r.memory.details
    assert not r.memory.fits and d["host/short"] == d["host/total"] - d["host/usable"] > 0
    assert any("does not fit in host RAM" in w for w in r.warnings)
    assert not any("busiest GPU" in w for w in r.warnings)
    assert main(["estimate", "7B", "--engine", "llamacpp", "--gpu-layers", "0", "--host-ram", "1GiB"]) == 0
    out = capsys.readouterr().out
    assert "host RAM short by" in out and "GPU memory fits" in out and "Does not fit, short by" not in out


def test_cpu_only_short_is_one_host_ram_figure(capsys: pytest.CaptureFixture[str]) -> None:
    """--gpu cpu: the device is the host, so one shortfall (device parts + host buffers - RAM), not two."""
    import rigsize
    from rigsize.shells.cli import main

    r = rigsize.estimate("7B", engine="llamacpp", gpu="cpu", host_ram="2GiB")
    d = r.memory.details
    assert d["host/short"] == r.memory.per_gpu.total + d["host/total"] - d["host/unified_bytes"] > 0
    assert [w for w in r.warnings if w.startswith("no speed given")] == [
        w for w in r.warnings if "does not fit in host RAM" in w]
    assert main(["estimate", "7B", "--engine", "llamacpp", "--gpu", "cpu", "--host-ram", "2GiB"]) == 0
    out = capsys.readouterr().out
    assert out.count("short by") == 1 and "host RAM short by" in out
