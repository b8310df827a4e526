"""Mixed-precision checkpoints: modules a quantized checkpoint keeps unquantized.

Expected values come from outside rigsize:

* published checkpoint sizes (``data/validation/checkpoint_sizes.toml``: the sums of the
  safetensors files on each Hub "Files and versions" page, read 2026-12-01).  Tolerance
  0.5% where every scale tensor is modelled and the page rounds each file to 3
  significant figures (+-0.005 GB a file), 1% where rigsize leaves something out: the
  GPTQ row (g_idx counted though act-order may drop it; the safetensors header JSON) and
  the 10-file 405B row (each file rounded to +-0.05 GB);
* safetensors files written here with the ``safetensors`` package, whose headers say
  per tensor what is stored (the header overrides the config's lists);
* Meta's FP8 recipe for Llama 3.1 405B (Llama Team 2024, "The Llama 3 Herd of Models"
  sec. 6.2; llama-models ``convert_to_fp8_quantized_model``): only the feed-forward
  weights of layers 1..n-2 are FP8, attention and the first and last layers stay bf16.
"""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import rigsize
from rigsize.model import formats as F
from rigsize.model.inputs import preset_config, resolve_model
from rigsize.model.kept_modules import KeptModules
from rigsize.model.quantization import quantization_format
from rigsize.model.tensors import Tensor
from rigsize.model.tp_groups import tp_group_problems
from rigsize.shells.cli import main


def _rows() -> dict[str, dict]:
    text = resources.files("rigsize.data").joinpath("validation/checkpoint_sizes.toml").read_text()
    return tomllib.loads(text)


def _config_file(tmp_path: Path, preset: str, quant: dict | None, dtype: str) -> Path:
    cfg = {**preset_config(preset), "torch_dtype": dtype}
    if quant is not None:
        cfg["quantization_config"] = quant
    path = tmp_path / f"{preset}.json"
    path.write_text(json.dumps(cfg))
    return path


# ----------------------------------------------------------------------------------
# published checkpoints
# ----------------------------------------------------------------------------------

@pytest.mark.parametrize("repo", list(_rows()))
def test_published_checkpoint_sizes(tmp_path: Path, repo: str) -> None:
    row = _rows()[repo]
    assert row["as_of"] and row["url"].startswith("https://huggingface.co/")
    assert abs(sum(row["files_gb"]) * 1e9 - row["published_bytes"]) < 1e6
    path = _config_file(tmp_path, row["preset"], row.get("quantization_config"), row["torch_dtype"])
    opts = {"weights": row["weights"]} if "weights" in row else {}
    r = rigsize.estimate(str(path), **opts)
    err = r.model.weight_bytes / row["published_bytes"] - 1
    assert abs(err) <= row["tolerance"], f"{repo}: rigsize {r.model.weight_bytes:,} vs {row['published_bytes']:,} ({err:+.2%})"
    if "quantization_config" in row:        # the config was understood: no unknown-format warning
        assert not [w for w in r.warnings if "not a format rigsize knows" in w]


# ----------------------------------------------------------------------------------
# Llama 3.1 405B FP8 (Meta's recipe): attention and layers 0 / 125 in bf16
# ----------------------------------------------------------------------------------

def _meta_405b_fp8(tmp_path: Path) -> Path:
    n = preset_config("llama-3.1-405b")["num_hidden_layers"]
    kept = [f"model.layers.{i}.self_attn.{p}" for i in range(n) for p in ("q_proj", "k_proj", "v_proj", "o_proj")]
    kept += [f"model.layers.{i}.mlp.{p}" for i in (0, n - 1) for p in ("gate_proj", "up_proj", "down_proj")]
    quant = {"quant_method": "fbgemm_fp8", "activation_scale_ub": 1200.0, "modules_to_not_convert": [*kept, "lm_head"]}
    return _config_file(tmp_path, "llama-3.1-405b", quant, "bfloat16")


def test_405b_fp8_keeps_attention_and_edge_layers_in_bf16(tmp_path: Path) -> None:
    mixed = rigsize.estimate(str(_meta_405b_fp8(tmp_path)), tp=8, gpu="H200")
    plain = rigsize.estimate("llama-3.1-405b", tp=8, gpu="H200", weights="fp8")
    arch = resolve_model("llama-3.1-405b").arch
    # by hand: FFN of layers 1..124 at 8 bits (+ one fp32 scale each), everything else at 16
    ffn = [t for t in arch.tensors if t.role in ("mlp_gate", "mlp_up", "mlp_down")]
    quantized = [t for t in ffn if t.layer not in (0, arch.num_hidden_layers - 1)]
    expected = sum(t.numel * 2 for t in arch.tensors) - sum(t.numel for t in quantized) + 4 * len(quantized)
    assert mixed.model.weight_bytes == expected
    assert mixed.model.weight_format == "fp8"
    # per GPU (what the issue measured): 15.8% more than every-linear-fp8
    per_gpu_mixed, per_gpu_plain = mixed.memory.per_gpu.weights, plain.memory.per_gpu.weights
    assert per_gpu_mixed / per_gpu_plain == pytest.approx(1.188, abs=0.002)
    assert per_gpu_mixed == pytest.approx(expected / 8, rel=0.001)   # nearly everything splits 8 ways


# ----------------------------------------------------------------------------------
# safetensors headers override the config
# ----------------------------------------------------------------------------------

TINY = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256,
        "max_position_embeddings": 512, "tie_word_embeddings": False, "torch_dtype": "bfloat16"}


def _tiny_folder(tmp_path: Path, quant: dict, bf16_modules: set[str]) -> tuple[Path, int]:
    """A Llama-style checkpoint: FP8 (E4M3 + fp32 weight_scale) linear layers except
    ``bf16_modules``; returns the folder and the bytes of its tensors."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({**TINY, "quantization_config": quant}))
    arch = resolve_model(str(folder / "config.json")).arch
    tensors: dict[str, torch.Tensor] = {}
    for t in arch.tensors:
        module = t.name.removesuffix(".weight")
        if t.is_linear and module not in bf16_modules:
            tensors[t.name] = torch.zeros(t.shape, dtype=torch.float8_e4m3fn)
            tensors[f"{module}.weight_scale"] = torch.ones((), dtype=torch.float32)
        else:
            tensors[t.name] = torch.zeros(t.shape, dtype=torch.bfloat16)
    save_file(tensors, str(folder / "model.safetensors"))
    return folder, sum(v.numel() * v.element_size() for v in tensors.values())


def test_header_dtypes_override_config_lists(tmp_path: Path) -> None:
    # the config says layer 1's MLP was kept in bf16; the header says it is FP8 and that
    # layer 0's attention is bf16 instead
    quant = {"quant_method": "fp8", "activation_scheme": "dynamic", "modules_to_not_convert": ["model.layers.1.mlp"]}
    kept = {f"model.layers.0.self_attn.{p}" for p in ("q_proj", "k_proj", "v_proj", "o_proj")}
    folder, stored = _tiny_folder(tmp_path, quant, kept)
    r = rigsize.estimate(str(folder))
    assert r.model.weight_bytes == stored == r.model.stored_bytes
    assert "safetensors headers: 4 quantizable tensors" in r.assumptions["weights_reason"]
    # without the headers (config only) the config's list is what counts
    only_config = rigsize.estimate(str(folder / "config.json"))
    assert only_config.model.weight_bytes != stored


def test_header_rules_apply_to_memory_and_speed(tmp_path: Path) -> None:
    folder, stored = _tiny_folder(tmp_path, {"quant_method": "fp8"}, {"model.layers.1.mlp.down_proj"})
    r = rigsize.estimate(str(folder), gpus=1)
    assert r.memory.per_gpu.weights == r.model.weight_bytes == stored


def test_user_weights_other_than_the_checkpoint_format_drop_its_rules(tmp_path: Path) -> None:
    folder, _ = _tiny_folder(tmp_path, {"quant_method": "fp8"}, {"model.layers.1.mlp.down_proj"})
    spec = resolve_model(str(folder))
    own = rigsize.estimate(spec, weights="fp8").model.weight_bytes
    assert own == rigsize.estimate(spec).model.weight_bytes
    assert rigsize.estimate(spec, weights="bf16").model.weight_bytes == F.weights_bytes("bf16", spec.arch.tensors, 2)


# ----------------------------------------------------------------------------------
# patterns
# ----------------------------------------------------------------------------------

def _fmt(*patterns: str, base: str = "fp8") -> F.WeightFormat:
    from dataclasses import replace
    return replace(F.resolve_weight_format(base), kept_modules=KeptModules(tuple((p, "bf16") for p in patterns)))


Q = Tensor("model.layers.0.self_attn.q_proj.weight", "attn_q", (64, 64), 0)
Q10 = Tensor("model.layers.10.self_attn.q_proj.weight", "attn_q", (64, 64), 10)
UP = Tensor("model.layers.0.mlp.up_proj.weight", "mlp_up", (128, 64), 0)
EXPERTS = Tensor("model.layers.3.mlp.experts.gate_proj", "expert_gate", (32, 64), 3, count=8)
GATE = Tensor("model.layers.3.mlp.gate.weight", "router", (8, 64), 3)


@pytest.mark.parametrize("pattern, hits, misses", [
    ("self_attn", [Q, Q10], [UP]),                                   # a component anywhere
    ("model.layers.0", [Q, UP], [Q10]),                              # a prefix, not layers.10
    ("model.layers.0.self_attn.q_proj", [Q], [Q10, UP]),             # a full name
    ("q_proj", [Q, Q10], [UP]),                                      # a leaf (AutoAWQ / vLLM substring use)
    ("re:.*layers\\.1\\d\\..*", [Q10], [Q, UP]),                     # compressed-tensors regex
    ("re:.*experts\\.\\d+\\.gate_proj$", [EXPERTS], [Q]),            # per-expert names match merged rows
    ("model.layers.0.self_attn*", [Q], [Q10, UP]),                   # ModelOpt wildcard
])
def test_module_patterns(pattern: str, hits: list[Tensor], misses: list[Tensor]) -> None:
    fmt = _fmt(pattern)
    for t in hits:
        assert F.tensor_bits(fmt, t, 11) == t.numel * 16, (pattern, t.name)
    for t in misses:
        assert F.tensor_bits(fmt, t, 11) == F.tensor_bits("fp8", t, 11), (pattern, t.name)


def test_patterns_touch_only_quantizable_tensors() -> None:
    # "re:.*mlp.gate$" (RedHat FP8 MoE checkpoints) names the router, already kept
    assert F.tensor_bits(_fmt("re:.*mlp.gate$"), GATE, 4) == F.tensor_bits("fp8", GATE, 4)
    bias = Tensor("model.layers.3.mlp.gate.e_score_correction_bias", "router", (8,), 3)
    # DeepSeek-V3's fp32 gate bias keeps fp8-block's 32 bits, not the rule's bf16
    assert F.tensor_bits(_fmt("re:.*mlp.gate", base="fp8-block"), bias, 4) == 8 * 32


def test_kept_modules_skip_tp_group_checks() -> None:
    down = Tensor("model.layers.0.mlp.down_proj.weight", "mlp_down", (64, 29568), 0)
    assert tp_group_problems("gptq-int4", [down], 8)
    from dataclasses import replace
    kept = replace(F.resolve_weight_format("gptq-int4"), kept_modules=KeptModules((("mlp", "fp16"),)))
    assert not tp_group_problems(kept, [down], 8)


def test_qlora_upcasts_kept_modules() -> None:
    from dataclasses import replace
    nf4 = replace(F.resolve_weight_format("nf4"), kept_modules=KeptModules((("q_proj", "bf16"),)))
    assert F.tensor_bits(nf4, Q, 1, training=True) == Q.numel * 32


# ----------------------------------------------------------------------------------
# quantization_config -> format
# ----------------------------------------------------------------------------------

def _ct(weights: dict, **extra) -> dict:
    return {"quant_method": "compressed-tensors", "config_groups": {"group_0": {"targets": ["Linear"], "weights": weights}}, **extra}


@pytest.mark.parametrize("quant, name, group", [
    (_ct({"num_bits": 8, "type": "float", "strategy": "tensor"}), "fp8", None),
    (_ct({"num_bits": 8, "type": "float", "strategy": "channel"}), "fp8", None),
    (_ct({"num_bits": 8, "type": "float", "strategy": "block", "block_structure": [128, 128]}), "fp8-block", None),
    (_ct({"num_bits": 8, "type": "int", "strategy": "channel", "symmetric": True}), "int8", 0),
    (_ct({"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128, "symmetric": True}), "w4a16", 128),
    (_ct({"num_bits": 4, "type": "int", "strategy": "group", "group_size": 32, "symmetric": True}), "w4a16", 32),
    (_ct({"num_bits": 4, "type": "float", "strategy": "tensor_group", "group_size": 16}), "nvfp4", 16),
    ({"quant_method": "gptq", "bits": 4, "group_size": -1}, "gptq-int4", 0),
    ({"quant_method": "fbgemm_fp8", "activation_scale_ub": 1200.0}, "fp8", None),
    ({"quant_method": "modelopt", "quant_algo": "NVFP4", "exclude_modules": ["lm_head"]}, "nvfp4", 16),
])
def test_quantization_configs(quant: dict, name: str, group: int | None) -> None:
    found = quantization_format(quant)
    assert found is not None
    assert found[0].name == name
    if group is not None:
        assert found[0].group_size == group


@pytest.mark.parametrize("quant", [
    _ct({"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128, "symmetric": False}),   # zero points
    _ct({"num_bits": 8, "type": "float", "strategy": "tensor"}, sparsity_config={"format": "sparse-24-bitmask"}),
    {"quant_method": "compressed-tensors", "config_groups": {
        "a": {"weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128}},
        "b": {"weights": {"num_bits": 8, "type": "int", "strategy": "channel"}}}},
    {"quant_method": "hqq"},
])
def test_unknown_schemes_are_refused_and_warned(tmp_path: Path, quant: dict) -> None:
    assert quantization_format(quant) is None
    r = rigsize.estimate(str(_config_file(tmp_path, "llama-3.1-8b", quant, "bfloat16")))
    assert [w for w in r.warnings if "not a format rigsize knows" in w]
    assert r.model.weight_format == "bf16"


def test_bitsandbytes_without_double_quant_stores_fp32_absmax() -> None:
    dq = quantization_format({"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
                                "bnb_4bit_use_double_quant": True, "llm_int8_skip_modules": ["lm_head", "mlp"]})
    single = quantization_format({"quant_method": "bitsandbytes", "load_in_4bit": True,
                                    "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": False})
    assert dq and single
    n = 4096 * 4096
    # QLoRA sec. 3: 32/64 = 0.5 bits per parameter of absmax without double quantization
    assert F.tensor_bits(single[0], Tensor("x.weight", "attn_q", (4096, 4096), 0), 1) == n * 4 + n // 64 * 32 + 512
    assert F.tensor_bits(dq[0], UP, 1) == UP.numel * 16          # llm_int8_skip_modules "mlp"


def test_bad_pattern_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _config_file(tmp_path, "llama-3.1-8b", _ct({"num_bits": 8, "type": "float", "strategy": "tensor"},
                                                      ignore=["re:(unclosed"]), "bfloat16")
    assert main(["estimate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "re:(unclosed" in err
