"""Llama-like decoders: the families that differ from Llama only in a few traits.

Which projections have biases, fused QKV or gate/up, q/k norms, how many norms a layer
has, LayerNorm with bias or RMSNorm, MLA instead of GQA, and the config class's
defaults: each is data in ``_LLAMA_LIKE``, read from the family's modeling and
configuration files in ``transformers`` (5.x), cited beside the rows that need it.
Where each MoE family keeps its expert numbers is ``rigsize.model.moe``; which layers
slide is ``rigsize.model.windows``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rigsize.errors import ModelError
from rigsize.model.architecture import Architecture
from rigsize.model.hf_config import Config, Flag, When, whole_number
from rigsize.model.moe import MOE, Moe, MoeSpec, moe_block, moe_of
from rigsize.model.tensors import Role, Tensor, linear_rows, norm_rows
from rigsize.model.windows import layer_windows
from rigsize.planning import limits


@dataclass(frozen=True)
class _Extra:
    """A small per-layer tensor outside the usual set: attention sinks, sub-norms, activation scalars."""

    name: str                     # under ``model.layers.{i}``
    role: Role
    width: str                    # "heads" | "hidden" | "inter" (dense MLP width) | "one"
    when: When | None = None


@dataclass(frozen=True)
class _Traits:
    """How one family lays out a decoder layer (read from the family's modeling file)."""

    qkv_bias: Flag = False
    o_bias: Flag = False
    mlp_bias: Flag = False
    fused_qkv: bool = False           # one qkv_proj (Phi-3, DBRX)
    fused_gate_up: bool = False       # one gate_up_proj (Phi-3, GLM)
    gated_mlp: bool = True            # SwiGLU/GeGLU (gate, up, down) vs a plain 2-layer MLP
    mlp_names: tuple[str, str] = ("fc1", "fc2")   # the plain MLP's two linears
    qk_norm: str | None = None        # "head": one RMSNorm(head_dim); "each_head": a LayerNorm(head_dim) per
    #                                   head (StableLM); "full": over heads*head_dim; "hidden": OLMoE's
    #                                   q_norm(hidden) and k_norm(hidden/heads*kv_heads)
    qk_norm_when: When | None = None     # config switch for the q/k norms (None: always there)
    qk_norm_names: tuple[str, str] = ("q_norm", "k_norm")
    qk_norm_bias: bool = False        # LayerNorm q/k norms with bias (Phi)
    layer_norms: tuple[str | tuple[str, When], ...] = ("input_layernorm", "post_attention_layernorm")
    norm_bias: bool = False           # LayerNorm with bias instead of RMSNorm
    norm_affine: bool = True          # False: norms without parameters (OLMo)
    lm_head_bias: Flag = False
    tie_default: bool = False         # the config class's default for tie_word_embeddings
    head_dim_default: int | None = None   # the config class's head_dim when absent (None: hidden/heads)
    head_dim_fixed: bool = False      # head_dim is always hidden/heads, whatever the config says
    kv_key: str = "num_key_value_heads"
    kv_default: int | None = None     # the config class's KV heads when absent (None: all heads)
    mlp_name: str = "mlp"             # the feed-forward block's module name
    dense_inter: str = "intermediate_size"   # dense MLP width key (Llama 4: intermediate_size_mlp)
    extras: tuple[_Extra, ...] = ()
    attention: str = "gqa"            # "gqa" | "mla" (DeepSeek V2/V3, MiniCPM3)
    moe: MoeSpec | None = None
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
    "mixtral": _Traits(kv_default=8, moe=MOE["mixtral"]),
    # modeling_qwen2.py: bias on q,k,v only
    "qwen2": _Traits(qkv_bias=True, kv_default=32, window_default=4096, window_switch=True),
    "qwen2_moe": _Traits(qkv_bias=("qkv_bias", True), kv_default=16, moe=MOE["qwen2_moe"],
                         window_default=4096, window_switch=True),
    "qwen3": _Traits(**_BIAS, qk_norm="head", kv_default=32, head_dim_default=128,
                     window_default=4096, window_switch=True),
    "qwen3_moe": _Traits(**_BIAS, qk_norm="head", kv_default=4, moe=MOE["qwen3_moe"],
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
    "olmoe": _Traits(**_BIAS, qk_norm="hidden", moe=MOE["olmoe"]),
    "cohere": _Traits(**_BIAS, qk_norm="full", qk_norm_when=("use_qk_norm", True, False),
                      layer_norms=("input_layernorm",), tie_default=True),
    "cohere2": _Traits(**_BIAS, layer_norms=("input_layernorm",), tie_default=True,
                       window_default=4096, window_pattern=4, window_pattern_key=True),
    "phi": _Traits(qkv_bias=True, o_bias=True, mlp_bias=True, gated_mlp=False,
                   layer_norms=("input_layernorm",), norm_bias=True, lm_head_bias=True,
                   qk_norm="head", qk_norm_when=("qk_layernorm", True, False),
                   qk_norm_names=("q_layernorm", "k_layernorm"), qk_norm_bias=True),
    "phimoe": _Traits(**_BIAS, norm_bias=True, lm_head_bias="lm_head_bias", kv_default=8, moe=MOE["phimoe"]),
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
                        kv_default=8, moe=MOE["glm4_moe"]),
    "granitemoe": _Traits(**_BIAS, mlp_name="block_sparse_moe", moe=MOE["granitemoe"]),
    "granitemoeshared": _Traits(**_BIAS, mlp_name="block_sparse_moe", moe=MOE["granitemoeshared"]),
    # modeling_dbrx.py: Wqkv without bias, LayerNorm without bias, MoE in every block
    "dbrx": _Traits(fused_qkv=True, head_dim_fixed=True, kv_key="attn_config.kv_n_heads", kv_default=1,
                    mlp_name="ffn", moe=MOE["dbrx"]),
    "exaone4": _Traits(qk_norm="head", layer_norms=_POST_NORMS, kv_default=32,
                       window_default=4096, window_pattern=4, window_pattern_key=True),
    # modeling_seed_oss.py: attention_bias on q,k,v, attention_out_bias on o
    "seed_oss": _Traits(qkv_bias=("attention_bias", True), o_bias="attention_out_bias", mlp_bias="mlp_bias",
                        kv_default=8, head_dim_default=128),
    "hunyuan_v1_dense": _Traits(**_BIAS, **_HUNYUAN_QK),
    "hunyuan_v1_moe": _Traits(**_BIAS, **_HUNYUAN_QK, moe=MOE["hunyuan_v1_moe"]),
    "ernie4_5": _Traits(qkv_bias="use_bias", o_bias="use_bias", mlp_bias="use_bias", kv_default=2,
                        head_dim_default=128, tie_default=True),
    "ernie4_5_moe": _Traits(qkv_bias="use_bias", o_bias="use_bias", mlp_bias="use_bias", lm_head_bias="use_bias",
                            kv_default=4, tie_default=True, moe=MOE["ernie4_5_moe"]),
    # modeling_gpt_oss.py: biased attention with a learned sink logit per head
    "gpt_oss": _Traits(qkv_bias=("attention_bias", True), o_bias=("attention_bias", True), kv_default=8,
                       head_dim_default=64, extras=(_Extra("self_attn.sinks", "other", "heads"),),
                       moe=MOE["gpt_oss"], window_default=128, window_pattern=2),
    # modeling_llama4.py: the q/k L2 norm has no weight; dense layers are intermediate_size_mlp wide
    "llama4_text": _Traits(**_BIAS, kv_default=8, head_dim_default=128, mlp_name="feed_forward",
                           dense_inter="intermediate_size_mlp", moe=MOE["llama4_text"], slides=False),
    # modeling_apertus.py: xIELU activation with two learned scalars
    "apertus": _Traits(**_BIAS, **_PLAIN_MLP, qk_norm="head",
                       layer_norms=("attention_layernorm", "feedforward_layernorm"),
                       extras=tuple(_Extra(f"mlp.act_fn.{a}", "other", "one", ("hidden_act", "xielu", "xielu"))
                                    for a in ("alpha_p", "alpha_n"))),
    # modeling_bitnet.py: RMSNorm before o_proj and before down_proj
    "bitnet": _Traits(**_BIAS, kv_default=5, extras=(_Extra("self_attn.attn_sub_norm.weight", "norm", "hidden"),
                                                     _Extra("mlp.ffn_sub_norm.weight", "norm", "inter"))),
    "deepseek_v2": _Traits(mlp_bias="mlp_bias", attention="mla", moe=MOE["deepseek_v2"]),
    "deepseek_v3": _Traits(attention="mla", moe=MOE["deepseek_v3"]),
    "deepseek_v32": _Traits(attention="mla", moe=MOE["deepseek_v32"], slides=False),   # + the DSA indexer
    "minicpm3": _Traits(mlp_bias="mlp_bias", attention="mla", tie_default=True),
}

MODEL_TYPES: tuple[str, ...] = tuple(_LLAMA_LIKE)

# MLA: the config class's q_lora_rank when the key is absent (an explicit null means no q LoRA)
_Q_LORA_DEFAULT = {"deepseek_v2": 1536, "deepseek_v3": 1536, "deepseek_v32": 1536, "minicpm3": 768}


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



def _qk_norms(tr: _Traits, prefix: str, h: int, nh: int, nkv: int, hd: int, i: int) -> list[Tensor]:
    q, k = (f"{prefix}.{n}" for n in tr.qk_norm_names)
    if tr.qk_norm == "head":
        return norm_rows(q, hd, tr.qk_norm_bias, i) + norm_rows(k, hd, tr.qk_norm_bias, i)
    if tr.qk_norm == "each_head":   # nn.ModuleList of LayerNorm(head_dim, bias=False), one per head
        return norm_rows(f"{q}.norms", hd, False, i, count=nh) + norm_rows(f"{k}.norms", hd, False, i, count=nkv)
    if tr.qk_norm == "full":
        return norm_rows(q, nh * hd, False, i) + norm_rows(k, nkv * hd, False, i)
    if tr.qk_norm == "hidden":      # modeling_olmoe.py sizes these from hidden_size, not head_dim
        return norm_rows(q, h, False, i) + norm_rows(k, h // nh * nkv, False, i)
    return []


def _gqa_attention(cfg: Config, tr: _Traits, i: int, prefix: str) -> list[Tensor]:
    h, nh, nkv, hd = _attention_dims(cfg, tr)
    qkv_b, o_b = cfg.flag(tr.qkv_bias), cfg.flag(tr.o_bias)
    rows: list[Tensor] = []
    if tr.fused_qkv:
        rows += linear_rows(f"{prefix}.qkv_proj", "attn_qkv", (nh + 2 * nkv) * hd, h, qkv_b, i)
    else:
        rows += linear_rows(f"{prefix}.q_proj", "attn_q", nh * hd, h, qkv_b, i)
        rows += linear_rows(f"{prefix}.k_proj", "attn_k", nkv * hd, h, qkv_b, i)
        rows += linear_rows(f"{prefix}.v_proj", "attn_v", nkv * hd, h, qkv_b, i)
    o_name = "dense" if cfg.model_type == "phi" else "o_proj"
    rows += linear_rows(f"{prefix}.{o_name}", "attn_o", h, nh * hd, o_b, i)
    if cfg.holds(tr.qk_norm_when):
        rows += _qk_norms(tr, prefix, h, nh, nkv, hd, i)
    return rows



def _dense_mlp(prefix: str, h: int, inter: int, tr: _Traits, bias: bool, i: int) -> list[Tensor]:
    """The feed-forward block: gate/up/down (SwiGLU/GeGLU), a fused gate_up_proj (Phi-3,
    GLM), or a plain two-layer MLP (StarCoder 2, Nemotron...)."""
    if not tr.gated_mlp:
        fc_in, fc_out = tr.mlp_names
        return (linear_rows(f"{prefix}.{fc_in}", "mlp_up", inter, h, bias, i)
                + linear_rows(f"{prefix}.{fc_out}", "mlp_down", h, inter, bias, i))
    if tr.fused_gate_up:
        return (linear_rows(f"{prefix}.gate_up_proj", "mlp_gate_up", 2 * inter, h, bias, i)
                + linear_rows(f"{prefix}.down_proj", "mlp_down", h, inter, bias, i))
    return (linear_rows(f"{prefix}.gate_proj", "mlp_gate", inter, h, bias, i)
            + linear_rows(f"{prefix}.up_proj", "mlp_up", inter, h, bias, i)
            + linear_rows(f"{prefix}.down_proj", "mlp_down", h, inter, bias, i))


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
        rows += linear_rows(f"{prefix}.q_proj", "attn_q", nh * (nope + rope), h, False, i)
    else:
        q_rank = whole_number("q_lora_rank", q_rank)
        rows += linear_rows(f"{prefix}.q_a_proj", "attn_q_a", q_rank, h, bias, i)
        rows += norm_rows(f"{prefix}.q_a_layernorm", q_rank, False, i)
        rows += linear_rows(f"{prefix}.q_b_proj", "attn_q_b", nh * (nope + rope), q_rank, False, i)
    rows += linear_rows(f"{prefix}.kv_a_proj_with_mqa", "attn_kv_a", kv_rank + rope, h, bias, i)
    rows += norm_rows(f"{prefix}.kv_a_layernorm", kv_rank, False, i)
    rows += linear_rows(f"{prefix}.kv_b_proj", "attn_kv_b", nh * (nope + v_dim), kv_rank, False, i)
    rows += linear_rows(f"{prefix}.o_proj", "attn_o", h, nh * v_dim, bias, i)
    if cfg.model_type == "deepseek_v32":
        idx_heads, idx_dim = cfg.int("index_n_heads", default=64), cfg.int("index_head_dim", default=128)
        rows += linear_rows(f"{prefix}.indexer.wq_b", "attn_q_b", idx_heads * idx_dim, q_rank, False, i)
        rows += linear_rows(f"{prefix}.indexer.wk", "attn_k", idx_dim, h, False, i)
        rows += norm_rows(f"{prefix}.indexer.k_norm", idx_dim, True, i)
        rows += linear_rows(f"{prefix}.indexer.weights_proj", "other", idx_heads, h, False, i)
    return rows



def llama_like(cfg: Config) -> Architecture:
    """A Llama-like decoder laid out from its family's traits (``_LLAMA_LIKE``): the
    token embedding, the decoder layers, the final norm, the lm_head and the KV cache."""
    tr = _LLAMA_LIKE[cfg.model_type]
    h, nh, nkv, hd = _attention_dims(cfg, tr)
    n_layers = cfg.int("num_hidden_layers", "n_layers", "num_layers", maximum=limits.MAX_LAYERS)
    vocab = cfg.int("vocab_size", maximum=limits.MAX_VOCAB)
    moe = moe_of(cfg, tr.moe, n_layers)
    all_sparse = moe is not None and len(moe.sparse_layers) == n_layers
    inter = 0 if all_sparse and cfg.get(tr.dense_inter) is None else cfg.int(tr.dense_inter)
    mlp_bias = cfg.flag(tr.mlp_bias)
    widths = {"heads": nh, "hidden": h, "inter": inter, "one": 1}
    rows = [Tensor("model.embed_tokens.weight", "embed", (vocab, h))]
    for i in range(n_layers):
        rows += _decoder_layer(cfg, tr, i, widths, moe, mlp_bias)
    if tr.norm_affine:
        rows += norm_rows("model.norm" if cfg.model_type != "phi" else "model.final_layernorm", h, tr.norm_bias, None)
    tied = cfg.bool("tie_word_embeddings", tr.tie_default)
    rows += _lm_head(cfg, tr, vocab, h, tied)
    kv_heads, kv_width, kv_per_token, notes = _kv_cache_shape(cfg, tr, n_layers, nkv, hd)
    mtp = _mtp_params(cfg, tr, widths, moe, mlp_bias, n_layers, vocab)
    return Architecture(
        model_type=cfg.model_type, hidden_size=h, num_hidden_layers=n_layers,
        num_attention_heads=nh, num_key_value_heads=kv_heads, head_dim=kv_width,
        vocab_size=vocab, intermediate_size=inter,
        max_position_embeddings=cfg.max_positions("max_position_embeddings", "max_seq_len"),
        tie_word_embeddings=tied, tensors=tuple(rows), kv_elements_per_token=kv_per_token,
        attention="mla" if tr.attention == "mla" else "standard",
        num_experts=moe.num_experts if moe else 0, experts_per_token=moe.top_k if moe else 0,
        moe_layers=tuple(sorted(moe.sparse_layers)) if moe else (),
        layer_windows=layer_windows(cfg, tr, n_layers), notes=notes, params_mtp=mtp,
        indexer_key_bytes=_indexer_key_bytes(cfg),
    )


# Families whose checkpoints carry DeepSeek-V3's multi-token-prediction module (DeepSeek-V3
# tech report, arXiv:2412.19437 sec. 2.2): per MTP layer its own embedding, enorm and hnorm,
# eh_proj (2h -> h), one decoder layer (an MoE layer), shared_head.norm and shared_head.head;
# vLLM's DeepSeekMTP builds the same (deepseek_mtp.py, 0.33.0 wheel).  transformers builds none.
_MTP_FAMILIES = frozenset({"deepseek_v3", "deepseek_v32", "glm4_moe"})


def _mtp_params(cfg: Config, tr: _Traits, widths: dict[str, int], moe: Moe | None, mlp_bias: bool,
                n_layers: int, vocab: int) -> int:
    """Parameters of the num_nextn_predict_layers MTP layers, outside ``params``."""
    if cfg.model_type not in _MTP_FAMILIES:
        return 0
    count = cfg.int("num_nextn_predict_layers", default=0, minimum=0, maximum=limits.MAX_LAYERS)
    if not count:
        return 0
    h = widths["hidden"]
    sparse = moe.sparse_layers if moe else frozenset()
    last = max(sparse) if sparse and (n_layers - 1) not in sparse else n_layers - 1   # an MoE layer where any
    layer = sum(t.numel for t in _decoder_layer(cfg, tr, last, widths, moe, mlp_bias))
    return count * (layer + 2 * vocab * h + 2 * h * h + 3 * h)


def _decoder_layer(cfg: Config, tr: _Traits, i: int, widths: dict[str, int], moe: Moe | None,
                   mlp_bias: bool) -> list[Tensor]:
    """Layer ``i`` as the family's ``DecoderLayer`` builds it: attention (GQA or MLA),
    the MLP or MoE block, the family's extra tensors, and its norms (modeling_<family>.py)."""
    p, h = f"model.layers.{i}", widths["hidden"]
    if tr.attention == "mla":
        rows = _mla_attention(cfg, i, f"{p}.self_attn")
    else:
        rows = _gqa_attention(cfg, tr, i, f"{p}.self_attn")
    if moe is not None and i in moe.sparse_layers:
        rows += moe_block(f"{p}.{tr.mlp_name}", h, moe, i)
    else:
        rows += _dense_mlp(f"{p}.{tr.mlp_name}", h, widths["inter"], tr, mlp_bias, i)
    for x in tr.extras:
        if cfg.holds(x.when):
            rows.append(Tensor(f"{p}.{x.name}", x.role, (widths[x.width],), i))
    for norm in tr.layer_norms:
        name, when = norm if isinstance(norm, tuple) else (norm, None)
        if tr.norm_affine and cfg.holds(when):
            rows += norm_rows(f"{p}.{name}", h, tr.norm_bias, i)
    return rows


def _lm_head(cfg: Config, tr: _Traits, vocab: int, h: int, tied: bool) -> list[Tensor]:
    """The output projection; a tied one shares the embedding's weight but may keep its
    own bias (Phi, PhiMoE, ERNIE 4.5 MoE: ``lm_head_bias``)."""
    lm_bias = cfg.flag(tr.lm_head_bias)
    if not tied:
        return linear_rows("lm_head", "lm_head", vocab, h, lm_bias, None)
    return [Tensor("lm_head.bias", "lm_head", (vocab,))] if lm_bias else []


def _kv_cache_shape(cfg: Config, tr: _Traits, n_layers: int, nkv: int,
                    hd: int) -> tuple[int, int, int, tuple[str, ...]]:
    """(KV heads, cached width per head, cached elements per token, notes): K and V of
    every KV head, or for MLA one latent of kv_lora_rank + qk_rope_head_dim per layer
    (DeepSeek-V2 paper, sec. 2.1.2: the compressed latent and the decoupled RoPE key)."""
    if tr.attention != "mla":
        return nkv, hd, 2 * n_layers * nkv * hd, ()
    kv_width = cfg.int("kv_lora_rank") + cfg.int("qk_rope_head_dim")
    notes: tuple[str, ...] = ()
    if cfg.model_type == "deepseek_v32":
        notes = ("the DSA indexer's keys (index_head_dim per layer per token) are cached beside the latent: "
                 "in the serving memory, not in kv_bytes_per_token",)
    return 1, kv_width, n_layers * kv_width, notes


# vLLM's DeepseekV32IndexerCache (deepseek_v2.py, 0.33.0 wheel): "we store value in fp8 and
# scale in fp32 per self.quant_block_size element", quant_block_size = 128, uint8 storage:
# index_head_dim + index_head_dim // 128 * 4 bytes per token per layer, whatever the KV dtype
INDEXER_QUANT_BLOCK = 128


def _indexer_key_bytes(cfg: Config) -> int:
    if cfg.model_type != "deepseek_v32":
        return 0
    dim = cfg.int("index_head_dim", default=128)
    return dim + dim // INDEXER_QUANT_BLOCK * 4
