"""From a Hugging Face ``config.json`` to the exact list of weight tensors.

Each supported ``model_type`` is laid out as ``transformers`` (5.x) builds it, so that
``sum(t.numel for t in tensors)`` equals the parameter count of
``AutoModelForCausalLM.from_config(config)`` on the meta device (buffers excluded,
tied weights once).  ``tests/test_architecture_vs_transformers.py`` checks this
against ``transformers`` itself on real and random configs.

Most decoders are "Llama-like" and differ only in a few traits (which projections have
biases, fused QKV or gate/up, q/k norms, how many norms a layer has, LayerNorm with
bias or RMSNorm); those traits are data in ``_LLAMA_LIKE``.  The GPT-style families
used by published training runs (GPT-2/3, GPT-NeoX, OPT, Falcon, BLOOM) and MLA
(DeepSeek V2/V3) have builders of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rigsize import limits
from rigsize.errors import ModelError
from rigsize.tensors import Role, Tensor


class Config:
    """Read access to a config dict with errors that name the missing field."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.model_type = str(raw.get("model_type", ""))

    def get(self, key: str, default: Any = None) -> Any:
        value = self.raw.get(key)
        return default if value is None else value

    def first(self, *keys: str, default: Any = None) -> Any:
        for key in keys:
            if self.raw.get(key) is not None:
                return self.raw[key]
        return default

    def int(self, *keys: str, default: int | None = None, minimum: int = 1,
            maximum: float = float("inf")) -> int:
        """The first present key among ``keys`` as a positive int, else ``default``."""
        value = self.first(*keys)
        if value is None:
            if default is None:
                raise ModelError("model.missing_field", model_type=self.model_type, field=keys[0])
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise ModelError("model.bad_field", field=keys[0], value=value, why="must be a whole number")
        if not minimum <= value <= maximum:
            why = f"must be between {minimum} and {maximum:g}"
            raise ModelError("model.bad_field", field=keys[0], value=value, why=why)
        return int(value)

    def bool(self, key: str, default: bool) -> bool:
        value = self.raw.get(key)
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

@dataclass(frozen=True)
class _Traits:
    """How one family lays out a decoder layer (read from the family's modeling file)."""

    qkv_bias: str | bool | tuple[str, bool] = False   # config key, constant, or (key, default)
    o_bias: str | bool | tuple[str, bool] = False
    mlp_bias: str | bool | tuple[str, bool] = False
    fused_qkv: bool = False           # one qkv_proj (Phi-3)
    fused_gate_up: bool = False       # one gate_up_proj (Phi-3, GLM-4)
    gated_mlp: bool = True            # SwiGLU/GeGLU (gate, up, down) vs (fc1, fc2)
    qk_norm: str | None = None        # "head": RMSNorm(head_dim); "full": RMSNorm(heads*head_dim)
    layer_norms: tuple[str, ...] = ("input_layernorm", "post_attention_layernorm")
    norm_bias: bool = False           # LayerNorm with bias instead of RMSNorm
    lm_head_bias: bool = False
    tie_default: bool = False         # the config class's default for tie_word_embeddings
    head_dim_default: int | None = None   # the config class's head_dim when absent (None: hidden/heads)


_GEMMA2_NORMS = ("input_layernorm", "post_attention_layernorm",
                 "pre_feedforward_layernorm", "post_feedforward_layernorm")

_LLAMA_LIKE: dict[str, _Traits] = {
    # modeling_llama.py: attention_bias on q,k,v,o; mlp_bias on gate/up/down
    "llama": _Traits(qkv_bias="attention_bias", o_bias="attention_bias", mlp_bias="mlp_bias"),
    "granite": _Traits(qkv_bias="attention_bias", o_bias="attention_bias", mlp_bias="mlp_bias"),
    "mistral": _Traits(),
    "mixtral": _Traits(),
    # modeling_qwen2.py: bias on q,k,v only
    "qwen2": _Traits(qkv_bias=True),
    "qwen2_moe": _Traits(qkv_bias=("qkv_bias", True)),
    "qwen3": _Traits(qkv_bias="attention_bias", o_bias="attention_bias", qk_norm="head", head_dim_default=128),
    "qwen3_moe": _Traits(qkv_bias="attention_bias", o_bias="attention_bias", qk_norm="head"),
    "gemma": _Traits(qkv_bias="attention_bias", o_bias="attention_bias", tie_default=True, head_dim_default=256),
    "gemma2": _Traits(qkv_bias="attention_bias", o_bias="attention_bias",
                      layer_norms=_GEMMA2_NORMS, tie_default=True, head_dim_default=256),
    "gemma3_text": _Traits(qkv_bias="attention_bias", o_bias="attention_bias", qk_norm="head",
                           layer_norms=_GEMMA2_NORMS, tie_default=True, head_dim_default=256),
    "phi3": _Traits(fused_qkv=True, fused_gate_up=True),
    "starcoder2": _Traits(qkv_bias=("use_bias", True), o_bias=("use_bias", True), mlp_bias=("use_bias", True),
                          gated_mlp=False, norm_bias=True, tie_default=True),
    "olmo2": _Traits(qkv_bias="attention_bias", o_bias="attention_bias", qk_norm="full",
                     layer_norms=("post_attention_layernorm", "post_feedforward_layernorm")),
    "cohere": _Traits(qkv_bias="attention_bias", o_bias="attention_bias",
                      layer_norms=("input_layernorm",), tie_default=True),
    "phi": _Traits(qkv_bias=True, o_bias=True, mlp_bias=True, gated_mlp=False,
                   layer_norms=("input_layernorm",), norm_bias=True, lm_head_bias=True),
}


def _flag(cfg: Config, spec: str | bool | tuple[str, bool]) -> bool:
    if isinstance(spec, bool):
        return spec
    key, default = spec if isinstance(spec, tuple) else (spec, False)
    return cfg.bool(key, default)


def _attention_dims(cfg: Config, head_dim_default: int | None = None) -> tuple[int, int, int, int]:
    h = cfg.int("hidden_size", "n_embd", "d_model", maximum=limits.MAX_HIDDEN)
    nh = cfg.int("num_attention_heads", "n_head", maximum=limits.MAX_HIDDEN)
    nkv = cfg.int("num_key_value_heads", default=nh, maximum=nh)
    if nh % nkv:
        raise ModelError("model.bad_field", field="num_key_value_heads", value=nkv,
                         why=f"must divide num_attention_heads ({nh})")
    default_hd = head_dim_default or (h // nh if h % nh == 0 else None)
    head_dim = cfg.int("head_dim", default=default_hd) if default_hd else cfg.int("head_dim")
    return h, nh, nkv, head_dim


def _norm(name: str, width: int, bias: bool, layer: int | None) -> list[Tensor]:
    rows = [Tensor(f"{name}.weight", "norm", (width,), layer)]
    if bias:
        rows.append(Tensor(f"{name}.bias", "norm", (width,), layer))
    return rows


def _linear(name: str, role: Role, out_f: int, in_f: int, bias: bool, layer: int | None,
            count: int = 1) -> list[Tensor]:
    """A linear layer's weight (out, in) and optional bias (a 1-D row of the same role)."""
    rows = [Tensor(f"{name}.weight", role, (out_f, in_f), layer, count)]
    if bias:
        rows.append(Tensor(f"{name}.bias", role, (out_f,), layer, count))
    return rows


def _gqa_attention(cfg: Config, tr: _Traits, i: int, prefix: str) -> list[Tensor]:
    h, nh, nkv, hd = _attention_dims(cfg, tr.head_dim_default)
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
    if tr.qk_norm == "head":
        rows += _norm(f"{prefix}.q_norm", hd, False, i) + _norm(f"{prefix}.k_norm", hd, False, i)
    elif tr.qk_norm == "full":
        rows += _norm(f"{prefix}.q_norm", nh * hd, False, i)
        rows += _norm(f"{prefix}.k_norm", nkv * hd, False, i)
    return rows


def _dense_mlp(prefix: str, h: int, inter: int, tr: _Traits, bias: bool, i: int,
               roles: tuple[Role, Role, Role] = ("mlp_gate", "mlp_up", "mlp_down")) -> list[Tensor]:
    gate, up, down = roles
    if not tr.gated_mlp:
        return (_linear(f"{prefix}.fc1", up, inter, h, bias, i)
                + _linear(f"{prefix}.fc2", down, h, inter, bias, i))
    if tr.fused_gate_up:
        return (_linear(f"{prefix}.gate_up_proj", "mlp_gate_up", 2 * inter, h, bias, i)
                + _linear(f"{prefix}.down_proj", down, h, inter, bias, i))
    return (_linear(f"{prefix}.gate_proj", gate, inter, h, bias, i)
            + _linear(f"{prefix}.up_proj", up, inter, h, bias, i)
            + _linear(f"{prefix}.down_proj", down, h, inter, bias, i))


def _experts(prefix: str, h: int, inter: int, n: int, i: int) -> list[Tensor]:
    """Routed experts (transformers 5 fuses them into 3-D tensors; the count is the same)."""
    return [
        Tensor(f"{prefix}.experts.gate_proj", "expert_gate", (inter, h), i, n),
        Tensor(f"{prefix}.experts.up_proj", "expert_up", (inter, h), i, n),
        Tensor(f"{prefix}.experts.down_proj", "expert_down", (h, inter), i, n),
    ]


@dataclass(frozen=True)
class _Moe:
    num_experts: int
    top_k: int
    expert_inter: int
    sparse_layers: frozenset[int]
    shared_inter: int = 0            # total width of the shared expert(s), 0 if none
    shared_gate: bool = False        # Qwen2-MoE's sigmoid gate on the shared expert
    shared_bias: bool = False        # DeepSeek-V2 applies mlp_bias to the shared experts


def _moe_of(cfg: Config, n_layers: int) -> _Moe | None:
    mt = cfg.model_type
    if mt == "mixtral":
        e = cfg.int("num_local_experts", maximum=limits.MAX_EXPERTS)
        return _Moe(e, cfg.int("num_experts_per_tok", maximum=e),
                    cfg.int("intermediate_size"), frozenset(range(n_layers)))
    if mt in ("qwen2_moe", "qwen3_moe"):
        # configs re-saved by transformers 5 spell num_experts as num_local_experts
        e = cfg.int("num_experts", "num_local_experts", default=0, minimum=0, maximum=limits.MAX_EXPERTS)
        if e == 0:
            return None
        step = cfg.int("decoder_sparse_step", default=1)
        only_dense = set(cfg.get("mlp_only_layers", []))
        sparse = frozenset(i for i in range(n_layers) if i not in only_dense and (i + 1) % step == 0)
        shared = cfg.int("shared_expert_intermediate_size", default=0, minimum=0) if mt == "qwen2_moe" else 0
        return _Moe(e, cfg.int("num_experts_per_tok", maximum=e), cfg.int("moe_intermediate_size"),
                    sparse, shared, shared_gate=shared > 0)
    if mt in ("deepseek_v2", "deepseek_v3"):
        e = cfg.int("n_routed_experts", default=0, minimum=0, maximum=limits.MAX_EXPERTS)
        if e == 0:
            return None
        # transformers builds MoE on every layer from first_k_dense_replace on (it ignores
        # moe_layer_freq, which is 1 in every published DeepSeek config)
        first_dense = cfg.int("first_k_dense_replace", default=0, minimum=0)
        sparse = frozenset(range(first_dense, n_layers))
        inter = cfg.int("moe_intermediate_size")
        shared = inter * cfg.int("n_shared_experts", default=0, minimum=0)
        bias = mt == "deepseek_v2" and cfg.bool("mlp_bias", False)
        return _Moe(e, cfg.int("num_experts_per_tok", maximum=e), inter, sparse, shared, shared_bias=bias)
    return None


def _moe_block(prefix: str, h: int, moe: _Moe, i: int) -> list[Tensor]:
    rows = [Tensor(f"{prefix}.gate.weight", "router", (moe.num_experts, h), i)]
    rows += _experts(prefix, h, moe.expert_inter, moe.num_experts, i)
    if moe.shared_inter or moe.shared_bias:
        name = "shared_expert" if moe.shared_gate else "shared_experts"
        rows += _dense_mlp(f"{prefix}.{name}", h, moe.shared_inter, _Traits(), moe.shared_bias, i,
                           roles=("shared_gate", "shared_up", "shared_down"))
    if moe.shared_gate:
        rows.append(Tensor(f"{prefix}.shared_expert_gate.weight", "other", (1, h), i))
    return rows


def _mla_attention(cfg: Config, i: int, prefix: str) -> list[Tensor]:
    """DeepSeek V2/V3 multi-head latent attention (modeling_deepseek_v3.py)."""
    h = cfg.int("hidden_size")
    nh = cfg.int("num_attention_heads")
    bias = cfg.bool("attention_bias", False)
    nope, rope = cfg.int("qk_nope_head_dim"), cfg.int("qk_rope_head_dim")
    v_dim, kv_rank = cfg.int("v_head_dim"), cfg.int("kv_lora_rank")
    q_rank = cfg.get("q_lora_rank")
    rows: list[Tensor] = []
    if q_rank is None:
        rows += _linear(f"{prefix}.q_proj", "attn_q", nh * (nope + rope), h, False, i)
    else:
        q_rank = cfg.int("q_lora_rank")
        rows += _linear(f"{prefix}.q_a_proj", "attn_q_a", q_rank, h, bias, i)
        rows += _norm(f"{prefix}.q_a_layernorm", q_rank, False, i)
        rows += _linear(f"{prefix}.q_b_proj", "attn_q_b", nh * (nope + rope), q_rank, False, i)
    rows += _linear(f"{prefix}.kv_a_proj_with_mqa", "attn_kv_a", kv_rank + rope, h, bias, i)
    rows += _norm(f"{prefix}.kv_a_layernorm", kv_rank, False, i)
    rows += _linear(f"{prefix}.kv_b_proj", "attn_kv_b", nh * (nope + v_dim), kv_rank, False, i)
    rows += _linear(f"{prefix}.o_proj", "attn_o", h, nh * v_dim, bias, i)
    return rows


def _layer_windows(cfg: Config, n_layers: int) -> tuple[int | None, ...]:
    """Sliding-window size per layer as the config declares it (None = full attention)."""
    window = cfg.get("sliding_window")
    layer_types = cfg.get("layer_types")
    if isinstance(layer_types, list) and len(layer_types) == n_layers:
        return tuple(window if t == "sliding_attention" else None for t in layer_types)
    if not window or cfg.get("use_sliding_window") is False:
        return (None,) * n_layers
    if cfg.model_type == "gemma2":   # even layers slide (modeling_gemma2.py: layer_idx % 2 == 0)
        return tuple(window if i % 2 == 0 else None for i in range(n_layers))
    if cfg.model_type == "gemma3_text":
        pattern = cfg.int("sliding_window_pattern", default=6)
        return tuple(None if (i + 1) % pattern == 0 else window for i in range(n_layers))
    if cfg.model_type in ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe"):
        first_full = cfg.int("max_window_layers", default=n_layers, minimum=0)
        return tuple(window if i >= first_full else None for i in range(n_layers))
    return (window,) * n_layers


def _llama_like(cfg: Config) -> Architecture:
    tr = _LLAMA_LIKE[cfg.model_type]
    h, nh, nkv, hd = _attention_dims(cfg, tr.head_dim_default)
    n_layers = cfg.int("num_hidden_layers", maximum=limits.MAX_LAYERS)
    vocab = cfg.int("vocab_size", maximum=limits.MAX_VOCAB)
    mla = cfg.model_type in ("deepseek_v2", "deepseek_v3")
    moe = _moe_of(cfg, n_layers)
    all_sparse = moe is not None and len(moe.sparse_layers) == n_layers
    inter = 0 if all_sparse and cfg.get("intermediate_size") is None else cfg.int("intermediate_size")
    mlp_bias = _flag(cfg, tr.mlp_bias)
    rows = [Tensor("model.embed_tokens.weight", "embed", (vocab, h))]
    for i in range(n_layers):
        p = f"model.layers.{i}"
        rows += _mla_attention(cfg, i, f"{p}.self_attn") if mla else _gqa_attention(cfg, tr, i, f"{p}.self_attn")
        if moe is not None and i in moe.sparse_layers:
            rows += _moe_block(f"{p}.mlp", h, moe, i)
        else:
            rows += _dense_mlp(f"{p}.mlp", h, inter, tr, mlp_bias, i)
        for norm in tr.layer_norms:
            rows += _norm(f"{p}.{norm}", h, tr.norm_bias, i)
    rows += _norm("model.norm" if cfg.model_type != "phi" else "model.final_layernorm", h, tr.norm_bias, None)
    tied = cfg.bool("tie_word_embeddings", tr.tie_default)
    if not tied:
        rows += _linear("lm_head", "lm_head", vocab, h, tr.lm_head_bias, None)
    elif tr.lm_head_bias:
        rows.append(Tensor("lm_head.bias", "lm_head", (vocab,)))
    if mla:
        kv_width = cfg.int("kv_lora_rank") + cfg.int("qk_rope_head_dim")
        kv_heads, kv_per_token = 1, n_layers * kv_width
    else:
        kv_width, kv_heads, kv_per_token = hd, nkv, 2 * n_layers * nkv * hd
    return Architecture(
        model_type=cfg.model_type, hidden_size=h, num_hidden_layers=n_layers,
        num_attention_heads=nh, num_key_value_heads=kv_heads, head_dim=kv_width,
        vocab_size=vocab, intermediate_size=inter,
        max_position_embeddings=cfg.get("max_position_embeddings"),
        tie_word_embeddings=tied, tensors=tuple(rows), kv_elements_per_token=kv_per_token,
        attention="mla" if mla else "standard",
        num_experts=moe.num_experts if moe else 0, experts_per_token=moe.top_k if moe else 0,
        moe_layers=tuple(sorted(moe.sparse_layers)) if moe else (),
        layer_windows=_layer_windows(cfg, n_layers),
    )


_LLAMA_LIKE["deepseek_v2"] = _Traits(mlp_bias="mlp_bias")
_LLAMA_LIKE["deepseek_v3"] = _Traits()


# ----------------------------------------------------------------------------------
# GPT-style families (published training runs use these)
# ----------------------------------------------------------------------------------

def _gpt_family(cfg: Config) -> Architecture:
    """GPT-2/GPT-3 (gpt2), GPT-NeoX, OPT, BLOOM and Falcon: MHA (or MQA/GQA for Falcon)
    with LayerNorm and a non-gated 2-layer MLP.  Names follow each modeling file."""
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
    if mt == "gpt2":
        inter = cfg.int("n_inner", default=4 * h)
        rows.append(Tensor("wpe.weight", "pos_embed", (cfg.int("n_positions", "max_position_embeddings"), h)))
        norms = ("ln_1", "ln_2")
        max_pos = cfg.int("n_positions", "max_position_embeddings")
    elif mt == "gpt_neox":
        inter = cfg.int("intermediate_size")
        bias, mlp_bias = cfg.bool("attention_bias", True), True   # modeling_gpt_neox.py: MLP always biased
        norms, tie_default = ("input_layernorm", "post_attention_layernorm"), False
        max_pos = cfg.get("max_position_embeddings")
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
        max_pos = cfg.get("max_position_embeddings")
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
    **{mt: _gpt_family for mt in ("gpt2", "gpt_neox", "opt", "bloom", "falcon")},
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
}


def build_architecture(raw: Mapping[str, Any]) -> Architecture:
    """Lay out the model a Hugging Face config describes.

    Multimodal configs (Gemma 3, Llama 4...) are read through their ``text_config``.
    """
    if not isinstance(raw.get("model_type"), str):
        raise ModelError("model.no_model_type", path="config")
    if raw["model_type"] not in _BUILDERS and isinstance(raw.get("text_config"), Mapping):
        text = dict(raw["text_config"])
        if raw["model_type"] == "gemma3" and text.get("model_type") in (None, "gemma3"):
            text["model_type"] = "gemma3_text"
        text.setdefault("tie_word_embeddings", raw.get("tie_word_embeddings"))
        raw = text
    defaults = _CLASS_DEFAULTS.get(str(raw.get("model_type")))
    if defaults:
        raw = {**defaults, **{k: v for k, v in raw.items() if v is not None}}
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
