"""Weight and KV-cache formats: how many bits each tensor costs, as the reference
implementations store it.

The numbers live in ``rigsize/data/formats.toml`` (every row with ``source`` and
``as_of``); this module loads them lazily and prices ``rigsize.model.tensors.Tensor`` rows:

* ``tensor_bits`` / ``weights_bytes``: bits of one row / bytes of a model, counting
  elements, per-group scales and zero points, GPTQ's ``g_idx``, bitsandbytes' nested
  absmax, and the tensors each format keeps in higher precision;
* GGUF ``_M``/``_S`` files are per-tensor mixes: ``gguf_tensor_type`` ports
  ``llama_tensor_get_type`` from llama.cpp ``src/llama-quant.cpp`` (commit pinned in
  the catalog's ``[gguf]`` table) for the roles ``tensors.py`` knows;
* mixed-precision checkpoints: the ``KeptModules`` of ``rigsize.model.kept_modules``
  travel on the ``WeightFormat``, so every consumer of ``tensor_bits`` prices them the
  same way (``rigsize.model.quantization`` reads them from a checkpoint);
* ``gpu_runs``: whether an architecture runs a format natively or weight-only;
* KV cache: ``kv_bytes_per_token`` (with DeepSeek's 656-byte FP8 MLA layout).

Quantization groups that a tensor-parallel split would cut are ``rigsize.model.tp_groups``.
All widths are bits (4-bit formats break byte arithmetic); convert with
``rigsize.units.bits_to_bytes`` at the edges.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal, Protocol

from rigsize.errors import FormatError, HardwareError
from rigsize.model.kept_modules import KeptModules
from rigsize.model.tensors import LINEAR_ROLES, Tensor
from rigsize.units import bits_to_bytes

Layout = Literal["dense", "per_tensor", "group", "flat_block", "tile", "gguf"]
KVLayout = Literal["element", "mla_fp8", "ggml_block"]
GPURun = Literal["native", "weight-only", "dequantize", "no"]
Axis = Literal["in", "out"]

_KEPT_ROLES = ("embed", "pos_embed", "lm_head", "router", "norm", "bias", "other")
# catalog keys that describe where a row came from (read date, primary/secondary), not the format
_PROVENANCE_ONLY = ("retrieved", "source_kind")


# ----------------------------------------------------------------------------------
# Catalog rows
# ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class WeightFormat:
    """One weight format as its reference implementation stores it (widths in bits)."""

    name: str
    layout: Layout
    element_bits: int                       # bits of one quantized element (nominal for GGUF mixes)
    aliases: tuple[str, ...] = ()
    quantized_roles: frozenset[str] = frozenset()
    keep: tuple[tuple[str, int], ...] = ()  # role -> bits for tensors the quantizer leaves alone
    keep_1d: tuple[tuple[str, int], ...] = ()  # overrides for 1-D tensors of a role
    group_size: int = 0                     # "group": input features per scale (0 = whole row)
    scale_bits: int = 0
    zero_bits: int = 0
    index_bits: int = 0                     # per input feature (GPTQ g_idx)
    pack_bits: int = 0                      # int32 packing of elements and zero points
    pack_axis: Axis = "in"                  # axis the packed elements run along
    per_tensor_bits: int = 0
    block_size: int = 0                     # "flat_block": elements per absmax
    nested_block_size: int = 0              # double quantization: absmax values per fp32 scale
    nested_scale_bits: int = 0
    tile_rows: int = 0                      # "tile": out-features per scale tile
    tile_cols: int = 0                      # "tile": in-features per scale tile
    ftype: str = ""                         # "gguf": llama.cpp file type (LLAMA_FTYPE_MOSTLY_*)
    default_type: str = ""                  # "gguf": llama_ftype_get_default_type
    tp_axes: tuple[Axis, ...] = ()
    training_upcast_bits: int | None = None
    source: str = ""
    as_of: str = ""
    notes: str = ""
    kept_modules: KeptModules = KeptModules()   # a checkpoint's own exceptions (not in the catalog)

    def kept_bits(self, role: str, ndim: int) -> int:
        """Bits per element of a tensor the quantizer leaves alone."""
        if ndim == 1:
            for r, bits in self.keep_1d:
                if r == role:
                    return bits
        table = dict(self.keep)
        return table.get(role, table["default"])


@dataclass(frozen=True)
class KVFormat:
    """One KV-cache element format."""

    name: str
    layout: KVLayout
    element_bits: int
    aliases: tuple[str, ...] = ()
    tile: int = 0               # "mla_fp8": latent values per scale
    tile_scale_bits: int = 0
    rope_bits: int = 0          # "mla_fp8": width of the decoupled RoPE key, kept unquantized
    block_size: int = 0         # "ggml_block": elements per block along a token's K (or V) row
    block_bytes: int = 0        # "ggml_block": bytes per block (ggml-common.h block_q8_0 / block_q4_0)
    source: str = ""
    as_of: str = ""
    notes: str = ""


@dataclass(frozen=True)
class GGUFType:
    """A ggml tensor type: ``block_size`` elements stored in ``type_bytes`` bytes."""

    name: str
    block_size: int
    type_bytes: int


@dataclass(frozen=True)
class ArchSupport:
    """Which weight formats one GPU architecture runs, and how."""

    name: str
    native: frozenset[str]
    weight_only: frozenset[str]
    fp8_variant: str
    source: str
    as_of: str
    notes: str = ""
    dequantize: frozenset[str] = frozenset()   # upcast to 16 bits at load: 16-bit memory


@dataclass(frozen=True)
class _Catalog:
    weights: tuple[WeightFormat, ...]
    kvs: tuple[KVFormat, ...]
    gguf_types: Mapping[str, GGUFType]
    gguf_meta: Mapping[str, str]
    archs: Mapping[str, ArchSupport]
    weight_index: Mapping[str, WeightFormat]   # normalized name or alias -> format
    kv_index: Mapping[str, KVFormat]


def _norm(name: str) -> str:
    """Names match case-insensitively, with '_' and '-' interchangeable (Q4_K_M = q4-k-m)."""
    return name.strip().lower().replace("_", "-")


def _index(rows: Iterable[Any]) -> dict[str, Any]:
    index: dict[str, Any] = {}
    for row in rows:
        for key in (row.name, *row.aliases):
            k = _norm(key)
            if k in index and index[k].name != row.name:
                raise ValueError(f"formats.toml: '{key}' names both {index[k].name} and {row.name}")
            index[k] = row
    return index


def _weight_row(name: str, row: Mapping[str, Any]) -> WeightFormat:
    roles = row.get("quantized_roles", "none")
    quantized = LINEAR_ROLES if roles == "linear" else frozenset() if roles == "none" else frozenset(roles)
    fields = {k: v for k, v in row.items()
              if k not in ("quantized_roles", "keep", "keep_1d", "aliases", "tp_axes", *_PROVENANCE_ONLY)}
    return WeightFormat(
        name=name, quantized_roles=frozenset(quantized), aliases=tuple(row.get("aliases", ())),
        keep=tuple(row.get("keep", {}).items()), keep_1d=tuple(row.get("keep_1d", {}).items()),
        tp_axes=tuple(row.get("tp_axes", ())), **fields,
    )


@cache
def _catalog() -> _Catalog:
    data = tomllib.loads(resources.files("rigsize.data").joinpath("formats.toml").read_text(encoding="utf-8"))
    weights = tuple(_weight_row(n, r) for n, r in data["weight"].items())
    kvs = tuple(KVFormat(name=n, aliases=tuple(r.get("aliases", ())),
                         **{k: v for k, v in r.items() if k not in ("aliases", *_PROVENANCE_ONLY)})
                for n, r in data["kv"].items())
    gtypes = {n: GGUFType(n, r["block_size"], r["type_bytes"]) for n, r in data["gguf_type"].items()}
    archs = {n: ArchSupport(n, frozenset(r["native"]), frozenset(r["weight_only"]), r["fp8_variant"],
                            r["source"], r["as_of"], r.get("notes", ""), frozenset(r.get("dequantize", ())))
             for n, r in data["arch"].items()}
    names = {w.name for w in weights}
    for a in archs.values():
        lists = (a.native, a.weight_only, a.dequantize)
        unknown = frozenset().union(*lists) - names
        twice = (a.native & a.weight_only) | ((a.native | a.weight_only) & a.dequantize)
        if unknown or twice:
            raise ValueError(f"formats.toml: arch {a.name} lists {sorted(unknown or twice)}")
    for w in weights:
        if w.layout == "gguf" and w.default_type not in gtypes:
            raise ValueError(f"formats.toml: {w.name} default_type {w.default_type} has no [gguf_type] row")
        if w.layout != "gguf" and "default" not in dict(w.keep):
            raise ValueError(f"formats.toml: {w.name} needs keep.default")
    return _Catalog(weights, kvs, gtypes, dict(data["gguf"]), archs, _index(weights), _index(kvs))


# ----------------------------------------------------------------------------------
# Look-ups
# ----------------------------------------------------------------------------------

def weight_formats() -> tuple[WeightFormat, ...]:
    """Every weight format, in catalog order."""
    return _catalog().weights


def kv_formats() -> tuple[KVFormat, ...]:
    """Every KV-cache format, in catalog order."""
    return _catalog().kvs


def gguf_types() -> Mapping[str, GGUFType]:
    """The ggml block types the GGUF mixes use (F32, F16, Q4_0 ... Q6_K)."""
    return _catalog().gguf_types


def gguf_source() -> Mapping[str, str]:
    """The llama.cpp version the GGUF mix rules were ported from."""
    return _catalog().gguf_meta


def architectures() -> tuple[str, ...]:
    """GPU architecture names ``gpu_runs`` knows."""
    return tuple(_catalog().archs)


def arch_support(architecture: str) -> ArchSupport:
    archs = _catalog().archs
    key = architecture.strip().lower()
    if key not in archs:
        raise HardwareError("gpu.unknown_arch", name=architecture,
                            suggestions=_suggest(key, list(archs), list(archs)))
    return archs[key]


def _suggest(key: str, candidates: list[str], fallback: list[str]) -> str:
    close = difflib.get_close_matches(key, candidates, n=3, cutoff=0.5)
    return ", ".join(close or fallback)


def _resolve(name: str, index: Mapping[str, Any], rows: tuple[Any, ...], key: str) -> Any:
    k = _norm(name)
    if k in index:
        return index[k]
    matches = difflib.get_close_matches(k, list(index), n=6, cutoff=0.5)
    canonical = list(dict.fromkeys(index[m].name for m in matches))[:3]
    raise FormatError(key, name=name, suggestions=", ".join(canonical or [r.name for r in rows]))


def resolve_weight_format(name: str | WeightFormat) -> WeightFormat:
    """The weight format called ``name`` (case-insensitive; aliases such as ``gptq``,
    ``w8a8``, ``Q4_K_M`` accepted).  Unknown names raise ``FormatError('format.unknown')``
    with close matches."""
    if isinstance(name, WeightFormat):
        return name
    cat = _catalog()
    return _resolve(name, cat.weight_index, cat.weights, "format.unknown")


def resolve_kv_format(name: str | KVFormat) -> KVFormat:
    """The KV-cache format called ``name``; unknown names raise ``format.unknown_kv``."""
    if isinstance(name, KVFormat):
        return name
    cat = _catalog()
    return _resolve(name, cat.kv_index, cat.kvs, "format.unknown_kv")


# ----------------------------------------------------------------------------------
# GGUF: llama.cpp's per-tensor type choice (src/llama-quant.cpp, commit in [gguf])
# ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class GGUFMix:
    """The model facts ``llama_tensor_get_type`` looks at besides the tensor itself."""

    n_layers: int
    n_expert: int = 0               # hparams.n_expert (routed experts per MoE layer)
    n_gqa: int = 1                  # n_head / n_head_kv
    tied_embeddings: bool = False   # no output.weight: token_embd gets the output's type
    llama_70b: bool = False         # LLM_ARCH_LLAMA with 80 layers and GQA (LLM_TYPE_70B)


# tensors.py role -> llama-quant.cpp tensor_category.  MLA's attn_kv_b is OTHER because
# convert_hf_to_gguf splits kv_b_proj into attn_k_b/attn_v_b, which match no category.
GGUF_CATEGORY: dict[str, str] = {
    "embed": "TOKEN_EMBD", "lm_head": "OUTPUT",
    "attn_q": "ATTENTION_Q", "attn_k": "ATTENTION_K", "attn_v": "ATTENTION_V",
    "attn_qkv": "ATTENTION_QKV", "attn_o": "ATTENTION_OUTPUT",
    "attn_q_a": "OTHER", "attn_q_b": "OTHER", "attn_kv_a": "OTHER", "attn_kv_b": "OTHER",
    "mlp_gate": "FFN_GATE", "mlp_up": "FFN_UP", "mlp_gate_up": "FFN_UP", "mlp_down": "FFN_DOWN",
    "expert_gate": "FFN_GATE", "expert_up": "FFN_UP", "expert_down": "FFN_DOWN",
    "shared_gate": "FFN_GATE", "shared_up": "FFN_UP", "shared_down": "FFN_DOWN",
    "ssm_in": "OTHER", "ssm_out": "OTHER", "ssm_x": "OTHER", "ssm_dt": "OTHER",
    "other": "OTHER",
}
# convert_hf_to_gguf.py prepare_tensors writes these F32 and llama-quantize leaves them
# (tensor_allows_quantization: *_norm.weight, ffn_gate_inp, position embeddings,
# names not ending in "weight", fewer than 2 dims).
# tensor_allows_quantization also leaves ssm_conv1d.weight unquantized.
_GGUF_F32_ROLES = frozenset({"norm", "bias", "router", "pos_embed", "ssm_conv"})
_ATTN_V_LIKE = frozenset({"ATTENTION_V", "ATTENTION_QKV", "ATTENTION_KV_B"})  # category_is_attn_v
# tensor_type_fallback: a row length not divisible by the block size.
_GGUF_FALLBACK = {"Q2_K": "Q4_0", "Q3_K": "Q4_0", "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0", "IQ4_XS": "IQ4_NL"}


def _use_more_bits(i_layer: int, n_layers: int) -> bool:
    """llama-quant.cpp: the first and last eighth of the layers and every third between."""
    return i_layer < n_layers // 8 or i_layer >= 7 * n_layers // 8 or (i_layer - n_layers // 8) % 3 == 2


def _ggml_n_dims(shape: tuple[int, ...]) -> int:
    """ggml_n_dims: trailing ggml dims of size 1 (leading in PyTorch order) do not count."""
    dims = list(shape)
    while len(dims) > 1 and dims[0] == 1:
        dims.pop(0)
    return len(dims)


def _gguf_fallback(qtype: str, ncols: int) -> str:
    types = _catalog().gguf_types
    if ncols % types[qtype].block_size == 0:
        return qtype
    # llama.cpp has no fallback for Q8_0 (quantization aborts); rigsize prices F16 instead.
    fallback = _GGUF_FALLBACK.get(qtype, "F16")
    return fallback if ncols % types[fallback].block_size == 0 else "F16"


def gguf_tensor_type(fmt: str | WeightFormat, tensor: Tensor, mix: GGUFMix) -> str:
    """The ggml type llama-quantize gives ``tensor`` in file type ``fmt``: a port of
    ``llama_tensor_get_type`` for the Q2_K, Q3_K_M, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K and Q8_0 file
    types (Falcon-specific branches, imatrix, --pure and user overrides left out)."""
    fmt = resolve_weight_format(fmt)
    if fmt.layout != "gguf":
        raise ValueError(f"{fmt.name} is not a GGUF file type")
    if tensor.role in _GGUF_F32_ROLES or _ggml_n_dims(tensor.shape) < 2:
        return "F32"
    if tensor.role in ("vision", "vision_proj"):
        # a vision tower is not in the model's GGUF: llama.cpp loads it from a separate
        # mmproj file (convert_hf_to_gguf.py --mmproj); priced F16 (an assumption: the
        # mmproj-*-f16.gguf files publishers ship; llama-quantize's mix is not applied)
        return "F16"
    ftype, new = fmt.ftype, fmt.default_type
    category = GGUF_CATEGORY[tensor.role]
    ncols = tensor.shape[-1]                       # ggml ne[0] = in_features
    i, n = tensor.layer or 0, mix.n_layers
    if ftype == "MXFP4_MOE":
        # llama-quant.cpp: the output (and a tied token_embd) Q8_0; 3-D expert tensors (ne[2] > 1) MXFP4;
        # every other quantizable tensor Q8_0
        expert = tensor.role.startswith("expert_") and tensor.count > 1
        return _gguf_fallback("MXFP4" if expert and category != "OUTPUT" else "Q8_0", ncols)
    if category == "OUTPUT" or (mix.tied_embeddings and category == "TOKEN_EMBD"):
        if ncols % _catalog().gguf_types[new].block_size != 0:
            new = "Q8_0"
        elif new != "Q8_0":
            new = "Q6_K"
    elif category in _ATTN_V_LIKE:
        # i_attention_wv counts attn_v-like tensors in file order: one per layer here.
        if ftype == "Q2_K":
            new = "Q4_K" if mix.n_gqa >= 4 else "Q3_K"
        elif ftype == "Q3_K_M":
            new = "Q5_K" if i < 2 else "Q4_K"
        elif ftype in ("IQ4_NL", "IQ4_XS") and mix.n_gqa >= 4:
            new = "Q5_K"
        elif ftype in ("Q4_K_M", "Q5_K_M") and _use_more_bits(i, n):
            new = "Q6_K"
        elif ftype == "Q4_K_S" and i < 4:
            new = "Q5_K"
        if mix.llama_70b and new in ("Q3_K", "Q4_K"):
            new = "Q5_K"
        if mix.n_expert == 8:
            new = "Q8_0"
    elif category == "ATTENTION_K":
        if mix.n_expert == 8:
            new = "Q8_0"
    elif category == "FFN_DOWN":
        if ftype == "Q2_K":
            new = "Q3_K"
        elif ftype == "Q3_K_M":
            new = "Q5_K" if i < n // 16 else "Q4_K"   # non-Falcon branch
        elif ftype == "Q4_K_M" and _use_more_bits(i, n):
            new = "Q6_K"
        elif ftype in ("IQ4_NL", "IQ4_XS") and i < n // 8:     # without an imatrix
            new = "Q5_K"
        elif ftype == "Q5_K_M" and _use_more_bits(i, n):
            new = "Q6_K"
        elif ftype == "Q4_K_S" and i < n // 8:     # non-Falcon branch
            new = "Q5_K"
    elif category == "ATTENTION_OUTPUT":
        if mix.n_expert == 8:
            if ftype in ("Q2_K", "Q3_K_M", "Q4_K_S", "Q4_K_M", "IQ4_NL", "IQ4_XS"):
                new = "Q5_K"
        elif ftype == "Q2_K":
            new = "Q3_K"
        elif ftype == "Q3_K_M":
            new = "Q4_K"
    # TOKEN_EMBD (untied), ATTENTION_Q, FFN_GATE, FFN_UP, OTHER: the default type for
    # these file types.  (The ATTENTION_QKV branch of llama-quant.cpp is unreachable at
    # the pinned commit: category_is_attn_v catches QKV first.)
    return _gguf_fallback(new, ncols)


def gguf_mix(tensors: Iterable[Tensor], n_layers: int, *, llama_70b: bool = False) -> GGUFMix:
    """Infer the ``GGUFMix`` facts from a model's tensor rows: experts from the routed
    expert rows' ``count``, GQA from attn_q/attn_k widths, tying from a missing lm_head."""
    rows = list(tensors)
    n_expert = max((t.count for t in rows if t.role.startswith("expert_")), default=0)
    tied = not any(t.role == "lm_head" and len(t.shape) == 2 for t in rows)
    q = next((t for t in rows if t.role == "attn_q" and len(t.shape) == 2), None)
    k = next((t for t in rows if t.role == "attn_k" and len(t.shape) == 2 and q and t.layer == q.layer), None)
    n_gqa = q.shape[0] // k.shape[0] if q and k and k.shape[0] else 1
    return GGUFMix(n_layers=n_layers, n_expert=n_expert, n_gqa=max(n_gqa, 1),
                   tied_embeddings=tied, llama_70b=llama_70b)


def _gguf_bits(qtype: str, tensor: Tensor) -> int:
    t = _catalog().gguf_types[qtype]
    ncols = tensor.shape[-1] if tensor.shape else 1
    rows = tensor.numel // ncols if ncols else 0
    return rows * (ncols // t.block_size) * t.type_bytes * 8


# ----------------------------------------------------------------------------------
# Bits of a tensor
# ----------------------------------------------------------------------------------

def _packed(n_along: int, n_other: int, bits: int, pack_bits: int) -> int:
    """Bits of ``n_other`` runs of ``n_along`` ``bits``-wide values packed into
    ``pack_bits``-wide words (no packing when pack_bits is 0)."""
    if not pack_bits:
        return n_along * n_other * bits
    return n_other * math.ceil(n_along * bits / pack_bits) * pack_bits


def _matrix_bits(fmt: WeightFormat, rows: int, cols: int) -> int:
    """Bits of one quantized (out_features=rows, in_features=cols) matrix."""
    n, eb = rows * cols, fmt.element_bits
    if fmt.layout == "dense":
        return n * eb
    if fmt.layout == "per_tensor":
        return n * eb + fmt.per_tensor_bits
    if fmt.layout == "group":
        # AutoGPTQ QuantLinear / AutoAWQ WQLinear_GEMM / compressed-tensors: scales and
        # zeros per (group of in-features, output row); zeros packed along out-features.
        groups = math.ceil(cols / (fmt.group_size or cols))
        if fmt.pack_axis == "in":
            weights = _packed(cols, rows, eb, fmt.pack_bits)
        else:
            weights = _packed(rows, cols, eb, fmt.pack_bits)
        zeros = _packed(rows, groups, fmt.zero_bits, fmt.pack_bits) if fmt.zero_bits else 0
        return weights + groups * rows * fmt.scale_bits + zeros + cols * fmt.index_bits + fmt.per_tensor_bits
    if fmt.layout == "flat_block":
        # bitsandbytes quantize_4bit: blocks over the flattened tensor, elements packed in
        # uint8; double quantization (QLoRA sec. 3) stores the absmax in 8 bits plus one
        # fp32 per nested block.
        blocks = math.ceil(n / fmt.block_size)
        bits = math.ceil(n * eb / 8) * 8 + blocks * fmt.scale_bits + fmt.per_tensor_bits
        if fmt.nested_block_size:
            bits += math.ceil(blocks / fmt.nested_block_size) * fmt.nested_scale_bits
        return bits
    if fmt.layout == "tile":
        # DeepSeek-V3 inference/model.py Linear: scale [ceil(out/128), ceil(in/128)].
        return n * eb + math.ceil(rows / fmt.tile_rows) * math.ceil(cols / fmt.tile_cols) * fmt.scale_bits
    raise ValueError(f"{fmt.name}: no matrix rule for layout {fmt.layout}")


def tensor_bits(fmt: str | WeightFormat, tensor: Tensor, n_layers: int, *,
                mix: GGUFMix | None = None, training: bool = False) -> int:
    """Total bits of ``tensor`` (all ``count`` copies) stored in ``fmt``: elements,
    scales, zero points and indices, with the format's high-precision rules (and, for
    GGUF, llama.cpp's per-tensor mix; pass ``mix`` from ``gguf_mix`` for MoE/GQA/tied
    models).  ``training=True`` prices the kept tensors at ``training_upcast_bits``
    (QLoRA via PEFT's prepare_model_for_kbit_training)."""
    fmt = resolve_weight_format(fmt)
    if fmt.layout == "gguf":
        return _gguf_bits(gguf_tensor_type(fmt, tensor, mix or GGUFMix(n_layers=n_layers)), tensor)
    if tensor.role in fmt.quantized_roles and len(tensor.shape) >= 2:
        kept = fmt.kept_modules.format_of(tensor) if fmt.kept_modules else None
        if kept is not None and kept != fmt.name:
            # a module the checkpoint stores unquantized (modules_to_not_convert, ignore,
            # or a 16-bit dtype in its safetensors header)
            width = resolve_weight_format(kept).element_bits
            if training and fmt.training_upcast_bits:
                width = fmt.training_upcast_bits
            return tensor.numel * width
        rows, cols = tensor.shape[-2], tensor.shape[-1]
        copies = tensor.numel // (rows * cols) if rows * cols else 0
        return copies * _matrix_bits(fmt, rows, cols)
    width = fmt.kept_bits(tensor.role, len(tensor.shape))
    if training and fmt.training_upcast_bits:
        width = fmt.training_upcast_bits
    return tensor.numel * width


def weight_bits_by_role(fmt: str | WeightFormat, tensors: Iterable[Tensor], n_layers: int, *,
                        training: bool = False) -> dict[str, int]:
    """Bits per tensor role; the values sum to ``weights_bits``."""
    fmt = resolve_weight_format(fmt)
    rows = list(tensors)
    mix = gguf_mix(rows, n_layers) if fmt.layout == "gguf" else None
    out: dict[str, int] = {}
    for t in rows:
        out[t.role] = out.get(t.role, 0) + tensor_bits(fmt, t, n_layers, mix=mix, training=training)
    return out


def weights_bits(fmt: str | WeightFormat, tensors: Iterable[Tensor], n_layers: int, *,
                 training: bool = False) -> int:
    """Total bits of a model's weights in ``fmt``."""
    return sum(weight_bits_by_role(fmt, tensors, n_layers, training=training).values())


def weights_bytes(fmt: str | WeightFormat, tensors: Iterable[Tensor], n_layers: int, *,
                  training: bool = False) -> int:
    """Total bytes of a model's weights in ``fmt`` (bits rounded up to whole bytes)."""
    return bits_to_bytes(weights_bits(fmt, tensors, n_layers, training=training))


def bits_per_weight(fmt: str | WeightFormat, rows: int = 4096, cols: int = 4096) -> float:
    """Effective bits per element of one (rows x cols) linear layer, overheads included
    (for GGUF mixes: the file type's default ggml type, as for attn_q/ffn_up; for a format
    that quantizes only routed experts, such as mxfp4, an expert's up projection)."""
    fmt = resolve_weight_format(fmt)
    role = "expert_up" if fmt.quantized_roles and "mlp_up" not in fmt.quantized_roles else "mlp_up"
    t = Tensor("linear.weight", role, (rows, cols), layer=0)
    return tensor_bits(fmt, t, n_layers=1) / (rows * cols)



# ----------------------------------------------------------------------------------
# GPU support
# ----------------------------------------------------------------------------------

def gpu_runs(fmt: str | WeightFormat, architecture: str) -> GPURun:
    """``"native"`` if ``architecture``'s matrix units compute in ``fmt``,
    ``"weight-only"`` if kernels keep ``fmt`` weights in memory and dequantize them to
    16 bits inside the matmul, ``"dequantize"`` if the loader upcasts them to 16 bits
    (so they take 16-bit memory: transformers' MXFP4 below sm75), else ``"no"``."""
    fmt = resolve_weight_format(fmt)
    arch = arch_support(architecture)
    if fmt.name in arch.native:
        return "native"
    if fmt.name in arch.weight_only:
        return "weight-only"
    if fmt.name in arch.dequantize:
        return "dequantize"
    return "no"


# ----------------------------------------------------------------------------------
# KV cache
# ----------------------------------------------------------------------------------

class _KVShape(Protocol):
    """What ``kv_bytes_per_token`` reads from ``rigsize.model.architecture.Architecture``."""

    attention: str
    num_hidden_layers: int
    head_dim: int
    kv_elements_per_token: int
    tensors: tuple[Tensor, ...]


def kv_bits_per_element(kv: str | KVFormat) -> int:
    """Bits of one cached element (for fp8-ds-mla: of one latent element, scales aside)."""
    return resolve_kv_format(kv).element_bits


def attention_kv_bytes_per_token(kv: str | KVFormat, num_key_value_heads: int, head_dim: int,
                                 v_head_dim: int | None = None) -> int:
    """Bytes one token adds to one layer's K and V cache (standard / GQA attention)."""
    kv = resolve_kv_format(kv)
    if kv.layout == "mla_fp8":
        raise FormatError("format.kv_mla_only", name=kv.name)
    if kv.layout == "ggml_block":     # llama.cpp q8_0/q4_0 cache: each token's K row and V row in ggml blocks
        v_dim = head_dim if v_head_dim is None else v_head_dim
        return _kv_block_bytes(kv, num_key_value_heads * head_dim) + _kv_block_bytes(kv, num_key_value_heads * v_dim)
    elements = num_key_value_heads * (head_dim + (head_dim if v_head_dim is None else v_head_dim))
    return bits_to_bytes(elements * kv.element_bits)


def _kv_block_bytes(kv: KVFormat, elements: int) -> int:
    """Bytes of ``elements`` cached values in a ggml block type (ggml_row_size)."""
    return math.ceil(elements / kv.block_size) * kv.block_bytes


def mla_kv_bytes_per_token(kv: str | KVFormat, kv_lora_rank: int, qk_rope_head_dim: int) -> int:
    """Bytes one token adds to one MLA layer's cache: the latent (``kv_lora_rank``) plus
    the decoupled RoPE key (``qk_rope_head_dim``).  fp8-ds-mla follows FlashMLA's
    layout: fp8 latent + one fp32 scale per 128 values + bf16 RoPE = 656 bytes for
    DeepSeek-V3 (512, 64)."""
    kv = resolve_kv_format(kv)
    if kv.layout == "mla_fp8":
        bits = (kv_lora_rank * kv.element_bits + math.ceil(kv_lora_rank / kv.tile) * kv.tile_scale_bits
                + qk_rope_head_dim * kv.rope_bits)
    else:
        if kv.layout == "ggml_block":
            return _kv_block_bytes(kv, kv_lora_rank + qk_rope_head_dim)
        bits = (kv_lora_rank + qk_rope_head_dim) * kv.element_bits
    return bits_to_bytes(bits)


def _mla_dims(arch: _KVShape) -> tuple[int, int]:
    """(kv_lora_rank, qk_rope_head_dim): kv_b_proj's in_features is the latent rank and
    the cached width (``head_dim``) is rank + rope."""
    kv_b = next((t for t in arch.tensors if t.role == "attn_kv_b" and len(t.shape) == 2), None)
    if kv_b is None:
        raise ValueError("MLA architecture without an attn_kv_b tensor")
    rank = kv_b.shape[-1]
    return rank, arch.head_dim - rank


def kv_bytes_per_token(arch: _KVShape, kv: str | KVFormat) -> int:
    """Bytes of KV cache one token adds across all layers of ``arch`` (no sliding
    window, no tensor-parallel split)."""
    kv = resolve_kv_format(kv)
    if arch.attention == "mla":
        rank, rope = _mla_dims(arch)
        return arch.num_hidden_layers * mla_kv_bytes_per_token(kv, rank, rope)
    if kv.layout == "mla_fp8":
        raise FormatError("format.kv_mla_only", name=kv.name)
    if kv.layout == "ggml_block":
        return _kv_block_bytes(kv, arch.kv_elements_per_token)
    return bits_to_bytes(arch.kv_elements_per_token * kv.element_bits)


# ----------------------------------------------------------------------------------
# The `rigsize formats` table
# ----------------------------------------------------------------------------------

def _high_precision(fmt: WeightFormat) -> str:
    if fmt.layout == "dense":
        return f"none (every tensor at {fmt.element_bits} bits)"
    if fmt.layout == "gguf":
        out = "Q8_0" if fmt.default_type == "Q8_0" else "Q6_K"
        return f"output.weight {out}; norms, routers, biases, position embeddings F32"
    by_bits: dict[int, list[str]] = {}
    for role in _KEPT_ROLES:
        by_bits.setdefault(fmt.kept_bits(role, 2), []).append(role)
    parts = [f"{', '.join(roles)}: {bits}-bit" for bits, roles in by_bits.items()]
    parts += [f"{role} (1-D): {bits}-bit" for role, bits in fmt.keep_1d]
    return "; ".join(parts)


def format_table() -> list[dict[str, Any]]:
    """Rows for ``rigsize formats``: weight formats, then KV formats, as plain dicts."""
    rows: list[dict[str, Any]] = []
    for f in weight_formats():
        rows.append({
            "name": f.name, "kind": "weight", "aliases": list(f.aliases),
            "bits_per_weight": round(bits_per_weight(f), 4), "element_bits": f.element_bits,
            "high_precision_tensors": _high_precision(f), "layout": f.layout,
            "training_upcast_bits": f.training_upcast_bits,
            "source": f.source, "as_of": f.as_of, "notes": f.notes,
        })
    for k in kv_formats():
        rows.append({
            "name": k.name, "kind": "kv", "aliases": list(k.aliases),
            "bits_per_weight": (k.block_bytes * 8 / k.block_size if k.layout == "ggml_block" else float(k.element_bits)),
            "element_bits": k.element_bits,
            "high_precision_tensors": f"RoPE key dims at {k.rope_bits} bits" if k.rope_bits else "",
            "layout": k.layout, "training_upcast_bits": None,
            "source": k.source, "as_of": k.as_of, "notes": k.notes,
        })
    return rows
