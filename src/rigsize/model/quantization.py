"""A checkpoint's quantization as a ``WeightFormat``: what its ``quantization_config``
says (``quantization_format``) and what its safetensors headers show
(``with_stored_dtypes``), the modules it keeps in higher precision included.

Each quantizer's config is read as its own code writes it (transformers'
``*Config`` classes, compressed-tensors presets, ModelOpt), cited beside each rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from rigsize.errors import ModelError
from rigsize.model.formats import WeightFormat, resolve_weight_format
from rigsize.model.kept_modules import KeptModules, module_names
from rigsize.model.tensors import Tensor

# Lists of modules a quantizer leaves unconverted, by config key:
# transformers AwqConfig / FbgemmFp8Config / FineGrainedFP8Config / Mxfp4Config
# ``modules_to_not_convert``; BitsAndBytesConfig ``llm_int8_skip_modules``;
# compressed-tensors QuantizationConfig ``ignore``; ModelOpt ``exclude_modules``.
_NOT_CONVERTED_KEYS = ("modules_to_not_convert", "llm_int8_skip_modules", "ignore", "exclude_modules")
# safetensors dtypes of a weight stored unquantized -> rigsize dense format
_STORED_DENSE = {"BF16": "bf16", "F16": "fp16", "F32": "fp32"}
# tensor-name suffixes that mark a module as quantized in a checkpoint (GPTQ/AWQ qweight,
# compressed-tensors pack-quantized weight_packed)
_PACKED_SUFFIXES = (".qweight", ".weight_packed")


def _group_size(value: Any, default: int) -> int:
    """A config's group_size: -1 (GPTQ/compressed-tensors 'per channel') is 0 here."""
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return 0 if value <= 0 else value


def _compressed_tensors_format(q: Mapping[str, Any]) -> WeightFormat | None:
    """compressed-tensors (src/compressed_tensors/quantization/quant_scheme.py presets
    W4A16, W8A8, FP8, FP8_DYNAMIC, FP8_BLOCK, NVFP4): every config group's ``weights``
    must agree; schemes rigsize does not store (asymmetric int4, 2:4 sparsity, other
    widths) give None."""
    if q.get("sparsity_config"):
        return None
    groups = q.get("config_groups")
    if not isinstance(groups, Mapping) or not groups:
        return None
    schemes = [g.get("weights") for g in groups.values() if isinstance(g, Mapping)]
    if not schemes or not all(isinstance(w, Mapping) for w in schemes):
        return None
    keys = {(w.get("type"), w.get("num_bits"), w.get("strategy"), w.get("group_size"),
             w.get("symmetric", True), str(w.get("block_structure"))) for w in schemes}
    if len(keys) != 1:
        return None
    kind, bits, strategy, group, symmetric, block = keys.pop()
    if kind == "float" and bits == 8:
        if strategy in ("tensor", "channel"):
            # per-channel checkpoints store one 16-bit scale per output row instead of one
            # fp32 per tensor: under 0.01% of the weights, not modelled
            return resolve_weight_format("fp8")
        if strategy == "block" and block in ("[128, 128]", "None"):
            return resolve_weight_format("fp8-block")
        return None
    if kind == "float" and bits == 4 and group == 16:
        return resolve_weight_format("nvfp4")
    if kind == "int" and bits == 8 and symmetric and strategy in ("channel", "group"):
        fmt = resolve_weight_format("int8")
        return replace(fmt, group_size=_group_size(group, 0)) if strategy == "group" else fmt
    if kind == "int" and bits == 4 and symmetric and strategy in ("channel", "group"):
        fmt = resolve_weight_format("w4a16")
        return replace(fmt, group_size=_group_size(group if strategy == "group" else 0, fmt.group_size))
    return None


def _method_format(method: str, q: Mapping[str, Any]) -> WeightFormat | None:
    bits = q.get("bits")
    if method == "fp8":
        return resolve_weight_format("fp8-block" if q.get("weight_block_size") else "fp8")
    if method == "fbgemm_fp8":
        # transformers FbgemmFp8Linear: float8_e4m3fn weight + fp32 weight_scale per output
        # row + input_scale_ub; the row scales (under 0.01%) are not modelled
        return resolve_weight_format("fp8")
    if method in ("gptq", "awq") and bits is not None and (not isinstance(bits, int) or isinstance(bits, bool)
                                                            or bits < 1):
        # a broken config, not a format rigsize does not know (which only warns)
        raise ModelError("model.bad_field", field="quantization_config.bits", value=bits,
                         why=f"{method.upper()} stores a whole number of bits per weight (2, 3, 4 or 8)")
    if method in ("gptq", "awq") and bits in (4, 8) and f"{method}-int{bits}" != "awq-int8":
        fmt = resolve_weight_format(f"{method}-int{bits}")
        return replace(fmt, group_size=_group_size(q.get("group_size"), fmt.group_size))
    if method == "bitsandbytes":
        if q.get("load_in_4bit"):
            fmt = resolve_weight_format(str(q.get("bnb_4bit_quant_type", "fp4")).lower())
            if q.get("bnb_4bit_use_double_quant") is False:
                # bitsandbytes quantize_4bit(compress_statistics=False): fp32 absmax per
                # block, no nested absmax, only the 16-entry fp32 code (quant_map)
                fmt = replace(fmt, scale_bits=32, nested_block_size=0, nested_scale_bits=0, per_tensor_bits=16 * 32)
            return fmt
        if q.get("load_in_8bit"):
            return resolve_weight_format("llm-int8")
        return None
    if method == "compressed-tensors":
        return _compressed_tensors_format(q)
    if method == "mxfp4":
        # transformers Mxfp4Config / vLLM Mxfp4Config: gpt-oss's routed experts in OCP
        # MXFP4; everything else stays in the checkpoint dtype (the format's own roles)
        return resolve_weight_format("mxfp4")
    if method == "modelopt":
        algo = str(q.get("quant_algo", "")).upper()
        return resolve_weight_format({"FP8": "fp8", "NVFP4": "nvfp4"}[algo]) if algo in ("FP8", "NVFP4") else None
    return None


def not_converted_modules(quant: Mapping[str, Any]) -> tuple[str, ...]:
    """The module patterns a ``quantization_config`` says were left unquantized."""
    out: list[str] = []
    for key in _NOT_CONVERTED_KEYS:
        value = quant.get(key)
        if isinstance(value, str):
            value = [value]
        if isinstance(value, (list, tuple)):
            out += [v for v in value if isinstance(v, str) and v.strip(". ")]
    return tuple(dict.fromkeys(out))


def quantization_format(quant: Any, stored: str = "bf16") -> tuple[WeightFormat, str] | None:
    """The weight format a Hugging Face ``quantization_config`` describes, with the
    modules it lists as unconverted kept in ``stored`` (the checkpoint's torch_dtype);
    None for methods and schemes rigsize does not know."""
    if not isinstance(quant, Mapping):
        return None
    method = str(quant.get("quant_method", "")).lower()
    fmt = _method_format(method, quant)
    if fmt is None:
        return None
    why = f"config quantization_config ({method})"
    kept = not_converted_modules(quant)
    if kept and fmt.quantized_roles:
        fmt = replace(fmt, kept_modules=KeptModules(tuple((p, stored) for p in kept),
                                                    source=f"quantization_config: {len(kept)} modules kept in {stored}"))
        why += f"; {len(kept)} module patterns kept in {stored}"
    return fmt, why


def with_stored_dtypes(fmt: WeightFormat, tensors: Iterable[Tensor],
                       stored: Mapping[str, str]) -> tuple[WeightFormat, int]:
    """``fmt`` with the dtypes a checkpoint's safetensors headers show (``stored``:
    tensor name -> dtype) taking precedence over its config lists: a quantizable weight
    stored as BF16/F16/F32 is priced at that width, one stored quantized (F8, I8, U8,
    packed I32 ``qweight``/``weight_packed``) in ``fmt``.  Tensors the headers do not
    name keep the config's rules.  Returns the format and how many quantizable tensors
    the headers show unquantized."""
    if not fmt.quantized_roles or fmt.layout == "gguf" or not stored:
        return fmt, 0
    rules: list[tuple[str, str]] = []
    dense = 0
    for t in tensors:
        if t.role not in fmt.quantized_roles or len(t.shape) < 2:
            continue
        for module in module_names(t):
            dtype = stored.get(f"{module}.weight")
            if any(f"{module}{s}" in stored for s in _PACKED_SUFFIXES) or (dtype and dtype not in _STORED_DENSE):
                rules.append((module_names(t)[0], fmt.name))
                break
            if dtype in _STORED_DENSE:
                rules.append((module_names(t)[0], _STORED_DENSE[dtype]))
                dense += 1
                break
    if not rules:
        return fmt, 0
    # header rules are exact module names and come first; the config's patterns remain
    # for tensors the headers do not name
    merged = KeptModules(tuple(rules) + fmt.kept_modules.rules,
                         source=f"safetensors headers: {dense} quantizable tensors stored unquantized")
    return replace(fmt, kept_modules=merged), dense
