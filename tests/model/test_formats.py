"""Tests for rigsize.model.formats.  Expected values come from outside rigsize:

* gguf-py 0.19.0 ``gguf.constants.GGML_QUANT_SIZES`` and files written by ``GGUFWriter``
  (quantized with ``gguf.quants`` where it has a quantizer) and read back by ``GGUFReader``;
* llama.cpp tools/quantize/README.md (ggml-org/llama.cpp commit 311c2c9f): measured
  bits/weight of Llama-3.1-8B per file type, printed to 4 decimals;
* QLoRA (Dettmers et al. 2023, arXiv:2305.14314) sec. 3 "Double Quantization";
* tensor shapes of AutoGPTQ QuantLinear, AutoAWQ WQLinear_GEMM, bitsandbytes
  Linear8bitLt and DeepSeek-V3's FP8 Linear, built by hand as torch tensors;
* FlashMLA README (656 bytes per token for the FP8 MLA cache);
* Qwen2-72B's intermediate_size 29568 (config.json), whose 231 GPTQ groups of 128 do
  not split over tp = 2, 4 or 8 (Qwen's GPTQ/AWQ releases pad it for that reason).
"""

from __future__ import annotations

import math
import re
import tomllib
from importlib import resources
from types import SimpleNamespace

import gguf
import numpy as np
import pytest
import torch
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rigsize.errors import FormatError, HardwareError
from rigsize.model import formats as F
from rigsize.model.tensors import LINEAR_ROLES, Tensor
from rigsize.model.tp_groups import tp_group_problems

CONTRACT = ("fp32 bf16 fp16 fp8 fp8-block int8 llm-int8 gptq-int4 gptq-int8 awq-int4 nf4 fp4 "
            "q8_0 q6_k q5_k_m q4_k_m q3_k_m q2_k").split()


# ----------------------------------------------------------------------------------
# helpers: models as tensors.py rows
# ----------------------------------------------------------------------------------

def llama_rows(n_layers=32, h=4096, n_heads=32, n_kv=8, head_dim=128, ffn=14336, vocab=128256,
               tied=False) -> list[Tensor]:
    """A Llama-style decoder (defaults: Llama-3.1-8B config.json)."""
    rows = [Tensor("model.embed_tokens.weight", "embed", (vocab, h))]
    for i in range(n_layers):
        p = f"model.layers.{i}"
        rows += [
            Tensor(f"{p}.self_attn.q_proj.weight", "attn_q", (n_heads * head_dim, h), i),
            Tensor(f"{p}.self_attn.k_proj.weight", "attn_k", (n_kv * head_dim, h), i),
            Tensor(f"{p}.self_attn.v_proj.weight", "attn_v", (n_kv * head_dim, h), i),
            Tensor(f"{p}.self_attn.o_proj.weight", "attn_o", (h, n_heads * head_dim), i),
            Tensor(f"{p}.mlp.gate_proj.weight", "mlp_gate", (ffn, h), i),
            Tensor(f"{p}.mlp.up_proj.weight", "mlp_up", (ffn, h), i),
            Tensor(f"{p}.mlp.down_proj.weight", "mlp_down", (h, ffn), i),
            Tensor(f"{p}.input_layernorm.weight", "norm", (h,), i),
            Tensor(f"{p}.post_attention_layernorm.weight", "norm", (h,), i),
        ]
    rows.append(Tensor("model.norm.weight", "norm", (h,)))
    if not tied:
        rows.append(Tensor("lm_head.weight", "lm_head", (vocab, h)))
    return rows


def nbits(*tensors: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() * 8 for t in tensors)


# ----------------------------------------------------------------------------------
# catalog
# ----------------------------------------------------------------------------------

def test_contract_names_exist():
    names = [f.name for f in F.weight_formats()]
    for name in CONTRACT:
        assert name in names
    assert {k.name for k in F.kv_formats()} >= {"bf16", "fp16", "fp8", "int8", "fp8-ds-mla"}


DOC_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
READ_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _dated_rows() -> dict[str, dict]:
    """Every catalog row with its raw keys (the dataclasses keep as_of, not retrieved)."""
    data = tomllib.loads(resources.files("rigsize.data").joinpath("formats.toml").read_text(encoding="utf-8"))
    rows = {f"{kind}.{name}": row for kind in ("weight", "kv", "arch") for name, row in data[kind].items()}
    rows["gguf"] = data["gguf"]
    return rows


def test_every_row_has_source_and_dates():
    """as_of is the source document's own date (or "unknown"); retrieved is when it was read."""
    for key, row in _dated_rows().items():
        assert str(row["source"]).strip(), key
        assert row["as_of"] == "unknown" or DOC_DATE.fullmatch(row["as_of"]), (key, row["as_of"])
        assert READ_DATE.fullmatch(row["retrieved"]), (key, row.get("retrieved"))
        assert row["as_of"] == "unknown" or row["as_of"] <= row["retrieved"], (key, "document after reading")
    assert len(F.gguf_source()["llama_cpp_commit"]) == 40
    assert F.resolve_weight_format("fp32").as_of == "2019"      # IEEE 754-2019, read 2026-11-27


def test_aliases_are_unambiguous_and_resolve_to_their_owner():
    seen: dict[str, str] = {}
    for f in F.weight_formats():
        for key in (f.name, *f.aliases):
            norm = key.lower().replace("_", "-")
            assert seen.setdefault(norm, f.name) == f.name, key
            assert F.resolve_weight_format(key) is f
            assert F.resolve_weight_format(key.upper()) is f


def test_every_weight_format_is_known_to_every_architecture_table():
    for arch in F.architectures():
        for f in F.weight_formats():
            assert F.gpu_runs(f, arch) in ("native", "weight-only", "dequantize", "no")


# ----------------------------------------------------------------------------------
# names
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("alias, name", [
    ("w8a8", "int8"), ("fp8-e4m3", "fp8"), ("bnb-nf4", "nf4"), ("Q4_K_M", "q4_k_m"),
    ("q4_k_m", "q4_k_m"), ("q4-k-m", "q4_k_m"), ("Q4_K", "q4_k_m"), ("gptq", "gptq-int4"),
    ("GPTQ", "gptq-int4"), ("awq", "awq-int4"), ("float16", "fp16"), ("bfloat16", "bf16"),
    ("FP8_BLOCK", "fp8-block"), ("Q8_0", "q8_0"), ("bnb-int8", "llm-int8"), ("nvfp4", "nvfp4"),
])
def test_aliases(alias, name):
    assert F.resolve_weight_format(alias).name == name


def test_unknown_weight_format_suggests_close_matches():
    with pytest.raises(FormatError) as info:
        F.resolve_weight_format("q4km")
    err = info.value
    assert err.key == "format.unknown"
    assert err.params["name"] == "q4km"
    assert "q4_k_m" in err.params["suggestions"].split(", ")
    assert "q4km" in str(err)


def test_unknown_weight_format_without_close_match_lists_formats():
    with pytest.raises(FormatError) as info:
        F.resolve_weight_format("zzzzzzzz")
    assert "bf16" in info.value.params["suggestions"]


def test_unknown_kv_format():
    with pytest.raises(FormatError) as info:
        F.resolve_kv_format("fp9")
    assert info.value.key == "format.unknown_kv"
    assert "fp8" in info.value.params["suggestions"]
    assert F.resolve_kv_format("FP8_E4M3").name == "fp8"
    assert F.resolve_kv_format("fp8_ds_mla").name == "fp8-ds-mla"


# ----------------------------------------------------------------------------------
# GGUF: block sizes and files written by the gguf package
# ----------------------------------------------------------------------------------

def test_ggml_block_layouts_match_gguf_package():
    # gguf-py 0.19.0 gguf/constants.py GGML_QUANT_SIZES: (block size, type size in bytes)
    for name, t in F.gguf_types().items():
        assert GGML_QUANT_SIZES[GGMLQuantizationType[name]] == (t.block_size, t.type_bytes), name
    # the k-quant block bytes the brief quotes: Q8_0 34/32, Q6_K 210/256, Q5_K 176/256,
    # Q4_K 144/256, Q3_K 110/256, Q2_K 84/256
    expect = {"Q8_0": (32, 34), "Q6_K": (256, 210), "Q5_K": (256, 176), "Q4_K": (256, 144),
              "Q3_K": (256, 110), "Q2_K": (256, 84)}
    for name, pair in expect.items():
        assert GGML_QUANT_SIZES[GGMLQuantizationType[name]] == pair


def _gguf_array(qtype: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Tensor data for GGUFWriter: quantized by gguf.quants when it can, else raw block
    bytes sized by gguf.quant_shape_to_byte_shape (checked to dequantize)."""
    q = GGMLQuantizationType[qtype]
    data = rng.standard_normal(shape).astype(np.float32)
    if qtype == "F32":
        return data
    try:
        return gguf.quants.quantize(data, q)
    except NotImplementedError:
        raw = np.zeros(gguf.quant_shape_to_byte_shape(shape, q), dtype=np.uint8)
        assert gguf.quants.dequantize(raw, q).shape == shape
        return raw


def _write_and_read(tmp_path, fmt: str, rows: list[Tensor], n_layers: int):
    mix = F.gguf_mix(rows, n_layers)
    path = tmp_path / f"{fmt}.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    rng = np.random.default_rng(0)
    expected = {}
    for t in rows:
        qtype = F.gguf_tensor_type(fmt, t, mix)
        shape = (t.count, *t.shape) if t.count > 1 else t.shape
        writer.add_tensor(t.name, _gguf_array(qtype, shape, rng), raw_dtype=GGMLQuantizationType[qtype])
        expected[t.name] = (qtype, F.tensor_bits(fmt, t, n_layers, mix=mix))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return expected, gguf.GGUFReader(str(path)).tensors


@pytest.mark.parametrize("fmt", ["q8_0", "q4_k_m", "q2_k", "q6_k"])
def test_gguf_file_bytes_match(tmp_path, fmt):
    # 8 layers so that use_more_bits picks some layers; ffn 768 = 3 x 256; a 320-wide
    # down projection (not a multiple of 256) and a 100-wide one (not of 32) exercise
    # llama.cpp's fallbacks.
    rows = llama_rows(n_layers=8, h=256, n_heads=4, n_kv=1, head_dim=64, ffn=768, vocab=512)
    rows += [Tensor("odd.ffn_down_320.weight", "mlp_down", (256, 320), 3),
             Tensor("odd.ffn_down_100.weight", "mlp_down", (64, 100), 4),
             Tensor("blk.0.ffn_gate_inp.weight", "router", (8, 256), 0),
             Tensor("blk.0.ffn_down_exps.weight", "expert_down", (256, 512), 0, count=4)]
    expected, tensors = _write_and_read(tmp_path, fmt, rows, n_layers=8)
    assert len(tensors) == len(rows)
    for rt in tensors:
        qtype, bits = expected[rt.name]
        assert rt.tensor_type.name == qtype, rt.name
        assert rt.n_bytes * 8 == bits, rt.name
    assert sum(int(rt.n_bytes) for rt in tensors) == F.weights_bytes(fmt, rows, 8)


def test_gguf_fallbacks_follow_llama_quant():
    mix = F.GGUFMix(n_layers=8)
    odd = Tensor("x", "mlp_up", (256, 320), 0)     # 320 % 256 != 0, 320 % 32 == 0
    assert F.gguf_tensor_type("q4_k_m", odd, mix) == "Q5_0"
    assert F.gguf_tensor_type("q5_k_m", odd, mix) == "Q5_1"
    assert F.gguf_tensor_type("q2_k", odd, mix) == "Q4_0"
    assert F.gguf_tensor_type("q3_k_m", odd, mix) == "Q4_0"
    assert F.gguf_tensor_type("q6_k", odd, mix) == "Q8_0"
    assert F.gguf_tensor_type("q4_k_m", Tensor("y", "mlp_up", (64, 100), 0), mix) == "F16"
    # output.weight whose row is not a multiple of the block size -> Q8_0
    assert F.gguf_tensor_type("q4_k_m", Tensor("o", "lm_head", (512, 320)), mix) == "Q8_0"


def test_gguf_mix_rules_for_llama_3_1_8b():
    rows = llama_rows()
    mix = F.gguf_mix(rows, 32)
    assert mix == F.GGUFMix(n_layers=32, n_expert=0, n_gqa=4, tied_embeddings=False)
    types = {t.name: F.gguf_tensor_type("q4_k_m", t, mix) for t in rows}
    assert types["lm_head.weight"] == "Q6_K"
    assert types["model.embed_tokens.weight"] == "Q4_K"          # untied: default type
    assert types["model.norm.weight"] == "F32"
    # use_more_bits(i, 32): i < 4, i >= 28, or (i - 4) % 3 == 2
    more = [i for i in range(32) if types[f"model.layers.{i}.self_attn.v_proj.weight"] == "Q6_K"]
    assert more == [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]
    assert more == [i for i in range(32) if types[f"model.layers.{i}.mlp.down_proj.weight"] == "Q6_K"]
    assert types["model.layers.5.self_attn.q_proj.weight"] == "Q4_K"
    # tied embeddings: token_embd takes the output's type
    tied = llama_rows(n_layers=2, h=256, n_heads=4, n_kv=4, head_dim=64, ffn=512, vocab=512, tied=True)
    assert F.gguf_tensor_type("q4_k_m", tied[0], F.gguf_mix(tied, 2)) == "Q6_K"


def test_gguf_mixtral_8_expert_rules():
    mix = F.GGUFMix(n_layers=32, n_expert=8, n_gqa=4)
    assert F.gguf_tensor_type("q4_k_m", Tensor("v", "attn_v", (1024, 4096), 10), mix) == "Q8_0"
    assert F.gguf_tensor_type("q4_k_m", Tensor("k", "attn_k", (1024, 4096), 10), mix) == "Q8_0"
    assert F.gguf_tensor_type("q4_k_m", Tensor("o", "attn_o", (4096, 4096), 10), mix) == "Q5_K"
    assert F.gguf_tensor_type("q3_k_m", Tensor("o", "attn_o", (4096, 4096), 10), F.GGUFMix(32)) == "Q4_K"
    assert F.gguf_tensor_type("q2_k", Tensor("v", "attn_v", (1024, 4096), 10), F.GGUFMix(32, n_gqa=2)) == "Q3_K"


# llama.cpp tools/quantize/README.md (commit 311c2c9f), meta-llama/Llama-3.1-8B:
# bits/weight = model size * 8 / parameters as llama-bench prints them (4 decimals).
# The converted model also holds rope_freqs.weight (64 F32 values), counted here.
@pytest.mark.parametrize("fmt, bpw", [
    ("q2_k", 3.1593), ("q4_k_m", 4.8944), ("q5_k_m", 5.7036), ("q6_k", 6.5633), ("q8_0", 8.5008),
])
def test_llama_3_1_8b_bits_per_weight_match_llama_cpp_readme(fmt, bpw):
    rows = llama_rows()
    params = sum(t.numel for t in rows) + 64
    assert params == 8_030_261_312  # 8,030,261,248 (HF) + rope_freqs
    bits = F.weights_bits(fmt, rows, 32) + 64 * 32
    assert bits / params == pytest.approx(bpw, abs=5e-5)


# ----------------------------------------------------------------------------------
# reference storage layouts, rebuilt as torch tensors
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("out_f, in_f", [(4096, 4096), (1024, 4096), (8192, 29568), (4096, 14336)])
def test_gptq_int4_matches_autogptq_quantlinear_buffers(out_f, in_f):
    # AutoGPTQ qlinear_cuda_old.QuantLinear (bits=4, group_size=128)
    bits, g = 4, 128
    sd = [torch.empty(in_f // 32 * bits, out_f, dtype=torch.int32),            # qweight
          torch.empty(math.ceil(in_f / g), out_f // 32 * bits, dtype=torch.int32),  # qzeros
          torch.empty(math.ceil(in_f / g), out_f, dtype=torch.float16),        # scales
          torch.empty(in_f, dtype=torch.int32)]                                 # g_idx
    t = Tensor("w", "mlp_down", (out_f, in_f), 0)
    assert F.tensor_bits("gptq-int4", t, 1) == nbits(*sd)


def test_gptq_int8_matches_autogptq_quantlinear_buffers():
    out_f, in_f, bits, g = 4096, 11008, 8, 128
    sd = [torch.empty(in_f // 32 * bits, out_f, dtype=torch.int32),
          torch.empty(math.ceil(in_f / g), out_f // 32 * bits, dtype=torch.int32),
          torch.empty(math.ceil(in_f / g), out_f, dtype=torch.float16),
          torch.empty(in_f, dtype=torch.int32)]
    assert F.tensor_bits("gptq-int8", Tensor("w", "mlp_down", (out_f, in_f), 0), 1) == nbits(*sd)


def test_awq_matches_autoawq_gemm_buffers():
    # AutoAWQ WQLinear_GEMM (w_bit=4, group_size=128): no g_idx
    out_f, in_f, g = 14336, 4096, 128
    sd = [torch.empty(in_f, out_f // 8, dtype=torch.int32),
          torch.empty(in_f // g, out_f // 8, dtype=torch.int32),
          torch.empty(in_f // g, out_f, dtype=torch.float16)]
    assert F.tensor_bits("awq-int4", Tensor("w", "mlp_up", (out_f, in_f), 0), 1) == nbits(*sd)


def test_llm_int8_matches_bitsandbytes_state_dict():
    # bitsandbytes Linear8bitLt state dict: weight int8 [out, in] + SCB float32 [out]
    out_f, in_f = 4096, 11008
    sd = [torch.empty(out_f, in_f, dtype=torch.int8), torch.empty(out_f, dtype=torch.float32)]
    assert F.tensor_bits("llm-int8", Tensor("w", "mlp_down", (out_f, in_f), 0), 1) == nbits(*sd)


def test_fp8_block_matches_deepseek_v3_linear():
    # DeepSeek-V3 inference/model.py Linear: fp8 weight + fp32 scale per 128x128 tile;
    # 7168 x 18432 (dense MLP) and 576 x 7168 (kv_a_proj_with_mqa, a partial tile)
    for out_f, in_f in [(18432, 7168), (576, 7168), (7168, 2048)]:
        sd = [torch.empty(out_f, in_f, dtype=torch.float8_e4m3fn),
              torch.empty(math.ceil(out_f / 128), math.ceil(in_f / 128), dtype=torch.float32)]
        assert F.tensor_bits("fp8-block", Tensor("w", "mlp_up", (out_f, in_f), 0), 1) == nbits(*sd)
    # the MoE gate stays bf16 and its e_score_correction_bias fp32
    assert F.tensor_bits("fp8-block", Tensor("g", "router", (256, 7168), 3), 61) == 256 * 7168 * 16
    assert F.tensor_bits("fp8-block", Tensor("b", "router", (256,), 3), 61) == 256 * 32
    assert F.tensor_bits("fp8-block", Tensor("e", "embed", (129280, 7168)), 61) == 129280 * 7168 * 16


def test_fp8_per_tensor_and_nvfp4_layouts():
    out_f, in_f = 4096, 4096
    fp8 = [torch.empty(out_f, in_f, dtype=torch.float8_e4m3fn), torch.empty(1, dtype=torch.float32)]
    assert F.tensor_bits("fp8", Tensor("w", "attn_q", (out_f, in_f), 0), 1) == nbits(*fp8)
    # ModelOpt NVFP4: uint8 [out, in/2], e4m3 [out, in/16], two fp32 scalars
    nv = [torch.empty(out_f, in_f // 2, dtype=torch.uint8),
          torch.empty(out_f, in_f // 16, dtype=torch.float8_e4m3fn),
          torch.empty(1, dtype=torch.float32), torch.empty(1, dtype=torch.float32)]
    assert F.tensor_bits("nvfp4", Tensor("w", "attn_q", (out_f, in_f), 0), 1) == nbits(*nv)
    # gguf-py's NVFP4 block: 36 bytes per 64 elements = 4.5 bits
    assert GGML_QUANT_SIZES[GGMLQuantizationType.NVFP4] == (64, 36)
    assert F.bits_per_weight("nvfp4", 8192, 8192) == pytest.approx(36 * 8 / 64, abs=1e-5)


def test_nf4_double_quant_overhead_is_qlora_0_127_bits():
    # QLoRA sec. 3: double quantization costs 8/64 + 32/(64*256) = 0.127 bits/parameter
    fmt = F.resolve_weight_format("nf4")
    n_rows, n_cols = 8192, 8192
    bits = F.tensor_bits(fmt, Tensor("w", "mlp_up", (n_rows, n_cols), 0), 1)
    overhead = (bits - 4 * n_rows * n_cols - fmt.per_tensor_bits) / (n_rows * n_cols)
    assert overhead == pytest.approx(8 / 64 + 32 / (64 * 256))
    assert overhead == pytest.approx(0.127, abs=5e-4)
    # without double quantization it would be 32/64 = 0.5 bits
    assert 32 / 64 - overhead == pytest.approx(0.373, abs=5e-4)


def test_qlora_training_upcasts_kept_tensors_to_fp32():
    rows = llama_rows(n_layers=2, h=256, n_heads=4, n_kv=4, head_dim=64, ffn=512, vocab=1000)
    embed = rows[0]
    assert F.tensor_bits("nf4", embed, 2) == embed.numel * 16
    assert F.tensor_bits("nf4", embed, 2, training=True) == embed.numel * 32
    assert F.resolve_weight_format("nf4").training_upcast_bits == 32
    assert F.resolve_weight_format("gptq-int4").training_upcast_bits is None   # PEFT skips GPTQ
    assert F.weights_bits("nf4", rows, 2, training=True) > F.weights_bits("nf4", rows, 2)
    # quantized layers are unchanged by the upcast
    q = rows[1]
    assert F.tensor_bits("nf4", q, 2, training=True) == F.tensor_bits("nf4", q, 2)


def test_breakdown_sums_to_total():
    rows = llama_rows(n_layers=4, h=512, n_heads=8, n_kv=2, head_dim=64, ffn=1536, vocab=1000)
    for fmt in ("gptq-int4", "q4_k_m", "bf16", "nf4"):
        parts = F.weight_bits_by_role(fmt, rows, 4)
        assert sum(parts.values()) == F.weights_bits(fmt, rows, 4)
        assert F.weights_bytes(fmt, rows, 4) == math.ceil(sum(parts.values()) / 8)


def test_dense_formats_count_every_element():
    rows = llama_rows(n_layers=2, h=256, n_heads=4, n_kv=4, head_dim=64, ffn=512, vocab=1000)
    n = sum(t.numel for t in rows)
    assert F.weights_bytes("bf16", rows, 2) == 2 * n
    assert F.weights_bytes("fp16", rows, 2) == 2 * n
    assert F.weights_bytes("fp32", rows, 2) == 4 * n


# ----------------------------------------------------------------------------------
# tensor parallelism
# ----------------------------------------------------------------------------------

def qwen2_72b_rows() -> list[Tensor]:
    # Qwen2-72B config.json: hidden 8192, intermediate 29568, 80 layers, 64 heads, 8 KV heads
    rows = []
    for i in range(80):
        rows += [Tensor(f"model.layers.{i}.self_attn.o_proj.weight", "attn_o", (8192, 8192), i),
                 Tensor(f"model.layers.{i}.mlp.up_proj.weight", "mlp_up", (29568, 8192), i),
                 Tensor(f"model.layers.{i}.mlp.down_proj.weight", "mlp_down", (8192, 29568), i)]
    return rows


@pytest.mark.parametrize("fmt", ["gptq-int4", "awq-int4", "gptq-int8"])
def test_qwen2_72b_intermediate_does_not_split_into_groups_of_128(fmt):
    rows = qwen2_72b_rows()
    assert tp_group_problems(fmt, rows, 1) == []
    for tp in (2, 4, 8):
        problems = tp_group_problems(fmt, rows, tp)
        assert len(problems) == 1
        p = problems[0]
        assert (p.role, p.axis, p.dim, p.group, p.tp) == ("mlp_down", "in", 29568, 128, tp)
        assert p.n_tensors == 80 and p.tensor == "model.layers.0.mlp.down_proj.weight"
        assert 29568 / 128 == 231 == p.groups
        assert p.good == (1, 3, 7, 11, 21, 33)
        err = p.error()
        assert err.key == "format.tp_groups"
        assert err.params == {"fmt": fmt, "tensor": p.tensor, "dim": 29568, "groups": 231,
                              "group": 128, "tp": tp, "good": "1, 3, 7, 11, 21, 33"}
    # 8192 / 128 = 64 groups: attn_o splits at every power of two up to 64
    only_o = [t for t in rows if t.role == "attn_o"]
    assert all(tp_group_problems(fmt, only_o, tp) == [] for tp in (2, 4, 8, 16, 32, 64))


def test_tp_groups_unquantized_and_per_channel_formats_have_none():
    rows = qwen2_72b_rows()
    for fmt in ("bf16", "fp8", "int8", "llm-int8", "nf4"):
        assert tp_group_problems(fmt, rows, 8) == []


def test_fp8_block_checks_both_axes_qwen3_30b_a3b():
    # Qwen3-30B-A3B-FP8 (128x128 blocks): moe_intermediate_size 768 / tp 4 = 192, not a
    # multiple of 128, on both the column-parallel gate/up and the row-parallel down.
    rows = [Tensor("e.gate", "expert_gate", (768, 2048), 0, count=128),
            Tensor("e.up", "expert_up", (768, 2048), 0, count=128),
            Tensor("e.down", "expert_down", (2048, 768), 0, count=128)]
    assert tp_group_problems("fp8-block", rows, 2) == []   # 384 = 3 x 128
    problems = {(p.role, p.axis) for p in tp_group_problems("fp8-block", rows, 4)}
    assert problems == {("expert_gate", "out"), ("expert_up", "out"), ("expert_down", "in")}
    out = next(p for p in tp_group_problems("fp8-block", rows, 4) if p.axis == "out")
    assert out.error().key == "format.tp_groups_out" and out.good == (1, 2, 3, 6)


def test_gguf_tp_blocks_follow_the_fallback_type():
    # 29568 is not a multiple of 256, so llama-quantize falls back to 32-wide blocks for
    # Qwen2-72B's ffn_down (Q4_K -> Q5_0, Q6_K -> Q8_0): 924 blocks split over tp 2 and 4
    # but not 8.
    rows = qwen2_72b_rows()
    mix = F.gguf_mix(rows, 80)
    downs = [F.gguf_tensor_type("q4_k_m", t, mix) for t in rows if t.role == "mlp_down"]
    assert set(downs) == {"Q5_0", "Q8_0"}
    assert tp_group_problems("q4_k_m", rows, 2) == tp_group_problems("q4_k_m", rows, 4) == []
    problems = tp_group_problems("q4_k_m", rows, 8)
    assert [(p.role, p.group, p.n_tensors) for p in problems] == [("mlp_down", 32, 80)]
    # a 256-block type on a row-parallel layer: 1280 = 5 blocks of 256
    odd = [Tensor("o", "attn_o", (1024, 1280), 0)]
    assert [p.good for p in tp_group_problems("q4_k_m", odd, 2)] == [(1, 5)]


@settings(max_examples=200, deadline=None)
@given(n_groups=st.integers(1, 400), tp=st.sampled_from([1, 2, 3, 4, 6, 8, 16]))
def test_tp_rule_is_whole_groups_per_shard(n_groups, tp):
    rows = [Tensor("d", "mlp_down", (1024, 128 * n_groups), 0)]
    problems = tp_group_problems("gptq-int4", rows, tp)
    assert bool(problems) == (tp > 1 and n_groups % tp != 0)
    for p in problems:
        assert tp not in p.good and all(n_groups % g == 0 for g in p.good)


# ----------------------------------------------------------------------------------
# GPU support
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, arch, expect", [
    ("fp8", "volta", "no"), ("fp8", "turing", "no"), ("fp8", "ampere", "weight-only"),
    ("fp8", "ada", "native"), ("fp8", "hopper", "native"), ("fp8", "blackwell", "native"),
    ("fp8", "cdna3", "native"), ("fp8", "davinci", "no"), ("fp8-block", "davinci", "no"),
    ("bf16", "volta", "no"), ("bf16", "turing", "no"), ("bf16", "ampere", "native"),
    ("fp16", "volta", "native"), ("gptq-int4", "hopper", "weight-only"),
    ("nvfp4", "blackwell", "native"), ("nvfp4", "hopper", "weight-only"), ("awq-int4", "volta", "no"),
    ("int8", "turing", "native"), ("int8", "davinci", "native"), ("q4_k_m", "gaudi3", "no"),
    ("Q4_K_M", "Hopper", "weight-only"),
])
def test_gpu_runs(fmt, arch, expect):
    assert F.gpu_runs(fmt, arch) == expect


def test_fp8_variants():
    assert F.arch_support("cdna3").fp8_variant == "e4m3fnuz"
    assert F.arch_support("hopper").fp8_variant == "e4m3fn"
    for arch in ("volta", "turing", "ampere", "davinci"):
        assert F.arch_support(arch).fp8_variant == "none"
        assert F.gpu_runs("fp8", arch) != "native"


def test_unknown_architecture():
    with pytest.raises(HardwareError) as info:
        F.gpu_runs("fp8", "hoper")
    assert info.value.key == "gpu.unknown_arch"
    assert "hopper" in info.value.params["suggestions"]


# ----------------------------------------------------------------------------------
# KV cache
# ----------------------------------------------------------------------------------

def test_flashmla_fp8_cache_is_656_bytes_for_deepseek_v3():
    # FlashMLA README: 512 fp8 + 4 fp32 scales + 64 bf16 = 656 bytes per token
    assert F.mla_kv_bytes_per_token("fp8-ds-mla", 512, 64) == 512 + 4 * 4 + 64 * 2 == 656
    assert F.mla_kv_bytes_per_token("bf16", 512, 64) == 1152
    assert F.mla_kv_bytes_per_token("fp8", 512, 64) == 576


def test_kv_bytes_per_token_for_architectures():
    mla = SimpleNamespace(attention="mla", num_hidden_layers=61, head_dim=576, kv_elements_per_token=61 * 576,
                          tensors=(Tensor("kv_b", "attn_kv_b", (128 * 256, 512), 0),))
    assert F.kv_bytes_per_token(mla, "fp8-ds-mla") == 61 * 656
    assert F.kv_bytes_per_token(mla, "bf16") == 61 * 576 * 2
    # Llama-3.1-8B: 2 (K, V) x 32 layers x 8 KV heads x 128
    std = SimpleNamespace(attention="standard", num_hidden_layers=32, head_dim=128,
                          kv_elements_per_token=2 * 32 * 8 * 128, tensors=())
    assert F.kv_bytes_per_token(std, "bf16") == 131072
    assert F.kv_bytes_per_token(std, "fp8") == 65536
    assert F.kv_bytes_per_token(std, "int8") == 65536
    assert F.attention_kv_bytes_per_token("bf16", 8, 128) * 32 == 131072
    with pytest.raises(FormatError) as info:
        F.kv_bytes_per_token(std, "fp8-ds-mla")
    assert info.value.key == "format.kv_mla_only"


# ----------------------------------------------------------------------------------
# the formats table
# ----------------------------------------------------------------------------------

def test_format_table_rows():
    rows = F.format_table()
    assert [r["name"] for r in rows if r["kind"] == "weight"] == [f.name for f in F.weight_formats()]
    for r in rows:
        assert {"name", "bits_per_weight", "high_precision_tensors", "source", "kind", "aliases",
                "notes"} <= set(r)
        assert r["source"] and r["kind"] in ("weight", "kv")
    by = {r["name"]: r for r in rows if r["kind"] == "weight"}
    assert by["bf16"]["bits_per_weight"] == 16.0
    assert by["q4_k_m"]["bits_per_weight"] == 4.5          # Q4_K: 144 bytes / 256
    assert by["q8_0"]["bits_per_weight"] == 8.5            # Q8_0: 34 bytes / 32
    assert 4.127 < by["nf4"]["bits_per_weight"] < 4.128
    assert "lm_head" in by["gptq-int4"]["high_precision_tensors"]
    assert "Q6_K" in by["q4_k_m"]["high_precision_tensors"]


# ----------------------------------------------------------------------------------
# properties
# ----------------------------------------------------------------------------------

ROLES = sorted(F.GGUF_CATEGORY) + ["norm", "bias", "router", "pos_embed"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fmt=st.sampled_from([f.name for f in F.weight_formats()]), role=st.sampled_from(ROLES),
       shape=st.lists(st.integers(1, 600), min_size=1, max_size=3).map(tuple),
       count=st.integers(1, 4), n_layers=st.integers(1, 64), data=st.data())
def test_bits_never_negative_and_cover_the_elements(fmt, role, shape, count, n_layers, data):
    layer = data.draw(st.integers(0, n_layers - 1))
    t = Tensor("t", role, shape, layer, count)
    bits = F.tensor_bits(fmt, t, n_layers)
    assert bits >= 0
    assert bits >= t.numel * 2          # nothing is stored in fewer than 2 bits per element
    assert F.tensor_bits(fmt, t, n_layers, training=True) >= bits


# roles whose GGUF type is the file type's default (no per-role bumps)
PLAIN_ROLES = ["attn_q", "mlp_gate", "mlp_up", "expert_up", "shared_gate"]


@settings(max_examples=300, deadline=None)
@given(rows=st.integers(1, 24).map(lambda k: 256 * k), cols=st.integers(1, 24).map(lambda k: 256 * k),
       role=st.sampled_from(PLAIN_ROLES), count=st.integers(1, 3))
def test_lower_precision_never_costs_more(rows, cols, role, count):
    t = Tensor("w", role, (rows, cols), 0, count)
    # a format that leaves this role alone (mxfp4 quantizes only routed experts) stores it
    # at its kept width, whatever its element width
    # (MXFP4_MOE has two widths by role: MXFP4 experts, Q8_0 elsewhere, so no single element width to order by)
    priced = [(f.element_bits, F.tensor_bits(f, t, 8), f.name) for f in F.weight_formats()
              if (f.layout in ("dense", "gguf") or role in f.quantized_roles) and f.ftype != "MXFP4_MOE"]
    for eb_a, bits_a, a in priced:
        for eb_b, bits_b, b in priced:
            if eb_a < eb_b:
                assert bits_a <= bits_b, (a, b)


@pytest.mark.parametrize("n_layers, h, ffn", [(32, 4096, 14336), (8, 256, 768), (80, 8192, 28672)])
def test_gguf_file_types_order_on_whole_models(n_layers, h, ffn):
    rows = llama_rows(n_layers=n_layers, h=h, n_heads=h // 128, n_kv=max(1, h // 1024), ffn=ffn, vocab=32000)
    chain = ["q2_k", "q3_k_m", "q4_k_m", "q5_k_m", "q6_k", "q8_0", "bf16", "fp32"]
    sizes = [F.weights_bytes(f, rows, n_layers) for f in chain]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)


def test_quantized_formats_touch_only_linear_roles():
    for f in F.weight_formats():
        if f.name.startswith("mlx-"):     # mlx.nn.quantize takes Embedding too (formats.toml [weight.mlx-4bit])
            assert f.quantized_roles == LINEAR_ROLES | {"embed", "lm_head"}
            continue
        assert f.quantized_roles <= LINEAR_ROLES
