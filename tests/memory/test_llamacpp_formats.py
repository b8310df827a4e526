"""GGUF file types Q4_0/IQ4 and llama.cpp's quantized KV caches, against sizes llama.cpp prints.

Expected values are llama-bench's ``size`` column (GiB, 2 decimals) in public llama.cpp pull
requests, for models whose configs rigsize has as presets."""

import pytest

from rigsize.model import formats as F
from rigsize.model.inputs import resolve_model


@pytest.mark.parametrize("model, fmt, gib, where", [
    ("llama-2-7b", "q4_0", 3.56, "ggml-org/llama.cpp PR #3648 (M2 Ultra llama-bench, 'llama 7B mostly Q4_0 3.56 GiB')"),
    ("llama-2-7b", "q8_0", 6.67, "ggml-org/llama.cpp PR #10581 ('llama 7B Q8_0 6.67 GiB')"),
    ("llama-2-13b", "q4_0", 6.86, "ggml-org/llama.cpp PR #10581 ('llama 13B Q4_0 6.86 GiB')"),
    ("qwen2.5-7b", "q8_0", 7.54, "ggml-org/llama.cpp PR #16894 ('qwen2 7B Q8_0 7.54 GiB')"),
    # llama.cpp benches/dgx-spark.md llama-bench tables (as quoted in data/validation/llamacpp_bench.toml)
    ("gpt-oss-20b", "mxfp4_moe", 11.27, "dgx-spark.md: 'gpt-oss 20B MXFP4 MoE 11.27 GiB'"),
    ("gpt-oss-120b", "mxfp4_moe", 59.02, "dgx-spark.md: ggml-org/gpt-oss-120b-GGUF 59.02 GiB"),
    ("qwen3-30b-a3b", "q8_0", 30.25, "dgx-spark.md: 'qwen3moe 30B.A3B Q8_0 30.25 GiB'"),
    # geerlingguy/beowulf-ai-cluster#17: 'deepseek2 671B Q4_K - Medium | 376.65 GiB'
    ("deepseek-r1", "q4_k_m", 376.65, "geerlingguy/beowulf-ai-cluster#17 llama-bench"),
    # Q4_K_S, as quoted in llamacpp_bench.toml's batch-7 rows
    ("llama-3-8b", "q4_k_s", 4.36, "ggml-org/llama.cpp PR #18749 ('llama 8B Q4_K - Small | 4.36 GiB')"),
    ("qwen3-32b", "q4_k_s", 17.48, "ggml-org/llama.cpp PR #13324 ('qwen3 32B Q4_K - Small | 17.48 GiB')"),
])
def test_gguf_file_sizes_match_llama_bench(model, fmt, gib, where):
    arch = resolve_model(model).arch
    size = F.weights_bytes(fmt, arch.tensors, arch.num_hidden_layers) / 2**30
    assert round(size, 2) == gib, where


def test_iq4_xs_between_q4_0_and_q4_k_m_rules():
    arch = resolve_model("llama-3.1-8b").arch
    n = arch.num_hidden_layers
    attn_v = next(t for t in arch.tensors if t.role == "attn_v" and t.layer == 5)
    down0 = next(t for t in arch.tensors if t.role == "mlp_down" and t.layer == 0)
    down20 = next(t for t in arch.tensors if t.role == "mlp_down" and t.layer == 20)
    mix = F.gguf_mix(arch.tensors, n)
    # llama-quant.cpp: IQ4_XS attn_v -> Q5_K when n_gqa >= 4 (Llama 3.1 8B: 32/8); ffn_down Q5_K in the first eighth
    assert F.gguf_tensor_type("iq4_xs", attn_v, mix) == "Q5_K"
    assert F.gguf_tensor_type("iq4_xs", down0, mix) == "Q5_K"
    assert F.gguf_tensor_type("iq4_xs", down20, mix) == "IQ4_XS"
    assert F.gguf_tensor_type("q4_0", attn_v, mix) == "Q4_0"


def test_q4_k_s_and_q5_k_s_rules():
    arch = resolve_model("llama-3.1-8b").arch
    n = arch.num_hidden_layers
    mix = F.gguf_mix(arch.tensors, n)

    def kind(fmt, role, layer):
        return F.gguf_tensor_type(fmt, next(t for t in arch.tensors if t.role == role and t.layer == layer), mix)
    # llama-quant.cpp: Q4_K_S attn_v Q5_K while i_attention_wv < 4, ffn_down Q5_K in the first eighth, else Q4_K
    assert [kind("q4_k_s", "attn_v", i) for i in (0, 3, 4, 20)] == ["Q5_K", "Q5_K", "Q4_K", "Q4_K"]
    assert [kind("q4_k_s", "mlp_down", i) for i in (0, n // 8 - 1, n // 8)] == ["Q5_K", "Q5_K", "Q4_K"]
    assert kind("q4_k_s", "attn_q", 0) == "Q4_K" and kind("q4_k_m", "attn_v", 0) == "Q6_K"
    # Q5_K_S: Q5_K everywhere but the output (Q6_K)
    assert {kind("q5_k_s", r, i) for r in ("attn_v", "mlp_down", "attn_q") for i in (0, 20)} == {"Q5_K"}
    head = next(t for t in arch.tensors if t.role == "lm_head")
    assert F.gguf_tensor_type("q5_k_s", head, mix) == "Q6_K"


def test_kv_block_types_follow_ggml_common_structs():
    # block_q8_0 = {ggml_half d; int8_t qs[32]} = 34 bytes; block_q4_0 = {ggml_half d; uint8_t qs[16]} = 18
    # Llama 3.1 8B: 8 KV heads x 128 = 1024 values per K row and per V row per layer
    assert F.attention_kv_bytes_per_token("q8_0", 8, 128) == 2 * 1024 // 32 * 34
    assert F.attention_kv_bytes_per_token("q4_0", 8, 128) == 2 * 1024 // 32 * 18
    arch = resolve_model("llama-3.1-8b").arch
    assert F.kv_bytes_per_token(arch, "q8_0") == 32 * 2 * 1024 // 32 * 34


def test_mlx_affine_bits_per_weight():
    # mlx.core.quantize: bits per element + a 16-bit scale and a 16-bit bias per group of 64
    assert F.bits_per_weight("mlx-4bit") == pytest.approx(4 + 32 / 64)
    assert F.bits_per_weight("mlx-8bit") == pytest.approx(8 + 32 / 64)
