"""Local inference speed (rigsize.speed.local) and its fit (tools/fit_local_efficiency.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from rigsize import estimate
from rigsize.speed.local import LocalEfficiency, decode_bytes, prompt_flops

ROOT = Path(__file__).resolve().parents[2]


def _fit_module():
    spec = importlib.util.spec_from_file_location("fit_local_efficiency", ROOT / "tools" / "fit_local_efficiency.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_fit_reads_fit_rows_only(monkeypatch):
    from rigsize.validation import local

    fit = _fit_module()
    runs = local.bench_runs()
    assert {r["split"] for r in runs} <= {"fit", "reserved"}
    base = fit.fit(list(runs))
    # reserved rows made absurd (100x faster): the fitted values must not move
    poisoned = tuple({**r, "tg_tokens_per_s": r.get("tg_tokens_per_s", 1) * 100,
                      "pp_tokens_per_s": r.get("pp_tokens_per_s", 1) * 100} if r["split"] == "reserved" else r
                     for r in runs)
    monkeypatch.setattr(local, "bench_runs", lambda: poisoned)
    assert all(r["split"] == "fit" for r in fit.fit_runs())
    assert fit.fit(list(poisoned)) == base
    assert fit.fit(fit.fit_runs()) == base


def test_packaged_rows_are_the_fit_of_today_s_data():
    """data/efficiency.toml [local.*] equals what the fit script computes from the packaged fit rows."""
    from rigsize.speed.local import local_efficiency

    rows = _fit_module().fit(_fit_module().fit_runs())
    for family, row in rows.items():
        backend, _, vendor = family.partition(".")
        eff, key = local_efficiency(backend, "llamacpp", vendor or None)
        assert key == f"local.{family}"
        if vendor:      # a vendor row: its own prompt fraction, the backend's decode fractions
            row = {**rows[backend], **row}
        assert eff.memory == pytest.approx(row["memory"], abs=1e-4)
        assert eff.layer_overhead_s == pytest.approx(row["layer_overhead_s"], rel=1e-3, abs=1e-9)
        assert eff.moe_layer_overhead_s == pytest.approx(row["moe_layer_overhead_s"], rel=1e-3, abs=1e-9)
        if "compute" in row:
            assert eff.compute == pytest.approx(row["compute"], abs=1e-4)
        assert eff.cpu_compute_vec_dot == pytest.approx(row.get("compute_vec_dot", eff.compute), abs=1e-4)


def test_vulkan_prompt_rows_per_vendor():
    """Vulkan's prompt fraction is fitted per GPU vendor where 3+ fit runs allow (NV_coopmat2 on NVIDIA,
    KHR_cooperative_matrix elsewhere): a vendor with a row gets it, one without falls back to [local.vulkan],
    and other backends ignore the vendor."""
    from rigsize.speed.local import local_efficiency

    rows = _fit_module().fit(_fit_module().fit_runs())
    vendors = [k.split(".")[1] for k in rows if k.startswith("vulkan.")]
    assert "nvidia" in vendors
    for v in ("nvidia", "amd", "intel"):
        eff, key = local_efficiency("vulkan", "llamacpp", v)
        assert key == (f"local.vulkan.{v}" if v in vendors else "local.vulkan")
        want = rows[f"vulkan.{v}"] if v in vendors else rows["vulkan"]
        assert eff.compute == pytest.approx(want["compute"], abs=1e-4)
    assert local_efficiency("cuda", "llamacpp", "nvidia")[1] == "local.cuda"


def _job(model, **opts):
    from rigsize.model.inputs import resolve_model
    from rigsize.planning.job import build_job
    from rigsize.planning.options import parse_options

    return build_job(resolve_model(model), parse_options(opts), {})[0]


def test_decode_reads_every_weight_once_and_active_experts_only():
    job = _job("llama-3.1-8b", engine="llamacpp", gpu="RTX-4090", weights="q4_0", max_model_len=4096)
    read = decode_bytes(job.spec.arch, job.weights, job.local, 0)
    embed = next(t for t in job.spec.arch.tensors if t.role == "embed")
    from rigsize.memory.llamacpp import tensor_bytes, weight_placement
    placed = weight_placement(job.spec.arch, job.weights, job.local)
    # every weight on the GPU is read once per token; the input embedding (one row) is not counted
    assert read["gpu0"] == placed["gpu0"] and placed["host"] == tensor_bytes(embed, job.spec.arch, job.weights)
    moe = _job("qwen3-30b-a3b", engine="llamacpp", gpu="RTX-4090", weights="q4_k_m", max_model_len=4096)
    read = decode_bytes(moe.spec.arch, moe.weights, moe.local, 0)["gpu0"]
    total = weight_placement(moe.spec.arch, moe.weights, moe.local)["gpu0"]
    assert read < total / 4        # 8 of 128 experts per token (Qwen3-30B-A3B config)


def test_moe_layers_add_their_own_overhead_per_token():
    """moe_layer_overhead_s counts once per MoE layer per generated token: Qwen3-30B-A3B has 48 MoE layers,
    Llama 3.1 8B none (their configs), so 100 us per MoE layer adds 4.8 ms to the first and nothing to the second."""
    from dataclasses import replace

    from rigsize.speed.local import token_seconds

    base = LocalEfficiency(memory=0.8, compute=0.5, layer_overhead_s=5e-5)
    for model, weights, added in (("qwen3-30b-a3b", "q4_k_m", 48 * 1e-4), ("llama-3.1-8b", "q4_0", 0.0)):
        job = _job(model, engine="llamacpp", gpu="RTX-4090", weights=weights, max_model_len=4096)
        a, _ = token_seconds(job.spec.arch, job.weights, job.local, base, 512)
        b, split = token_seconds(job.spec.arch, job.weights, job.local, replace(base, moe_layer_overhead_s=1e-4), 512)
        assert b - a == pytest.approx(added, abs=1e-12)
        assert split["fixed"] == pytest.approx(job.spec.arch.num_hidden_layers * 5e-5 + added, rel=1e-12)


def test_prompt_flops_are_2n_per_token_plus_attention():
    from rigsize.model.architecture import active_params
    from rigsize.model.inputs import resolve_model

    arch = resolve_model("llama-2-7b").arch
    embed = sum(t.numel for t in arch.tensors if t.role == "embed")
    n = 512
    expected = 2 * (active_params(arch) - embed) * n + 2 * 32 * 4096 * n * n
    assert prompt_flops(arch, n) == pytest.approx(expected)


def test_cpu_prompt_types_outside_the_tiled_gemm_share():
    """llama.cpp's CPU backend tiles F16/BF16/Q8_0/Q4_0/Q5_0/IQ4_NL (llamafile_sgemm's type switch); the
    K-quants and IQ4_XS go through per-row dot products. llama-quantize gives a Q4_0 file a Q6_K output
    (llama_tensor_get_type), so Llama 3.1 8B Q4_0 has its output matrix (128256 x 4096, the config's vocab
    and hidden size) outside the tiled kernels: 525.3M of the 7.50B matmul parameters (8.03B as llama-bench
    prints, less the 525.3M-row input embedding lookup)."""
    from rigsize.model.formats import resolve_weight_format
    from rigsize.model.inputs import resolve_model
    from rigsize.speed.local import vec_dot_share

    arch = resolve_model("llama-3.1-8b").arch
    assert vec_dot_share(arch, resolve_weight_format("q8_0")) == 0.0
    assert vec_dot_share(arch, resolve_weight_format("q4_0")) == pytest.approx(128256 * 4096 / 7.505e9, rel=0.01)
    assert vec_dot_share(arch, resolve_weight_format("q4_k_m")) == 1.0
    assert vec_dot_share(arch, resolve_weight_format("bf16")) == 0.0


def test_cpu_prompt_runs_routed_experts_row_wise_whatever_their_type():
    """ggml's CPU backend calls llamafile_sgemm from mul_mat only; MoE experts go through mul_mat_id's per-row
    chunks.  Qwen3-30B-A3B (config.json: 48 layers, hidden 2048, 32 x 128 query and 4 x 128 KV heads, 8 of 128
    experts of moe_intermediate_size 768, untied 151936-token output) in Q8_0: per layer and token the experts do
    8 x 3 x 2048 x 768 = 37.75M multiply-adds, attention 2 x 2048 x 4096 + 2 x 2048 x 512 = 18.87M, the output
    311.2M once: the experts' share is 48 x 37.75M / (48 x 56.62M + 311.2M) = 0.598."""
    from rigsize.model.formats import resolve_weight_format
    from rigsize.model.inputs import resolve_model
    from rigsize.speed.local import vec_dot_share

    arch = resolve_model("qwen3-30b-a3b").arch
    experts = 48 * 8 * 3 * 2048 * 768
    attention = 48 * (2 * 2048 * 4096 + 2 * 2048 * 512)
    expected = experts / (experts + attention + 151936 * 2048)
    assert vec_dot_share(arch, resolve_weight_format("q8_0")) == pytest.approx(expected, rel=0.005)


def test_cpu_prompt_runs_row_wise_types_at_their_own_fraction():
    """Same FLOPs, different kernels: with the per-row fraction at half the tiled one, a Q4_K_M prompt on
    the CPU takes the matmul part of the Q8_0 prompt twice over.  Llama 3.1 8B, 512 tokens: matmuls
    2 x 7.505e9 x 512 (8.03B parameters as llama-bench prints, less the 525.3M input embedding), causal
    attention 2 x 32 layers x 4096 x 512^2 (config: 32 layers, 32 x 128 query heads)."""
    opts = dict(engine="llamacpp", gpu="cpu", host_cpu="RYZEN-9-7950X", max_model_len=4096, prompt=512, output=16,
                efficiency="cpu_compute=0.8,cpu_compute_vec_dot=0.4")
    q8 = estimate("llama-3.1-8b", weights="q8_0", **opts).performance.efficiency["prompt_tokens_per_second"]
    qk = estimate("llama-3.1-8b", weights="q4_k_m", **opts).performance.efficiency["prompt_tokens_per_second"]
    matmul, attn = 2 * 7.505e9 * 512, 2 * 32 * 4096 * 512**2
    expected = (attn / 0.8 + matmul / 0.4) / ((attn + matmul) / 0.8)     # Q4_K_M's time over Q8_0's
    assert q8 / qk == pytest.approx(expected, rel=0.01)


def test_offloaded_layers_slow_decode_by_host_bandwidth():
    fast = estimate("llama-3.1-70b", engine="llamacpp", gpu="RTX-4090", weights="q4_k_m", max_model_len=4096,
                    gpu_layers=44, host_cpu="RYZEN-9-9950X")
    slow = estimate("llama-3.1-70b", engine="llamacpp", gpu="RTX-4090", weights="q4_k_m", max_model_len=4096,
                    gpu_layers=30, host_cpu="RYZEN-9-9950X")
    assert fast.performance.output_tokens_per_second > slow.performance.output_tokens_per_second
    # the host's 89.6 GB/s (2 x DDR5-5600, data/cpus.toml) bounds the offloaded half: under 4 tokens/s
    assert slow.performance.output_tokens_per_second < 4


def test_efficiency_override_scales_decode():
    a = estimate("llama-3.1-8b", engine="llamacpp", gpu="RTX-4090", weights="q4_0", max_model_len=4096,
                 efficiency="memory=0.5,layer_overhead_s=1e-12")
    b = estimate("llama-3.1-8b", engine="llamacpp", gpu="RTX-4090", weights="q4_0", max_model_len=4096,
                 efficiency="memory=1.0,layer_overhead_s=1e-12")
    # KV reads at this context are small next to the weights: tokens/s nearly doubles
    assert b.performance.output_tokens_per_second / a.performance.output_tokens_per_second == pytest.approx(2, rel=0.01)
    assert isinstance(LocalEfficiency(), LocalEfficiency)


def test_row_split_reads_rows_on_every_gpu_and_says_its_bound():
    r = estimate("llama-3.1-70b", engine="llamacpp", gpu="RTX-3090", gpus=2, split_mode="row", weights="q4_k_m",
                 max_model_len=8192)
    e = r.performance.efficiency
    assert e["decode_s_per_token/gpu0"] == pytest.approx(e["decode_s_per_token/gpu1"], rel=0.2)
    assert "upper bound" in r.assumptions["row_split_speed"]
    layer = estimate("llama-3.1-70b", engine="llamacpp", gpu="RTX-3090", gpus=2, weights="q4_k_m",
                     max_model_len=8192)
    assert r.performance.output_tokens_per_second > layer.performance.output_tokens_per_second


def test_the_fit_prints_fit_row_errors_only(monkeypatch):
    """tools/fit_local_efficiency.py prints each family's median error on the FIT rows; reserved rows made absurd
    leave the printed lines unchanged.  Every fitted family meets the generation target (15%) on its fit rows."""
    from rigsize.validation import local

    fit = _fit_module()
    rows = fit.fit(fit.fit_runs())
    lines = fit.fit_errors(list(local.bench_runs()), rows)
    poisoned = [{**r, "tg_tokens_per_s": r["tg_tokens_per_s"] * 100} if r["split"] == "reserved" and
                "tg_tokens_per_s" in r else r for r in local.bench_runs()]
    assert fit.fit_errors(poisoned, rows) == lines
    assert all(line.startswith("# fit rows") for line in lines)
    tg = [line for line in lines if "tg_tokens_per_s" in line]
    assert {line.split()[3] for line in tg} >= {"apple", "cuda", "rocm", "vulkan"}
    for line in tg:
        assert float(line.rsplit(" ", 1)[1].rstrip("%")) <= 15.0, line
