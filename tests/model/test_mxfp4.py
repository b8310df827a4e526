"""MXFP4 (OCP microscaling FP4) as gpt-oss stores it.

Expected values come from outside rigsize:

* gpt-oss safetensors headers as public sources record them
  (``tests/fixtures/gpt_oss_safetensors.json``): the 120b tensor inventory (shapes and
  dtypes of all 687 tensors) and the 20b byte totals read from its three headers
  (U8 experts 10,152,345,600 + BF16 3,608,919,168 = 13,761,264,768 bytes).  Exact.
* gguf-py's ``GGML_QUANT_SIZES``: MXFP4 = 17 bytes per 32 values;
* vLLM ``mxfp4.py`` and transformers ``quantizer_mxfp4.py`` for who runs it how
  (cited in ``data/formats.toml``).
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import pytest
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

from rigsize.model import formats as F
from rigsize.model.inputs import preset_config, resolve_model, stored_weight_format
from rigsize.model.quantization import quantization_format
from rigsize.model.tensors import Tensor
from rigsize.model.tp_groups import tp_group_problems

FIXTURE = Path(__file__).parent.parent / "fixtures" / "gpt_oss_safetensors.json"
_BYTES = {"U8": 1, "BF16": 2}


def _recorded() -> dict:
    return json.loads(FIXTURE.read_text())


def _weights_bytes(preset: str) -> tuple[int, F.WeightFormat]:
    spec = resolve_model(preset)
    fmt, _ = stored_weight_format(spec)
    return F.weights_bytes(fmt, spec.arch.tensors, spec.arch.num_hidden_layers), fmt


def test_mxfp4_is_4_25_bits_and_17_bytes_per_32() -> None:
    fmt = F.resolve_weight_format("mxfp4")
    assert F.bits_per_weight(fmt, 2880, 2880) == 4.25
    # one expert's gate_up rows as gpt-oss stores them: blocks [5760, 90, 16] + scales [5760, 90]
    t = Tensor("model.layers.0.mlp.experts.gate_proj", "expert_gate", (5760, 2880), 0)
    assert F.tensor_bits(fmt, t, 1) == (5760 * 90 * 16 + 5760 * 90) * 8
    # GGUF's MXFP4 block: one E8M0 byte and 16 bytes of E2M1 pairs per 32 values
    assert GGML_QUANT_SIZES[GGMLQuantizationType.MXFP4] == (32, 17)
    assert (F.gguf_types()["MXFP4"].block_size, F.gguf_types()["MXFP4"].type_bytes) == (32, 17)
    assert 17 * 8 / 32 == 4.25


def test_gpt_oss_20b_bytes_equal_its_safetensors_headers() -> None:
    rec = _recorded()["gpt-oss-20b"]
    total, fmt = _weights_bytes("gpt-oss-20b")
    assert fmt.name == "mxfp4"
    assert total == rec["total_bytes"] == rec["u8_expert_bytes"] + rec["bf16_bytes"]
    spec = resolve_model("gpt-oss-20b")
    by_role = F.weight_bits_by_role(fmt, [t for t in spec.arch.tensors if len(t.shape) == 2],
                                    spec.arch.num_hidden_layers)
    experts = sum(b for r, b in by_role.items() if r.startswith("expert_")) // 8
    assert experts == rec["u8_expert_bytes"]                     # blocks + scales, biases aside
    shapes = rec["expert_shapes"]
    assert experts == 24 * sum(math.prod(s) for s in shapes.values())


def test_gpt_oss_120b_bytes_equal_its_header_inventory() -> None:
    rec = _recorded()["gpt-oss-120b"]
    assert sum(n for _, n, _, _ in rec["tensors"]) == rec["tensor_count"]
    for dtype, n in rec["dtype_tensor_counts"].items():
        assert sum(c for _, c, _, d in rec["tensors"] if d == dtype) == n
    header_bytes = sum(n * math.prod(shape) * _BYTES[d] for _, n, shape, d in rec["tensors"])
    total, _ = _weights_bytes("gpt-oss-120b")
    assert total == header_bytes == 65_248_815_744


def _write_checkpoint(folder: Path, tensors: dict[str, tuple[str, list[int]]]) -> None:
    """A safetensors file with these (dtype, shape) tensors, zero-filled."""
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        size = math.prod(shape) * _BYTES[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header).encode()
    with (folder / "model.safetensors").open("wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob + bytes(offset))


def test_a_gpt_oss_folder_sizes_from_its_headers(tmp_path: Path) -> None:
    """A small gpt-oss checkpoint in the published layout (names and dtypes of the 120b
    inventory, small widths): stored params equal the layout, bytes equal the headers."""
    rec = _recorded()["gpt-oss-120b"]
    h, inter, e, heads, kv, hd, vocab, layers = 64, 96, 4, 4, 2, 16, 256, 2
    scale = {2880: h, 201088: vocab, 128: e, 5760: 2 * inter, 90: None, 16: 16, 4096: heads * hd,
             512: kv * hd, 64: heads}
    tensors: dict[str, tuple[str, list[int]]] = {}
    for name, _, shape, dtype in rec["tensors"]:
        dims = [scale[d] for d in shape]
        if "blocks" in name or "scales" in name:   # [E, out, in/32(, 16)]: in = hidden or inter
            dims[2] = (h if "gate_up" in name else inter) // 32
        if "down_proj" in name and "bias" not in name:
            dims[1] = h
        if name.endswith("down_proj_bias"):
            dims = [e, h]
        for i in range(layers if "{L}" in name else 1):
            tensors[name.replace("{L}", str(i))] = (dtype, dims)
    _write_checkpoint(tmp_path, tensors)
    cfg = {**preset_config("gpt-oss-120b"), "num_hidden_layers": layers, "hidden_size": h,
           "intermediate_size": inter, "num_local_experts": e, "num_attention_heads": heads,
           "num_key_value_heads": kv, "head_dim": hd, "vocab_size": vocab,
           "layer_types": ["sliding_attention", "full_attention"]}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    spec = resolve_model(str(tmp_path))
    assert spec.checkpoint.stored_params == spec.arch.params and not spec.warnings
    fmt, why = stored_weight_format(spec)
    assert fmt.name == "mxfp4" and "mxfp4" in why
    assert F.weights_bytes(fmt, spec.arch.tensors, layers) == spec.checkpoint.stored_bytes


def test_quantization_config_keeps_the_listed_modules_in_bf16() -> None:
    quant = preset_config("gpt-oss-120b")["quantization_config"]
    fmt, why = quantization_format(quant, "bf16")
    assert fmt.name == "mxfp4" and "4 module patterns kept in bf16" in why
    attn = Tensor("model.layers.3.self_attn.q_proj.weight", "attn_q", (4096, 2880), 3)
    router = Tensor("model.layers.3.mlp.router.weight", "router", (128, 2880), 3)
    expert = Tensor("model.layers.3.mlp.experts.down_proj", "expert_down", (2880, 2880), 3, 128)
    assert F.tensor_bits(fmt, attn, 36) == attn.numel * 16
    assert F.tensor_bits(fmt, router, 36) == router.numel * 16
    assert F.tensor_bits(fmt, expert, 36) == expert.numel * 4 + 128 * 2880 * 90 * 8


def test_only_routed_experts_are_mxfp4() -> None:
    """vLLM's Mxfp4Config gives every linear layer UnquantizedLinearMethod: a dense model
    in mxfp4 is priced as bf16."""
    spec = resolve_model("llama-3.1-8b")
    n = spec.arch.num_hidden_layers
    assert F.weights_bytes("mxfp4", spec.arch.tensors, n) == F.weights_bytes("bf16", spec.arch.tensors, n)


@pytest.mark.parametrize("arch, expect", [
    ("blackwell", "native"), ("cdna4", "native"),                # FP4 block-scaled matrix units
    ("hopper", "weight-only"), ("ada", "weight-only"), ("ampere", "weight-only"),   # vLLM Marlin / triton
    ("cdna3", "weight-only"), ("turing", "weight-only"),
    ("volta", "dequantize"),                                     # transformers upcasts to bf16 below sm75
    ("gaudi3", "no"), ("cdna2", "no"),
])
def test_who_runs_mxfp4(arch: str, expect: str) -> None:
    assert F.gpu_runs("mxfp4", arch) == expect


def test_mxfp4_reports_no_tp_group_problems() -> None:
    """vLLM's gpt-oss loader hands each rank cdiv(I/32, tp) whole blocks, so tp=8
    (2880 / 8 = 360, not a multiple of 32) loads."""
    spec = resolve_model("gpt-oss-120b")
    fmt, _ = stored_weight_format(spec)
    assert tp_group_problems(fmt, spec.arch.tensors, 8) == []


def test_mxfp4_is_in_the_formats_table() -> None:
    row = next(r for r in F.format_table() if r["name"] == "mxfp4")
    assert row["bits_per_weight"] == 4.25 and row["kind"] == "weight"
