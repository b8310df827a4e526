"""From a Hugging Face ``config.json`` to the exact list of weight tensors.

Each supported ``model_type`` is laid out as ``transformers`` (5.x) builds it, so that
``sum(t.numel for t in tensors)`` equals the parameter count of
``AutoModelForCausalLM.from_config(config)`` on the meta device (buffers excluded,
tied weights once).  ``tests/test_architecture_vs_transformers.py`` checks this
against ``transformers`` itself on real and random configs.

Most decoders are "Llama-like" and differ only in a few traits (which projections have
biases, fused QKV or gate/up, q/k norms, how many norms a layer has, LayerNorm with
bias or RMSNorm, MLA instead of GQA, the config class's defaults); those traits are data
in ``_LLAMA_LIKE``, and where each MoE family keeps its expert numbers is data in
``_MOE``.  The GPT-style families used by published training runs (GPT-2/3, StarCoder 1,
GPT-NeoX, OPT, Falcon, BLOOM) have a builder of their own.  Hybrids with recurrent
layers (Jamba, Mamba, Qwen3-Next...) are not supported: their state is not a KV cache.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rigsize.errors import ModelError
from rigsize.model.tensors import Role, Tensor
from rigsize.plan import limits


def _whole(key: str, value: Any, minimum: int = 1, maximum: float = float("inf")) -> int:
    """``value`` of config field ``key`` as an int in [minimum, maximum], else a ModelError."""
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or value != int(value)):
        raise ModelError("model.bad_field", field=key, value=value, why="must be a whole number")
    if not minimum <= value <= maximum:
        why = f"must be between {minimum} and {maximum:g}"
        raise ModelError("model.bad_field", field=key, value=value, why=why)
    return int(value)


class Config:
    """Read access to a config dict with errors that name the missing field."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.model_type = str(raw.get("model_type", ""))

    def lookup(self, key: str) -> Any:
        """The raw value of ``key``; a dotted key reads a nested dict (DBRX's ``ffn_config.moe_top_k``)."""
        value: Any = self.raw
        for part in key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return value

    def get(self, key: str, default: Any = None) -> Any:
        value = self.lookup(key)
        return default if value is None else value

    def first(self, *keys: str, default: Any = None) -> Any:
        for key in keys:
            if self.lookup(key) is not None:
                return self.lookup(key)
        return default

    def int(self, *keys: str, default: int | None = None, minimum: int = 1,
            maximum: float = limits.MAX_WIDTH) -> int:
        """The first present key among ``keys`` as a positive int, else ``default``."""
        value = self.first(*keys)
        if value is None:
            if default is None:
                raise ModelError("model.missing_field", model_type=self.model_type, field=keys[0])
            return default
        return _whole(keys[0], value, minimum, maximum)

    def bool(self, key: str, default: bool) -> bool:
        value = self.lookup(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ModelError("model.bad_field", field=key, value=value, why="must be true or false")
        return value


@dataclass(frozen=True)
class Architecture:
    """What the rest of rigsize needs to know about a model, in HF vocabulary."""

    model_type: str
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int      # per layer for standard attention; 1 latent "head" for MLA
    head_dim: int                 # per-head K/V width (MLA: the cached latent + rope width)
    vocab_size: int
    intermediate_size: int        # dense MLP width (0 if every layer is MoE)
    max_position_embeddings: int | None
    tie_word_embeddings: bool
    tensors: tuple[Tensor, ...]
    kv_elements_per_token: int    # K and V (or MLA latent) for all layers, no window, no split
    attention: str = "standard"   # "standard" | "mla"
    num_experts: int = 0          # routed experts per MoE layer
    experts_per_token: int = 0
    moe_layers: tuple[int, ...] = ()
    layer_windows: tuple[int | None, ...] = ()   # sliding window per layer (None = full)
    notes: tuple[str, ...] = field(default=())

    @property
    def params(self) -> int:
        return sum(t.numel for t in self.tensors)


# ----------------------------------------------------------------------------------
# Llama-like decoders: traits as data
# ----------------------------------------------------------------------------------

_Flag = str | bool | tuple[str, bool]        # config key (default False), constant, or (key, default)
_Num = tuple[str | tuple[str, ...], int | None]   # config key(s), the class default (None: required)
_When = tuple[str, Any, Any]                  # (config key, value that turns it on, the key's default)


@dataclass(frozen=True)
class _Extra:
    """A small per-layer tensor outside the usual set: attention sinks, sub-norms, activation scalars."""

    name: str                     # under ``model.layers.{i}``
    role: Role
    width: str                    # "heads" | "hidden" | "inter" (dense MLP width) | "one"
    when: _When | None = None


@dataclass(frozen=True)
class _MoeSpec:
    """Where a family's config keeps its MoE numbers, with the config class's defaults."""

    experts: _Num                 # routed experts per MoE layer (0 = a dense model)
    top_k: _Num
    inter: _Num                   # width of one routed expert
    layers: str = "all"           # which layers are sparse: "all" | "qwen" | "deepseek" | "ernie" | "llama4"
    first_dense: int = 0          # "deepseek": first_k_dense_replace when absent
    shared: _Num | None = None    # shared-expert width (None: no shared expert)
    shared_per_expert: bool = False   # ``shared`` counts experts of ``inter`` width (DeepSeek, ERNIE)
    shared_name: str = "shared_experts"
    shared_gate: bool = False     # Qwen2-MoE's sigmoid gate (1 x hidden) on the shared expert
    shared_bias: _Flag = False    # DeepSeek-V2 (mlp_bias) and ERNIE (use_bias) bias the shared expert
    shared_at_zero: bool = False  # DeepSeek builds a 0-wide shared MLP too (its down_proj bias remains)
    router: str = "gate"
    router_bias: bool = False     # gpt-oss
    expert_bias: bool = False     # gpt-oss: every expert's gate/up and down have biases
    score_bias: bool = False      # ERNIE 4.5: e_score_correction_bias is a parameter (1 x experts)


# Keys come first as the config class spells them, then as its attribute_map accepts them.
_MOE: dict[str, _MoeSpec] = {
    "mixtral": _MoeSpec((("num_local_experts", "num_experts"), 8), ("num_experts_per_tok", 2),
                        ("intermediate_size", 14336)),
    # modeling_qwen2_moe.py: the shared expert and its sigmoid gate are always built
    "qwen2_moe": _MoeSpec((("num_experts", "num_local_experts"), 60), ("num_experts_per_tok", 4),
                          ("moe_intermediate_size", 1408), layers="qwen",
                          shared=("shared_expert_intermediate_size", 5632), shared_name="shared_expert",
                          shared_gate=True),
    "qwen3_moe": _MoeSpec((("num_local_experts", "num_experts"), 128), ("num_experts_per_tok", 8),
                          ("moe_intermediate_size", 768), layers="qwen"),
    "deepseek_v2": _MoeSpec((("n_routed_experts", "num_experts"), 64), ("num_experts_per_tok", None),
                            ("moe_intermediate_size", 1407), layers="deepseek", shared=("n_shared_experts", 2),
                            shared_per_expert=True, shared_bias="mlp_bias", shared_at_zero=True),
    "deepseek_v3": _MoeSpec((("n_routed_experts", "num_local_experts"), 256), ("num_experts_per_tok", 8),
                            ("moe_intermediate_size", 2048), layers="deepseek", first_dense=3,
                            shared=("n_shared_experts", 1), shared_per_expert=True),
    "glm4_moe": _MoeSpec((("n_routed_experts", "num_local_experts"), 128), ("num_experts_per_tok", 8),
                         ("moe_intermediate_size", 1408), layers="deepseek", first_dense=1,
                         shared=("n_shared_experts", 1), shared_per_expert=True),
    "olmoe": _MoeSpec((("num_experts", "num_local_experts"), 64), ("num_experts_per_tok", 8),
                      ("intermediate_size", 2048)),
    "granitemoe": _MoeSpec(("num_local_experts", 8), ("num_experts_per_tok", 2), ("intermediate_size", 11008),
                           router="router"),
    "granitemoeshared": _MoeSpec(("num_local_experts", 8), ("num_experts_per_tok", 2),
                                 ("intermediate_size", 11008), router="router",
                                 shared=("shared_intermediate_size", 0), shared_name="shared_mlp"),
    "phimoe": _MoeSpec(("num_local_experts", 16), ("num_experts_per_tok", 2), ("intermediate_size", 6400),
                       router="router"),
    "dbrx": _MoeSpec(("ffn_config.moe_num_experts", 4), ("ffn_config.moe_top_k", 1),
                     ("ffn_config.ffn_hidden_size", 3584), router="router.layer"),
    # modeling_hunyuan_v1_moe.py: experts and the shared MLP are intermediate_size wide
    "hunyuan_v1_moe": _MoeSpec((("num_experts", "num_local_experts"), 1), (("moe_topk", "num_experts_per_tok"), 1),
                               ("intermediate_size", 11008), shared=("intermediate_size", 11008),
                               shared_name="shared_mlp", router="gate.wg"),
    "ernie4_5_moe": _MoeSpec((("moe_num_experts", "num_experts"), 64), (("moe_k", "num_experts_per_tok"), 6),
                             ("moe_intermediate_size", 1536), layers="ernie", shared=("moe_num_shared_experts", 2),
                             shared_per_expert=True, shared_bias="use_bias", score_bias=True),
    "gpt_oss": _MoeSpec((("num_local_experts", "num_experts"), 128), ("num_experts_per_tok", 4),
                        ("intermediate_size", 2880), router="router", router_bias=True, expert_bias=True),
    # modeling_llama4.py: Llama4TextMoe = routed experts + one shared expert, both intermediate_size wide
    "llama4_text": _MoeSpec(("num_local_experts", 16), ("num_experts_per_tok", 1), ("intermediate_size", 8192),
                            layers="llama4", shared=("intermediate_size", 8192), shared_name="shared_expert",
                            router="router"),
}
_MOE["deepseek_v32"] = _MOE["deepseek_v3"]


@dataclass(frozen=True)
class _Traits:
    """How one family lays out a decoder layer (read from the family's modeling file)."""

    qkv_bias: _Flag = False
    o_bias: _Flag = False
    mlp_bias: _Flag = False
    fused_qkv: bool = False           # one qkv_proj (Phi-3, DBRX)
    fused_gate_up: bool = False       # one gate_up_proj (Phi-3, GLM)
    gated_mlp: bool = True            # SwiGLU/GeGLU (gate, up, down) vs a plain 2-layer MLP
    mlp_names: tuple[str, str] = ("fc1", "fc2")   # the plain MLP's two linears
    qk_norm: str | None = None        # "head": one RMSNorm(head_dim); "each_head": a LayerNorm(head_dim) per
    #                                   head (StableLM); "full": over heads*head_dim; "hidden": OLMoE's
    #                                   q_norm(hidden) and k_norm(hidden/heads*kv_heads)
    qk_norm_when: _When | None = None     # config switch for the q/k norms (None: always there)
    qk_norm_names: tuple[str, str] = ("q_norm", "k_norm")
    qk_norm_bias: bool = False        # LayerNorm q/k norms with bias (Phi)
    layer_norms: tuple[str | tuple[str, _When], ...] = ("input_layernorm", "post_attention_layernorm")
    norm_bias: bool = False           # LayerNorm with bias instead of RMSNorm
    norm_affine: bool = True          # False: norms without parameters (OLMo)
    lm_head_bias: _Flag = False
    tie_default: bool = False         # the config class's default for tie_word_embeddings
    head_dim_default: int | None = None   # the config class's head_dim when absent (None: hidden/heads)
    head_dim_fixed: bool = False      # head_dim is always hidden/heads, whatever the config says
    kv_key: str = "num_key_value_heads"
    kv_default: int | None = None     # the config class's KV heads when absent (None: all heads)
    mlp_name: str = "mlp"             # the feed-forward block's module name
    dense_inter: str = "intermediate_size"   # dense MLP width key (Llama 4: intermediate_size_mlp)
    extras: tuple[_Extra, ...] = ()
    attention: str = "gqa"            # "gqa" | "mla" (DeepSeek V2/V3, MiniCPM3)
    moe: _MoeSpec | None = None
    slides: bool = True                   # False: the config types no layer as sliding (Llama 4, DeepSeek-V3.2)
    window_default: int | None = None     # the config class's sliding_window when absent
    window_switch: bool = False           # windows only with use_sliding_window (default off): Qwen, SmolLM3
    window_pattern: int | None = None     # every n-th layer full, the rest sliding
    window_pattern_key: bool = False      # ... or every sliding_window_pattern-th (Gemma 3, Cohere 2, EXAONE 4)


_GEMMA2_NORMS = ("input_layernorm", "post_attention_layernorm",
                 "pre_feedforward_layernorm", "post_feedforward_layernorm")
_POST_NORMS = ("post_attention_layernorm", "post_feedforward_layernorm")   # OLMo 2, EXAONE 4
_BIAS = dict(qkv_bias="attention_bias", o_bias="attention_bias")           # Llama's attention_bias
_PLAIN_MLP = dict(gated_mlp=False, mlp_names=("up_proj", "down_proj"))
_HUNYUAN_QK = dict(qk_norm="head", qk_norm_names=("query_layernorm", "key_layernorm"))

# kv_default, head_dim_default, tie_default, window_default: the config classes' defaults
# (configuration_<family>.py), which configs that omit the key get from transformers.
_LLAMA_LIKE: dict[str, _Traits] = {
    # modeling_llama.py: attention_bias on q,k,v,o; mlp_bias on gate/up/down
    "llama": _Traits(**_BIAS, mlp_bias="mlp_bias"),
    "granite": _Traits(**_BIAS, mlp_bias="mlp_bias"),
    "exaone": _Traits(**_BIAS, mlp_bias="mlp_bias", kv_default=8),    # EXAONE 3.x: built as LlamaForCausalLM
    "arcee": _Traits(**_BIAS, mlp_bias="mlp_bias", **_PLAIN_MLP),
    "smollm3": _Traits(**_BIAS, mlp_bias="mlp_bias", kv_default=4, tie_default=True, window_switch=True),
    "mistral": _Traits(kv_default=8, window_default=4096),
    "mixtral": _Traits(kv_default=8, moe=_MOE["mixtral"]),
    # modeling_qwen2.py: bias on q,k,v only
    "qwen2": _Traits(qkv_bias=True, kv_default=32, window_default=4096, window_switch=True),
    "qwen2_moe": _Traits(qkv_bias=("qkv_bias", True), kv_default=16, moe=_MOE["qwen2_moe"],
                         window_default=4096, window_switch=True),
    "qwen3": _Traits(**_BIAS, qk_norm="head", kv_default=32, head_dim_default=128,
                     window_default=4096, window_switch=True),
    "qwen3_moe": _Traits(**_BIAS, qk_norm="head", kv_default=4, moe=_MOE["qwen3_moe"],
                         window_default=4096, window_switch=True),
    "gemma": _Traits(**_BIAS, kv_default=16, head_dim_default=256, tie_default=True),
    "gemma2": _Traits(**_BIAS, layer_norms=_GEMMA2_NORMS, kv_default=4, head_dim_default=256, tie_default=True,
                      window_default=4096, window_pattern=2),
    "gemma3_text": _Traits(**_BIAS, qk_norm="head", layer_norms=_GEMMA2_NORMS, kv_default=4,
                           head_dim_default=256, tie_default=True, window_pattern=6, window_pattern_key=True),
    "phi3": _Traits(fused_qkv=True, fused_gate_up=True),
    "starcoder2": _Traits(qkv_bias=("use_bias", True), o_bias=("use_bias", True), mlp_bias=("use_bias", True),
                          gated_mlp=False, norm_bias=True, kv_default=2, tie_default=True),
    "olmo": _Traits(**_BIAS, norm_affine=False),            # OlmoLayerNorm has no parameters
    "olmo2": _Traits(**_BIAS, qk_norm="full", layer_norms=_POST_NORMS),
    "olmo3": _Traits(**_BIAS, qk_norm="full", layer_norms=_POST_NORMS, window_default=4096, window_pattern=4),
    "olmoe": _Traits(**_BIAS, qk_norm="hidden", moe=_MOE["olmoe"]),
    "cohere": _Traits(**_BIAS, qk_norm="full", qk_norm_when=("use_qk_norm", True, False),
                      layer_norms=("input_layernorm",), tie_default=True),
    "cohere2": _Traits(**_BIAS, layer_norms=("input_layernorm",), tie_default=True,
                       window_default=4096, window_pattern=4, window_pattern_key=True),
    "phi": _Traits(qkv_bias=True, o_bias=True, mlp_bias=True, gated_mlp=False,
                   layer_norms=("input_layernorm",), norm_bias=True, lm_head_bias=True,
                   qk_norm="head", qk_norm_when=("qk_layernorm", True, False),
                   qk_norm_names=("q_layernorm", "k_layernorm"), qk_norm_bias=True),
    "phimoe": _Traits(**_BIAS, norm_bias=True, lm_head_bias="lm_head_bias", kv_default=8, moe=_MOE["phimoe"]),
    # modeling_stablelm.py: use_qkv_bias on q,k,v; a LayerNorm per head when qk_layernorm;
    # no post-attention norm with use_parallel_residual
    "stablelm": _Traits(qkv_bias="use_qkv_bias", norm_bias=True, head_dim_fixed=True, kv_default=32,
                        qk_norm="each_head", qk_norm_when=("qk_layernorm", True, False),
                        qk_norm_names=("q_layernorm", "k_layernorm"),
                        layer_norms=("input_layernorm",
                                     ("post_attention_layernorm", ("use_parallel_residual", False, False)))),
    "nemotron": _Traits(**_BIAS, mlp_bias="mlp_bias", **_PLAIN_MLP, norm_bias=True),   # LayerNorm1P
    # modeling_glm.py: bias on q,k,v (attention_bias, default on); one gate_up_proj
    "glm": _Traits(qkv_bias=("attention_bias", True), fused_gate_up=True, kv_default=2, head_dim_default=128),
    "glm4": _Traits(qkv_bias=("attention_bias", True), fused_gate_up=True, kv_default=2, head_dim_default=128,
                    layer_norms=("input_layernorm", "post_attention_layernorm",
                                 "post_self_attn_layernorm", "post_mlp_layernorm")),
    # modeling_glm4_moe.py (GLM-4.5): bias on q,k,v; q/k RMSNorm with use_qk_norm; DeepSeek-style MoE
    "glm4_moe": _Traits(qkv_bias="attention_bias", qk_norm="head", qk_norm_when=("use_qk_norm", True, False),
                        kv_default=8, moe=_MOE["glm4_moe"]),
    "granitemoe": _Traits(**_BIAS, mlp_name="block_sparse_moe", moe=_MOE["granitemoe"]),
    "granitemoeshared": _Traits(**_BIAS, mlp_name="block_sparse_moe", moe=_MOE["granitemoeshared"]),
    # modeling_dbrx.py: Wqkv without bias, LayerNorm without bias, MoE in every block
    "dbrx": _Traits(fused_qkv=True, head_dim_fixed=True, kv_key="attn_config.kv_n_heads", kv_default=1,
                    mlp_name="ffn", moe=_MOE["dbrx"]),
    "exaone4": _Traits(qk_norm="head", layer_norms=_POST_NORMS, kv_default=32,
                       window_default=4096, window_pattern=4, window_pattern_key=True),
    # modeling_seed_oss.py: attention_bias on q,k,v, attention_out_bias on o
    "seed_oss": _Traits(qkv_bias=("attention_bias", True), o_bias="attention_out_bias", mlp_bias="mlp_bias",
                        kv_default=8, head_dim_default=128),
    "hunyuan_v1_dense": _Traits(**_BIAS, **_HUNYUAN_QK),
    "hunyuan_v1_moe": _Traits(**_BIAS, **_HUNYUAN_QK, moe=_MOE["hunyuan_v1_moe"]),
    "ernie4_5": _Traits(qkv_bias="use_bias", o_bias="use_bias", mlp_bias="use_bias", kv_default=2,
                        head_dim_default=128, tie_default=True),
    "ernie4_5_moe": _Traits(qkv_bias="use_bias", o_bias="use_bias", mlp_bias="use_bias", lm_head_bias="use_bias",
                            kv_default=4, tie_default=True, moe=_MOE["ernie4_5_moe"]),
    # modeling_gpt_oss.py: biased attention with a learned sink logit per head
    "gpt_oss": _Traits(qkv_bias=("attention_bias", True), o_bias=("attention_bias", True), kv_default=8,
                       head_dim_default=64, extras=(_Extra("self_attn.sinks", "other", "heads"),),
                       moe=_MOE["gpt_oss"], window_default=128, window_pattern=2),
    # modeling_llama4.py: the q/k L2 norm has no weight; dense layers are intermediate_size_mlp wide
    "llama4_text": _Traits(**_BIAS, kv_default=8, head_dim_default=128, mlp_name="feed_forward",
                           dense_inter="intermediate_size_mlp", moe=_MOE["llama4_text"], slides=False),
    # modeling_apertus.py: xIELU activation with two learned scalars
    "apertus": _Traits(**_BIAS, **_PLAIN_MLP, qk_norm="head",
                       layer_norms=("attention_layernorm", "feedforward_layernorm"),
                       extras=tuple(_Extra(f"mlp.act_fn.{a}", "other", "one", ("hidden_act", "xielu", "xielu"))
                                    for a in ("alpha_p", "alpha_n"))),
    # modeling_bitnet.py: RMSNorm before o_proj and before down_proj
    "bitnet": _Traits(**_BIAS, kv_default=5, extras=(_Extra("self_attn.attn_sub_norm.weight", "norm", "hidden"),
                                                     _Extra("mlp.ffn_sub_norm.weight", "norm", "inter"))),
    "deepseek_v2": _Traits(mlp_bias="mlp_bias", attention="mla", moe=_MOE["deepseek_v2"]),
    "deepseek_v3": _Traits(attention="mla", moe=_MOE["deepseek_v3"]),
    "deepseek_v32": _Traits(attention="mla", moe=_MOE["deepseek_v32"], slides=False),   # + the DSA indexer
    "minicpm3": _Traits(mlp_bias="mlp_bias", attention="mla", tie_default=True),
}

# MLA: the config class's q_lora_rank when the key is absent (an explicit null means no q LoRA)
_Q_LORA_DEFAULT = {"deepseek_v2": 1536, "deepseek_v3": 1536, "deepseek_v32": 1536, "minicpm3": 768}


def _flag(cfg: Config, spec: _Flag) -> bool:
    if isinstance(spec, bool):
        return spec
    key, default = spec if isinstance(spec, tuple) else (spec, False)
    return cfg.bool(key, default)


def _holds(cfg: Config, when: _When | None) -> bool:
    if when is None:
        return True
    key, value, default = when
    return cfg.get(key, default) == value


def _num(cfg: Config, spec: _Num, minimum: int = 0, maximum: float = float("inf")) -> int:
    keys, default = spec
    keys = (keys,) if isinstance(keys, str) else keys
    value = cfg.first(*keys)
    if isinstance(value, list) and value:   # per-layer lists (HunYuan's moe_topk): the largest
        value = max(value)
    if value is None:
        value = default
    if value is None:
        raise ModelError("model.missing_field", model_type=cfg.model_type, field=keys[0])
    return _whole(keys[0], value, minimum, maximum)


def _attention_dims(cfg: Config, tr: _Traits) -> tuple[int, int, int, int]:
    h = cfg.int("hidden_size", "n_embd", "d_model", maximum=limits.MAX_HIDDEN)
    nh = cfg.int("num_attention_heads", "n_head", "n_heads", maximum=limits.MAX_HIDDEN)
    nkv = cfg.int(tr.kv_key, default=tr.kv_default or nh, maximum=nh)
    if nh % nkv:
        raise ModelError("model.bad_field", field=tr.kv_key, value=nkv,
                         why=f"must divide num_attention_heads ({nh})")
    if tr.head_dim_fixed and h % nh:
        raise ModelError("model.bad_field", field="num_attention_heads", value=nh,
                         why=f"must divide hidden_size ({h})")
    default_hd = tr.head_dim_default or (h // nh if h % nh == 0 else None)
    if tr.head_dim_fixed:
        head_dim = h // nh
    else:
        head_dim = cfg.int("head_dim", default=default_hd) if default_hd else cfg.int("head_dim")
    return h, nh, nkv, head_dim


def _norm(name: str, width: int, bias: bool, layer: int | None, count: int = 1) -> list[Tensor]:
    rows = [Tensor(f"{name}.weight", "norm", (width,), layer, count)]
    if bias:
        rows.append(Tensor(f"{name}.bias", "norm", (width,), layer, count))
    return rows


def _linear(name: str, role: Role, out_f: int, in_f: int, bias: bool, layer: int | None,
            count: int = 1) -> list[Tensor]:
    """A linear layer's weight (out, in) and optional bias (a 1-D row of the same role)."""
    rows = [Tensor(f"{name}.weight", role, (out_f, in_f), layer, count)]
    if bias:
        rows.append(Tensor(f"{name}.bias", role, (out_f,), layer, count))
    return rows


def _qk_norms(tr: _Traits, prefix: str, h: int, nh: int, nkv: int, hd: int, i: int) -> list[Tensor]:
    q, k = (f"{prefix}.{n}" for n in tr.qk_norm_names)
    if tr.qk_norm == "head":
        return _norm(q, hd, tr.qk_norm_bias, i) + _norm(k, hd, tr.qk_norm_bias, i)
    if tr.qk_norm == "each_head":   # nn.ModuleList of LayerNorm(head_dim, bias=False), one per head
        return _norm(f"{q}.norms", hd, False, i, count=nh) + _norm(f"{k}.norms", hd, False, i, count=nkv)
    if tr.qk_norm == "full":
        return _norm(q, nh * hd, False, i) + _norm(k, nkv * hd, False, i)
    if tr.qk_norm == "hidden":      # modeling_olmoe.py sizes these from hidden_size, not head_dim
        return _norm(q, h, False, i) + _norm(k, h // nh * nkv, False, i)
    return []


def _gqa_attention(cfg: Config, tr: _Traits, i: int, prefix: str) -> list[Tensor]:
    h, nh, nkv, hd = _attention_dims(cfg, tr)
    qkv_b, o_b = _flag(cfg, tr.qkv_bias), _flag(cfg, tr.o_bias)
    rows: list[Tensor] = []
    if tr.fused_qkv:
        rows += _linear(f"{prefix}.qkv_proj", "attn_qkv", (nh + 2 * nkv) * hd, h, qkv_b, i)
    else:
        rows += _linear(f"{prefix}.q_proj", "attn_q", nh * hd, h, qkv_b, i)
        rows += _linear(f"{prefix}.k_proj", "attn_k", nkv * hd, h, qkv_b, i)
        rows += _linear(f"{prefix}.v_proj", "attn_v", nkv * hd, h, qkv_b, i)
    o_name = "dense" if cfg.model_type == "phi" else "o_proj"
    rows += _linear(f"{prefix}.{o_name}", "attn_o", h, nh * hd, o_b, i)
    if _holds(cfg, tr.qk_norm_when):
        rows += _qk_norms(tr, prefix, h, nh, nkv, hd, i)
    return rows


def _dense_mlp(prefix: str, h: int, inter: int, tr: _Traits, bias: bool, i: int,
               roles: tuple[Role, Role, Role] = ("mlp_gate", "mlp_up", "mlp_down")) -> list[Tensor]:
    gate, up, down = roles
    if not tr.gated_mlp:
        fc_in, fc_out = tr.mlp_names
        return (_linear(f"{prefix}.{fc_in}", up, inter, h, bias, i)
                + _linear(f"{prefix}.{fc_out}", down, h, inter, bias, i))
    if tr.fused_gate_up:
        return (_linear(f"{prefix}.gate_up_proj", "mlp_gate_up", 2 * inter, h, bias, i)
                + _linear(f"{prefix}.down_proj", down, h, inter, bias, i))
    return (_linear(f"{prefix}.gate_proj", gate, inter, h, bias, i)
            + _linear(f"{prefix}.up_proj", up, inter, h, bias, i)
            + _linear(f"{prefix}.down_proj", down, h, inter, bias, i))


@dataclass(frozen=True)
class _Moe:
    """A family's MoE as this config sets it."""

    spec: _MoeSpec
    num_experts: int
    top_k: int
    expert_inter: int
    sparse_layers: frozenset[int]
    shared_inter: int = 0            # total width of the shared expert(s), 0 if none
    shared_bias: bool = False


def _sparse_layers(cfg: Config, spec: _MoeSpec, n_layers: int) -> frozenset[int]:
    """The MoE layers, as each family's decoder layer decides (see the modeling files)."""
    rule, layers = spec.layers, range(n_layers)
    if rule == "qwen":      # modeling_qwen2_moe.py: not in mlp_only_layers and (i + 1) % decoder_sparse_step == 0
        step = cfg.int("decoder_sparse_step", default=1)
        listed = cfg.get("mlp_only_layers", [])
        if not isinstance(listed, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in listed):
            raise ModelError("model.bad_field", field="mlp_only_layers", value=listed, why="must be a list of layer indices")
        only_dense = set(listed)
        return frozenset(i for i in layers if i not in only_dense and (i + 1) % step == 0)
    if rule == "deepseek":  # every layer from first_k_dense_replace on (moe_layer_freq is ignored),
        kinds = cfg.get("mlp_layer_types")   # unless DeepSeek-V3.2 lists the kinds
        if cfg.model_type == "deepseek_v32" and isinstance(kinds, list) and len(kinds) == n_layers:
            return frozenset(i for i in layers if kinds[i] == "sparse")
        first_dense = cfg.int("first_k_dense_replace", default=spec.first_dense, minimum=0)
        return frozenset(range(first_dense, n_layers))
    if rule == "ernie":     # modeling_ernie4_5_moe.py
        step = cfg.int("moe_layer_interval", default=1)
        start = cfg.int("moe_layer_start_index", default=1, minimum=0)
        end = cfg.int("moe_layer_end_index", default=-1, minimum=-1)
        end = n_layers - 1 if end == -1 else end
        return frozenset(i for i in layers if (i + 1) % step == 0 and start <= i <= end)
    if rule == "llama4":    # configuration_llama4.py: moe_layers, else every interleave_moe_layer_step-th
        listed = cfg.get("moe_layers")
        if isinstance(listed, list):
            return frozenset(i for i in layers if i in listed)
        step = cfg.int("interleave_moe_layer_step", default=1)
        return frozenset(range(step - 1, n_layers, step))
    return frozenset(layers)


def _moe_of(cfg: Config, spec: _MoeSpec | None, n_layers: int) -> _Moe | None:
    if spec is None:
        return None
    e = _num(cfg, spec.experts, maximum=limits.MAX_EXPERTS)
    if e == 0:
        return None
    inter = _num(cfg, spec.inter, minimum=1)
    shared = 0 if spec.shared is None else _num(cfg, spec.shared)
    if spec.shared_per_expert:
        shared *= inter
    return _Moe(spec, e, _num(cfg, spec.top_k, minimum=1, maximum=e), inter,
                _sparse_layers(cfg, spec, n_layers), shared, _flag(cfg, spec.shared_bias))


def _moe_block(prefix: str, h: int, moe: _Moe, i: int) -> list[Tensor]:
    """Router, routed experts (transformers 5 fuses them into 3-D tensors; the count is the
    same) and shared experts of one MoE layer."""
    spec, e, inter = moe.spec, moe.num_experts, moe.expert_inter
    rows = _linear(f"{prefix}.{spec.router}", "router", e, h, spec.router_bias, i)
    if spec.score_bias:
        rows.append(Tensor(f"{prefix}.{spec.router}.moe_statics.e_score_correction_bias", "router", (1, e), i))
    for name, role, shape in (("gate_proj", "expert_gate", (inter, h)), ("up_proj", "expert_up", (inter, h)),
                              ("down_proj", "expert_down", (h, inter))):
        rows.append(Tensor(f"{prefix}.experts.{name}", role, shape, i, e))
        if spec.expert_bias:
            rows.append(Tensor(f"{prefix}.experts.{name}_bias", role, shape[:1], i, e))
    if spec.shared is not None and (moe.shared_inter or (spec.shared_at_zero and moe.shared_bias)):
        rows += _dense_mlp(f"{prefix}.{spec.shared_name}", h, moe.shared_inter, _Traits(), moe.shared_bias, i,
                           roles=("shared_gate", "shared_up", "shared_down"))
    if spec.shared_gate:
        rows.append(Tensor(f"{prefix}.shared_expert_gate.weight", "other", (1, h), i))
    return rows


def _mla_attention(cfg: Config, i: int, prefix: str) -> list[Tensor]:
    """Multi-head latent attention (modeling_deepseek_v3.py, modeling_minicpm3.py), with
    DeepSeek-V3.2's sparse-attention indexer (modeling_deepseek_v32.py)."""
    h = cfg.int("hidden_size")
    nh = cfg.int("num_attention_heads")
    bias = cfg.bool("attention_bias", False)
    nope, rope = cfg.int("qk_nope_head_dim"), cfg.int("qk_rope_head_dim")
    v_dim, kv_rank = cfg.int("v_head_dim", default=h // nh), cfg.int("kv_lora_rank")
    q_rank = cfg.raw.get("q_lora_rank", _Q_LORA_DEFAULT[cfg.model_type])   # an explicit null: no q LoRA
    if cfg.model_type == "deepseek_v32":   # V3.2's attention always has one
        q_rank = q_rank or _Q_LORA_DEFAULT["deepseek_v32"]
    rows: list[Tensor] = []
    if q_rank is None:
        rows += _linear(f"{prefix}.q_proj", "attn_q", nh * (nope + rope), h, False, i)
    else:
        q_rank = _whole("q_lora_rank", q_rank)
        rows += _linear(f"{prefix}.q_a_proj", "attn_q_a", q_rank, h, bias, i)
        rows += _norm(f"{prefix}.q_a_layernorm", q_rank, False, i)
        rows += _linear(f"{prefix}.q_b_proj", "attn_q_b", nh * (nope + rope), q_rank, False, i)
    rows += _linear(f"{prefix}.kv_a_proj_with_mqa", "attn_kv_a", kv_rank + rope, h, bias, i)
    rows += _norm(f"{prefix}.kv_a_layernorm", kv_rank, False, i)
    rows += _linear(f"{prefix}.kv_b_proj", "attn_kv_b", nh * (nope + v_dim), kv_rank, False, i)
    rows += _linear(f"{prefix}.o_proj", "attn_o", h, nh * v_dim, bias, i)
    if cfg.model_type == "deepseek_v32":
        idx_heads, idx_dim = cfg.int("index_n_heads", default=64), cfg.int("index_head_dim", default=128)
        rows += _linear(f"{prefix}.indexer.wq_b", "attn_q_b", idx_heads * idx_dim, q_rank, False, i)
        rows += _linear(f"{prefix}.indexer.wk", "attn_k", idx_dim, h, False, i)
        rows += _norm(f"{prefix}.indexer.k_norm", idx_dim, True, i)
        rows += _linear(f"{prefix}.indexer.weights_proj", "other", idx_heads, h, False, i)
    return rows


def _sliding_layers(cfg: Config, tr: _Traits, n_layers: int) -> tuple[bool, ...]:
    """Which layers slide when the config lists no ``layer_types`` (each family's
    configuration ``__post_init__``, or all layers where it sets none)."""
    mt, layers = cfg.model_type, range(n_layers)
    if mt in ("qwen2", "qwen3"):        # the layers from max_window_layers on
        first = cfg.int("max_window_layers", default=28, minimum=0)
        return tuple(i >= first for i in layers)
    if mt == "qwen2_moe":               # even layers below max_window_layers
        last = cfg.int("max_window_layers", default=28, minimum=0)
        return tuple(i % 2 == 0 and i < last for i in layers)
    if mt == "smollm3":                 # the NoPE layers
        return tuple(not rope for rope in _rope_layers(cfg, n_layers))
    if tr.window_pattern is None:
        return (True,) * n_layers
    pattern = cfg.get("sliding_window_pattern", tr.window_pattern) if tr.window_pattern_key else tr.window_pattern
    if isinstance(pattern, str) and pattern:   # EXAONE 4 may spell it "LLLG": L local, G global
        return tuple(pattern[i % len(pattern)] == "L" for i in layers)
    pattern = _whole("sliding_window_pattern", pattern)
    return tuple((i + 1) % pattern != 0 for i in layers)


def _rope_layers(cfg: Config, n_layers: int) -> list[bool]:
    """Llama 4 and SmolLM3's no_rope_layers (1 = uses RoPE); by default every 4th layer is NoPE."""
    listed = cfg.get("no_rope_layers")
    if isinstance(listed, list) and len(listed) == n_layers:
        return [bool(x) for x in listed]
    interval = cfg.int("no_rope_layer_interval", default=4)
    return [(i + 1) % interval != 0 for i in range(n_layers)]


def _max_positions(cfg: Config, *keys: str) -> int | None:
    """The context limit if the config states one (a positive whole number), else None."""
    if cfg.first(*keys) is None:
        return None
    return cfg.int(*keys, maximum=limits.MAX_CONTEXT)


def _layer_windows(cfg: Config, tr: _Traits, n_layers: int) -> tuple[int | None, ...]:
    """Sliding-window (or Llama 4 chunked-attention) size per layer (None = full attention);
    transformers' cache keeps both kinds as a sliding window (cache_utils.py)."""
    window = cfg.raw.get("sliding_window", tr.window_default) if tr.slides else None
    if window is not None:
        window = _whole("sliding_window", window, 1, limits.MAX_CONTEXT)
    chunk = cfg.raw.get("attention_chunk_size", 8192) if cfg.model_type == "llama4_text" else None
    if chunk is not None:
        chunk = _whole("attention_chunk_size", chunk, 1, limits.MAX_CONTEXT)
    if tr.window_switch and not cfg.bool("use_sliding_window", False):
        window = None
    layer_types = cfg.get("layer_types")
    if isinstance(layer_types, list) and len(layer_types) == n_layers:
        sizes = {"sliding_attention": window, "chunked_attention": chunk}
        return tuple(sizes.get(t) for t in layer_types)
    if chunk:   # configuration_llama4.py: the RoPE layers are chunked
        return tuple(chunk if rope else None for rope in _rope_layers(cfg, n_layers))
    if not window:
        return (None,) * n_layers
    return tuple(window if s else None for s in _sliding_layers(cfg, tr, n_layers))


def _llama_like(cfg: Config) -> Architecture:
    tr = _LLAMA_LIKE[cfg.model_type]
    h, nh, nkv, hd = _attention_dims(cfg, tr)
    n_layers = cfg.int("num_hidden_layers", "n_layers", "num_layers", maximum=limits.MAX_LAYERS)
    vocab = cfg.int("vocab_size", maximum=limits.MAX_VOCAB)
    mla = tr.attention == "mla"
    moe = _moe_of(cfg, tr.moe, n_layers)
    all_sparse = moe is not None and len(moe.sparse_layers) == n_layers
    inter = 0 if all_sparse and cfg.get(tr.dense_inter) is None else cfg.int(tr.dense_inter)
    mlp_bias = _flag(cfg, tr.mlp_bias)
    widths = {"heads": nh, "hidden": h, "inter": inter, "one": 1}
    rows = [Tensor("model.embed_tokens.weight", "embed", (vocab, h))]
    for i in range(n_layers):
        p = f"model.layers.{i}"
        rows += _mla_attention(cfg, i, f"{p}.self_attn") if mla else _gqa_attention(cfg, tr, i, f"{p}.self_attn")
        if moe is not None and i in moe.sparse_layers:
            rows += _moe_block(f"{p}.{tr.mlp_name}", h, moe, i)
        else:
            rows += _dense_mlp(f"{p}.{tr.mlp_name}", h, inter, tr, mlp_bias, i)
        for x in tr.extras:
            if _holds(cfg, x.when):
                rows.append(Tensor(f"{p}.{x.name}", x.role, (widths[x.width],), i))
        for norm in tr.layer_norms:
            name, when = norm if isinstance(norm, tuple) else (norm, None)
            if tr.norm_affine and _holds(cfg, when):
                rows += _norm(f"{p}.{name}", h, tr.norm_bias, i)
    if tr.norm_affine:
        rows += _norm("model.norm" if cfg.model_type != "phi" else "model.final_layernorm", h, tr.norm_bias, None)
    tied = cfg.bool("tie_word_embeddings", tr.tie_default)
    lm_bias = _flag(cfg, tr.lm_head_bias)
    if not tied:
        rows += _linear("lm_head", "lm_head", vocab, h, lm_bias, None)
    elif lm_bias:
        rows.append(Tensor("lm_head.bias", "lm_head", (vocab,)))
    notes: tuple[str, ...] = ()
    if mla:
        kv_width = cfg.int("kv_lora_rank") + cfg.int("qk_rope_head_dim")
        kv_heads, kv_per_token = 1, n_layers * kv_width
        if cfg.model_type == "deepseek_v32":
            notes = ("the DSA indexer's key cache (index_head_dim per layer per token) is not in the KV cache",)
    else:
        kv_width, kv_heads, kv_per_token = hd, nkv, 2 * n_layers * nkv * hd
    return Architecture(
        model_type=cfg.model_type, hidden_size=h, num_hidden_layers=n_layers,
        num_attention_heads=nh, num_key_value_heads=kv_heads, head_dim=kv_width,
        vocab_size=vocab, intermediate_size=inter,
        max_position_embeddings=_max_positions(cfg, "max_position_embeddings", "max_seq_len"),
        tie_word_embeddings=tied, tensors=tuple(rows), kv_elements_per_token=kv_per_token,
        attention="mla" if mla else "standard",
        num_experts=moe.num_experts if moe else 0, experts_per_token=moe.top_k if moe else 0,
        moe_layers=tuple(sorted(moe.sparse_layers)) if moe else (),
        layer_windows=_layer_windows(cfg, tr, n_layers), notes=notes,
    )


# ----------------------------------------------------------------------------------
# GPT-style families (published training runs use these)
# ----------------------------------------------------------------------------------

def _gpt_family(cfg: Config) -> Architecture:
    """GPT-2/GPT-3 (gpt2), StarCoder 1 (gpt_bigcode), GPT-NeoX, OPT, BLOOM and Falcon: MHA
    (MQA for StarCoder, MQA/GQA for Falcon) with LayerNorm and a non-gated 2-layer MLP."""
    mt = cfg.model_type
    h = cfg.int("hidden_size", "n_embd", "d_model", maximum=limits.MAX_HIDDEN)
    nh = cfg.int("num_attention_heads", "n_head", maximum=limits.MAX_HIDDEN)
    n_layers = cfg.int("num_hidden_layers", "n_layer", maximum=limits.MAX_LAYERS)
    vocab = cfg.int("vocab_size", maximum=limits.MAX_VOCAB)
    if h % nh:
        raise ModelError("model.bad_field", field="num_attention_heads", value=nh,
                         why=f"must divide hidden_size ({h})")
    hd, nkv = h // nh, nh
    bias, ln_bias, tie_default = True, True, True
    mlp_bias: bool | None = None   # None: same as the attention bias
    rows: list[Tensor] = [Tensor("embed_tokens.weight", "embed", (vocab, h))]
    if mt in ("gpt2", "gpt_bigcode"):
        inter = cfg.int("n_inner", default=4 * h)
        if mt == "gpt_bigcode":   # modeling_gpt_bigcode.py: one K/V head with multi_query (the default)
            nkv = 1 if cfg.bool("multi_query", True) else nh
        rows.append(Tensor("wpe.weight", "pos_embed", (cfg.int("n_positions", "max_position_embeddings"), h)))
        norms = ("ln_1", "ln_2")
        max_pos = cfg.int("n_positions", "max_position_embeddings")
    elif mt == "gpt_neox":
        inter = cfg.int("intermediate_size")
        bias, mlp_bias = cfg.bool("attention_bias", True), True   # modeling_gpt_neox.py: MLP always biased
        norms, tie_default = ("input_layernorm", "post_attention_layernorm"), False
        max_pos = _max_positions(cfg, "max_position_embeddings")
    elif mt == "opt":
        inter = cfg.int("ffn_dim")
        proj = cfg.int("word_embed_proj_dim", default=h)
        bias = cfg.bool("enable_bias", True)
        ln_bias = cfg.bool("layer_norm_elementwise_affine", True)
        max_pos = cfg.int("max_position_embeddings")
        rows = [Tensor("embed_tokens.weight", "embed", (vocab, proj)),
                Tensor("embed_positions.weight", "pos_embed", (max_pos + 2, h))]  # OPT offsets positions by 2
        if proj != h:
            rows += _linear("project_in", "other", h, proj, False, None)
            rows += _linear("project_out", "other", proj, h, False, None)
        norms = ("self_attn_layer_norm", "final_layer_norm")
    elif mt == "bloom":
        inter = 4 * h
        rows += _norm("word_embeddings_layernorm", h, True, None)
        norms = ("input_layernorm", "post_attention_layernorm")
        max_pos = None  # ALiBi: no position limit in the architecture
    else:  # falcon
        inter = cfg.int("ffn_hidden_size", default=4 * h)
        bias = cfg.bool("bias", False)
        if cfg.bool("new_decoder_architecture", False):
            nkv = cfg.int("num_kv_heads", default=nh)
            n_ln = cfg.int("num_ln_in_parallel_attn", default=2)
            norms = ("ln_attn", "ln_mlp") if n_ln == 2 else ("input_layernorm",)
        else:
            nkv = 1 if cfg.bool("multi_query", True) else nh
            parallel = cfg.bool("parallel_attn", True)
            norms = ("input_layernorm",) if parallel else ("input_layernorm", "post_attention_layernorm")
        max_pos = _max_positions(cfg, "max_position_embeddings")
    for i in range(n_layers):
        p = f"h.{i}"
        rows += _linear(f"{p}.attn.qkv", "attn_qkv", (nh + 2 * nkv) * hd, h, bias, i)
        rows += _linear(f"{p}.attn.proj", "attn_o", h, h, bias, i)
        fc_bias = bias if mlp_bias is None else mlp_bias
        rows += _linear(f"{p}.mlp.fc_in", "mlp_up", inter, h, fc_bias, i)
        rows += _linear(f"{p}.mlp.fc_out", "mlp_down", h, inter, fc_bias, i)
        for norm in norms:
            rows += _norm(f"{p}.{norm}", h, ln_bias, i)
    final_norm = not (mt == "opt" and (not cfg.bool("do_layer_norm_before", True)
                                       or cfg.bool("_remove_final_layer_norm", False)))
    if final_norm:
        rows += _norm("ln_f", h, ln_bias, None)
    tied = cfg.bool("tie_word_embeddings", tie_default)
    if not tied:
        emb_width = rows[0].shape[1]
        rows += _linear("lm_head", "lm_head", vocab, emb_width, False, None)
    return Architecture(
        model_type=mt, hidden_size=h, num_hidden_layers=n_layers, num_attention_heads=nh,
        num_key_value_heads=nkv, head_dim=hd, vocab_size=vocab, intermediate_size=inter,
        max_position_embeddings=max_pos, tie_word_embeddings=tied, tensors=tuple(rows),
        kv_elements_per_token=2 * n_layers * nkv * hd, layer_windows=(None,) * n_layers,
    )


_BUILDERS: dict[str, Callable[[Config], Architecture]] = {
    **{mt: _llama_like for mt in _LLAMA_LIKE},
    **{mt: _gpt_family for mt in ("gpt2", "gpt_bigcode", "gpt_neox", "opt", "bloom", "falcon")},
}

SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(sorted(_BUILDERS))


# Config-class defaults that published configs rely on.  Gemma 3's multimodal Hub
# configs store a sparse ``text_config`` (e.g. gemma-3-4b-it omits vocab_size and the
# head counts); transformers fills them from ``Gemma3TextConfig.__init__`` defaults
# (transformers 5.x, models/gemma3/configuration_gemma3.py), and so do we.
_CLASS_DEFAULTS: dict[str, dict[str, Any]] = {
    "gemma3_text": {"vocab_size": 262208, "hidden_size": 2304, "intermediate_size": 9216,
                    "num_hidden_layers": 26, "num_attention_heads": 8, "num_key_value_heads": 4,
                    "head_dim": 256, "sliding_window": 4096, "max_position_embeddings": 131072},
    # MLA widths (configuration_deepseek_v3.py, configuration_minicpm3.py; q_lora_rank: _Q_LORA_DEFAULT)
    **{mt: {"kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128}
       for mt in ("deepseek_v2", "deepseek_v3", "deepseek_v32")},
    "minicpm3": {"kv_lora_rank": 256, "qk_nope_head_dim": 64, "qk_rope_head_dim": 32},
}


def build_architecture(raw: Mapping[str, Any]) -> Architecture:
    """Lay out the model a Hugging Face config describes.

    Multimodal configs (Gemma 3, Llama 4...) are read through their ``text_config``.
    """
    if not isinstance(raw.get("model_type"), str):
        raise ModelError("model.no_model_type", path="config")
    if raw["model_type"] not in _BUILDERS and isinstance(raw.get("text_config"), Mapping):
        text = dict(raw["text_config"])
        wrapped = {"gemma3": "gemma3_text", "llama4": "llama4_text"}.get(raw["model_type"])
        if wrapped and text.get("model_type") in (None, raw["model_type"]):
            text["model_type"] = wrapped
        text.setdefault("tie_word_embeddings", raw.get("tie_word_embeddings"))
        raw = text
    defaults = _CLASS_DEFAULTS.get(str(raw.get("model_type")))
    if defaults:
        raw = {**raw, **{k: v for k, v in defaults.items() if raw.get(k) is None}}
    cfg = Config(raw)
    builder = _BUILDERS.get(cfg.model_type)
    if builder is None:
        raise ModelError("model.unsupported_type", model_type=cfg.model_type,
                         supported=", ".join(SUPPORTED_MODEL_TYPES))
    arch = builder(cfg)
    if arch.params > limits.MAX_PARAMS:
        raise ModelError("model.bad_field", field="(whole config)", value=arch.params,
                         why=f"describes more than the cap of {limits.MAX_PARAMS:.0e} parameters")
    return arch


# ----------------------------------------------------------------------------------
# Counts
# ----------------------------------------------------------------------------------

_GROUPS: dict[str, str] = {
    "embed": "embedding", "pos_embed": "embedding", "lm_head": "lm_head",
    "router": "moe/router", "norm": "norms", "other": "other",
}


def component_of(t: Tensor) -> str:
    """Breakdown key of a tensor (nanoGPT-style, e.g. ``attention``, ``moe/experts``)."""
    if t.role in _GROUPS:
        return _GROUPS[t.role]
    if t.role.startswith("attn_"):
        return "attention"
    if t.role.startswith("expert_"):
        return "moe/experts"
    if t.role.startswith("shared_"):
        return "moe/shared_experts"
    return "mlp"


def breakdown(arch: Architecture) -> dict[str, int]:
    """Parameters by component; the values sum to ``arch.params``."""
    out: dict[str, int] = {}
    for t in arch.tensors:
        key = component_of(t)
        out[key] = out.get(key, 0) + t.numel
    return out


def active_params(arch: Architecture) -> int:
    """Parameters used per token as model cards count them: embedding and lm_head
    included, routed experts at top-k (e.g. Mixtral 8x7B: 12.9B of 46.7B)."""
    if not arch.num_experts:
        return arch.params
    routed = sum(t.numel for t in arch.tensors if t.role.startswith("expert_"))
    return arch.params - routed + routed * arch.experts_per_token // arch.num_experts
