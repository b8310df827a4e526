"""Hybrid decoders: attention layers among recurrent (Mamba) layers, as ``transformers``
(5.x) builds them.

Only the attention layers keep a KV cache (``kv_elements_per_token`` counts them alone);
every other layer carries a fixed recurrent state per sequence
(``Architecture.conv_state_elements`` / ``ssm_state_elements``, sized by
``rigsize.model.recurrent.state_bytes_per_sequence``).  ``layer_types`` uses the values
the config classes' own ``layer_types`` property returns (``full_attention`` /
``linear_attention``).

Jamba: Lieber et al. 2024, "Jamba: A Hybrid Transformer-Mamba Language Model"
(arXiv:2403.19887) sec. 2 / Figure 1: blocks of one attention layer per
``attn_layer_period`` layers, MoE in place of the MLP every ``expert_layer_period``
layers, Mamba 1 mixers elsewhere; the tensors follow modeling_jamba.py.

Qwen3-Next: Qwen team 2025, "Qwen3-Next" (Qwen/Qwen3-Next-80B-A3B-Instruct model card): Gated
DeltaNet linear attention (Yang et al. 2024, "Gated Delta Networks", arXiv:2412.06464) in three of
every four layers, gated full attention in the fourth, a sparse MoE with a gated shared expert
in every layer; the tensors follow modeling_qwen3_next.py.

Bamba (IBM, 2025, "Bamba-9B", ibm-ai-platform/Bamba-9B model card) and Granite 4.0 hybrids (IBM
2025, "Granite 4.0" model cards): Mamba 2 layers with attention at listed indices; Bamba has a
SwiGLU MLP per layer, Granite 4 a shared MLP and, unless num_local_experts is 0, an MoE; the
tensors follow modeling_bamba.py and modeling_granitemoehybrid.py.

Falcon-H1 (TII 2025, "Falcon-H1: A Family of Hybrid-Head Language Models", arXiv:2507.22448
sec. 2): attention and a Mamba 2 mixer side by side in every layer (FalconH1Config.layers_block_type
"hybrid"), then a SwiGLU MLP; the tensors follow modeling_falcon_h1.py.

MiniMax-01 (MiniMax 2025, "MiniMax-01: Scaling Foundation Models with Lightning Attention",
arXiv:2501.08313 sec. 2): lightning (linear) attention layers with a softmax-attention layer
among them, an MoE in every layer; the tensors follow modeling_minimax.py.

Nemotron-H: NVIDIA 2025, "Nemotron-H: A Family of Accurate and Efficient Hybrid
Mamba-Transformer Models" (arXiv:2504.03624) sec. 2.1: each block is one of Mamba 2,
self-attention or FFN (and, in Nemotron 3, MoE), as ``hybrid_override_pattern`` spells
it; the tensors follow modeling_nemotron_h.py.
"""

from __future__ import annotations

from rigsize.errors import ModelError
from rigsize.model import moe as moe_mod
from rigsize.model.architecture import Architecture
from rigsize.model.hf_config import Config
from rigsize.model.recurrent import Mamba2Dims, jamba_mamba_dims, jamba_mamba_mixer, mamba2_mixer
from rigsize.model.tensors import Tensor, linear_rows, norm_rows
from rigsize.planning import limits

MODEL_TYPES: tuple[str, ...] = ("jamba", "nemotron_h", "qwen3_next", "bamba", "granitemoehybrid", "minimax",
                                "falcon_h1")


def _gqa(prefix: str, h: int, nh: int, nkv: int, hd: int, i: int, bias: bool = False) -> list[Tensor]:
    """q/k/v/o projections (``JambaAttention``; biased where the family's attention_bias says)."""
    return (linear_rows(f"{prefix}.q_proj", "attn_q", nh * hd, h, bias, i)
            + linear_rows(f"{prefix}.k_proj", "attn_k", nkv * hd, h, bias, i)
            + linear_rows(f"{prefix}.v_proj", "attn_v", nkv * hd, h, bias, i)
            + linear_rows(f"{prefix}.o_proj", "attn_o", h, nh * hd, bias, i))


def _gated_mlp(prefix: str, h: int, inter: int, i: int, bias: bool = False) -> list[Tensor]:
    return (linear_rows(f"{prefix}.gate_proj", "mlp_gate", inter, h, bias, i)
            + linear_rows(f"{prefix}.up_proj", "mlp_up", inter, h, bias, i)
            + linear_rows(f"{prefix}.down_proj", "mlp_down", h, inter, bias, i))


def _listed_layer_types(cfg: Config, n: int) -> tuple[str, ...] | None:
    """A config's own layer_types (full_attention / linear_attention per layer), checked;
    None when it lists none."""
    listed = cfg.get("layer_types")
    if not (isinstance(listed, list) and listed):
        return None
    if len(listed) != n or set(listed) - {"full_attention", "linear_attention"}:
        raise ModelError("model.bad_field", field="layer_types", value=len(listed),
                         why=f"must list full_attention or linear_attention for each of the {n} layers")
    return tuple(listed)


def _attn_type_list(cfg: Config, n: int) -> tuple[str, ...] | None:
    """MiniMax's own configs (MiniMax-Text-01, MiniMax-M1: custom code, no layer_types) name each
    layer's attention in attn_type_list, 0 lightning (linear) and 1 softmax (full): vLLM reads it
    before layer_types ("The HF format uses layer_types instead of attn_type_list where
    linear_attention is 0 and full_attention is 1", model_executor/models/minimax_text_01.py in the
    0.22.0 wheel); transformers' MiniMaxConfig reads only layer_types.  None when it lists none."""
    listed = cfg.get("attn_type_list")
    if not (isinstance(listed, list) and listed):
        return None
    if len(listed) != n or any(v not in (0, 1) for v in listed):
        raise ModelError("model.bad_field", field="attn_type_list", value=len(listed),
                         why=f"must give 0 (lightning) or 1 (softmax) for each of the {n} layers")
    return tuple("full_attention" if v == 1 else "linear_attention" for v in listed)


def _jamba_layer_types(cfg: Config, n: int) -> tuple[str, ...]:
    """JambaConfig.layers_block_type: attention where i % attn_layer_period == offset."""
    period = cfg.int("attn_layer_period", default=8)
    offset = cfg.int("attn_layer_offset", default=4, minimum=0)
    if offset >= period:
        raise ModelError("model.bad_field", field="attn_layer_offset", value=offset,
                         why=f"must be smaller than attn_layer_period ({period})")
    return tuple("full_attention" if i % period == offset else "linear_attention" for i in range(n))


def jamba(cfg: Config) -> Architecture:
    """JambaForCausalLM: embed_tokens; per layer input_layernorm, attention or Mamba 1
    mixer, pre_ff_layernorm, and a SwiGLU MLP or a sparse MoE block (router + experts of
    intermediate_size); final_layernorm; lm_head (untied by default)."""
    h = cfg.int("hidden_size", default=4096, maximum=limits.MAX_HIDDEN)
    n = cfg.int("num_hidden_layers", default=32, maximum=limits.MAX_LAYERS)
    vocab = cfg.int("vocab_size", default=65536, maximum=limits.MAX_VOCAB)
    inter = cfg.int("intermediate_size", default=14336)
    nh = cfg.int("num_attention_heads", default=32)
    # JambaConfig: 8 when the key is absent, num_attention_heads when it is null
    nkv = cfg.int("num_key_value_heads", default=8 if "num_key_value_heads" not in cfg.raw else nh)
    if nh % nkv:
        raise ModelError("model.bad_field", field="num_key_value_heads", value=nkv,
                         why=f"must divide num_attention_heads ({nh})")
    hd = cfg.int("head_dim", default=h // nh)       # JambaAttention: getattr(config, "head_dim", h // heads)
    kinds = _jamba_layer_types(cfg, n)
    d = jamba_mamba_dims(cfg, h)
    # layers_num_experts: num_experts on the expert period, else 1 (a dense MLP); a model
    # with one expert has no MoE at all
    moe = moe_mod.moe_of(cfg, moe_mod.MOE["jamba"], n) if cfg.number(moe_mod.MOE["jamba"].experts) > 1 else None
    sparse = moe.sparse_layers if moe else frozenset()
    rows = [Tensor("model.embed_tokens.weight", "embed", (vocab, h))]
    for i, kind in enumerate(kinds):
        p = f"model.layers.{i}"
        rows += norm_rows(f"{p}.input_layernorm", h, False, i)
        rows += _gqa(f"{p}.self_attn", h, nh, nkv, hd, i) if kind == "full_attention" else \
            jamba_mamba_mixer(f"{p}.mamba", d, i)
        rows += norm_rows(f"{p}.pre_ff_layernorm", h, False, i)
        rows += moe_mod.moe_block(f"{p}.feed_forward", h, moe, i) if i in sparse else \
            _gated_mlp(f"{p}.feed_forward", h, inter, i)
    rows += norm_rows("model.final_layernorm", h, False, None)
    tied = cfg.bool("tie_word_embeddings", False)
    if not tied:
        rows += linear_rows("lm_head", "lm_head", vocab, h, False, None)
    n_attn = kinds.count("full_attention")
    n_mamba = n - n_attn
    return Architecture(
        model_type=cfg.model_type, hidden_size=h, num_hidden_layers=n, num_attention_heads=nh,
        num_key_value_heads=nkv, head_dim=hd, vocab_size=vocab,
        intermediate_size=inter if len(sparse) < n else 0,
        max_position_embeddings=cfg.max_positions("max_position_embeddings"), tie_word_embeddings=tied,
        tensors=tuple(rows), kv_elements_per_token=2 * n_attn * nkv * hd,
        num_experts=moe.num_experts if moe else 0, experts_per_token=moe.top_k if moe else 0,
        moe_layers=tuple(sorted(sparse)), layer_windows=(None,) * n, layer_types=kinds,
        conv_state_elements=n_mamba * d.conv_state_elements, ssm_state_elements=n_mamba * d.ssm_state_elements,
        conv_kernel=d.conv_kernel,
    )


# configuration_nemotron_h.py: _pattern_to_list and remap_legacy_layer_types
_NEMOTRON_PATTERN = {"M": "linear_attention", "E": "moe", "*": "full_attention", "-": "mlp"}
_NEMOTRON_LEGACY = {"mamba": "linear_attention", "attention": "full_attention"}


def _nemotron_h_layer_types(cfg: Config) -> tuple[str, ...]:
    """NemotronHConfig.layers_block_type (its length is the layer count; num_hidden_layers
    is ignored), else hybrid_override_pattern, else the class default."""
    listed = cfg.get("layers_block_type", cfg.get("layer_types"))
    if isinstance(listed, list) and listed:
        kinds = tuple(_NEMOTRON_LEGACY.get(k, k) for k in listed)
    elif isinstance(cfg.get("hybrid_override_pattern"), str):
        pattern = cfg.get("hybrid_override_pattern")
        bad = sorted(set(pattern) - set(_NEMOTRON_PATTERN))
        if bad:
            raise ModelError("model.bad_field", field="hybrid_override_pattern", value=pattern,
                             why=f"letters {bad} are none of M (Mamba), * (attention), - (MLP), E (MoE)")
        kinds = tuple(_NEMOTRON_PATTERN[c] for c in pattern)
    else:
        kinds = ("linear_attention", "moe", "full_attention", "mlp")
    unknown = sorted(set(kinds) - set(_NEMOTRON_PATTERN.values()))
    if unknown or len(kinds) > limits.MAX_LAYERS:
        raise ModelError("model.bad_field", field="layers_block_type", value=unknown or len(kinds),
                         why="must list full_attention, linear_attention, moe or mlp per layer")
    return kinds


def _up_down_mlp(prefix: str, h: int, inter: int, bias: bool, i: int, shared: bool = False) -> list[Tensor]:
    """NemotronHMLP: up_proj and down_proj only (squared-ReLU, no gate)."""
    up, down = ("shared_up", "shared_down") if shared else ("mlp_up", "mlp_down")
    return (linear_rows(f"{prefix}.up_proj", up, inter, h, bias, i)
            + linear_rows(f"{prefix}.down_proj", down, h, inter, bias, i))


def _nemotron_h_moe(prefix: str, cfg: Config, h: int, e: int, i: int) -> list[Tensor]:
    """NemotronHMoE: router gate (experts x hidden; its e_score_correction_bias is a
    buffer), up/down experts (on moe_latent_size when set, with fc1/fc2 latent
    projections), one shared up/down MLP of moe_shared_expert_intermediate_size."""
    inter = cfg.int("moe_intermediate_size", default=7688)
    shared = cfg.int("moe_shared_expert_intermediate_size", default=7688)
    bias = cfg.bool("mlp_bias", False)
    latent = cfg.get("moe_latent_size")
    width = h if latent is None else cfg.int("moe_latent_size")
    rows = [Tensor(f"{prefix}.gate.weight", "router", (e, h), i),
            Tensor(f"{prefix}.experts.up_proj", "expert_up", (inter, width), i, e),
            Tensor(f"{prefix}.experts.down_proj", "expert_down", (width, inter), i, e)]
    rows += _up_down_mlp(f"{prefix}.shared_experts", h, shared, bias, i, shared=True)
    if latent is not None:
        rows += (linear_rows(f"{prefix}.fc1_latent_proj", "other", width, h, bias, i)
                 + linear_rows(f"{prefix}.fc2_latent_proj", "other", h, width, bias, i))
    return rows


def nemotron_h(cfg: Config) -> Architecture:
    """NemotronHForCausalLM: embeddings; per block an RMSNorm and one mixer (Mamba 2,
    attention, MLP or MoE, as layers_block_type says); norm_f; lm_head.  The MTP layers
    (num_nextn_predict_layers) are not built by transformers and are not counted."""
    h = cfg.int("hidden_size", default=4096, maximum=limits.MAX_HIDDEN)
    vocab = cfg.int("vocab_size", default=131072, maximum=limits.MAX_VOCAB)
    kinds = _nemotron_h_layer_types(cfg)
    n = len(kinds)
    nh = cfg.int("num_attention_heads", default=32)
    nkv = cfg.int("num_key_value_heads", default=8 if "num_key_value_heads" not in cfg.raw else nh)
    hd = cfg.int("head_dim", default=128)        # a class field: hidden / heads is never used
    heads, head_dim = cfg.int("mamba_num_heads", default=128), cfg.int("mamba_head_dim", default=64)
    d = Mamba2Dims(hidden=h, intermediate=heads * head_dim, num_heads=heads, head_dim=head_dim,
                   state_size=cfg.int("ssm_state_size", default=128),
                   n_groups=cfg.int("n_groups", "mamba_n_groups", default=8),
                   conv_kernel=cfg.int("conv_kernel", "mamba_d_conv", default=4),
                   use_bias=cfg.bool("use_bias", False),
                   use_conv_bias=cfg.bool("use_conv_bias", cfg.bool("mamba_conv_bias", True)))
    if d.intermediate % d.n_groups:
        raise ModelError("model.bad_field", field="n_groups", value=d.n_groups,
                         why=f"must divide mamba_num_heads * mamba_head_dim ({d.intermediate})")
    e = cfg.int("n_routed_experts", "num_local_experts", default=8, maximum=limits.MAX_EXPERTS)
    inter = cfg.int("intermediate_size", default=21504)
    rows = [Tensor("backbone.embeddings.weight", "embed", (vocab, h))]
    for i, kind in enumerate(kinds):
        p = f"backbone.layers.{i}"
        rows += norm_rows(f"{p}.norm", h, False, i)
        if kind == "linear_attention":
            rows += mamba2_mixer(f"{p}.mixer", d, i)
        elif kind == "full_attention":
            rows += _gqa(f"{p}.mixer", h, nh, nkv, hd, i)
        elif kind == "mlp":
            rows += _up_down_mlp(f"{p}.mixer", h, inter, cfg.bool("mlp_bias", False), i)
        else:
            rows += _nemotron_h_moe(f"{p}.mixer", cfg, h, e, i)
    rows += norm_rows("backbone.norm_f", h, False, None)
    # NemotronHForCausalLM._tied_weights_keys is empty: lm_head is its own weight even
    # when the config says tie_word_embeddings
    tied = False
    rows += linear_rows("lm_head", "lm_head", vocab, h, False, None)
    moe_layers = tuple(i for i, k in enumerate(kinds) if k == "moe")
    n_mamba = kinds.count("linear_attention")
    return Architecture(
        model_type=cfg.model_type, hidden_size=h, num_hidden_layers=n, num_attention_heads=nh,
        num_key_value_heads=nkv, head_dim=hd, vocab_size=vocab, intermediate_size=inter if "mlp" in kinds else 0,
        max_position_embeddings=cfg.max_positions("max_position_embeddings"), tie_word_embeddings=tied,
        tensors=tuple(rows), kv_elements_per_token=2 * kinds.count("full_attention") * nkv * hd,
        num_experts=e if moe_layers else 0,
        experts_per_token=cfg.int("num_experts_per_tok", default=2, maximum=e) if moe_layers else 0,
        moe_layers=moe_layers, layer_windows=(None,) * n, layer_types=kinds,
        conv_state_elements=n_mamba * d.conv_state_elements, ssm_state_elements=n_mamba * d.ssm_state_elements,
        conv_kernel=d.conv_kernel, serving_ssm_bits=_ssm_cache_bits(cfg),
    )


# vLLM's NemotronHForCausalLMConfig.update_mamba_ssm_cache_dtype: when the engine's is "auto",
# getattr(hf_config, "mamba_ssm_cache_dtype", DEFAULT_MAMBA_SSM_CACHE_DTYPE) (model_executor/
# models/config.py, 0.33.0 wheel); the Nemotron 3 Hub configs say "float32"
_SSM_CACHE_BITS = {"float32": 32, "bfloat16": 16, "float16": 16}


def _ssm_cache_bits(cfg: Config) -> int:
    """Nemotron-H's SSM cache width under vLLM: the config's mamba_ssm_cache_dtype, else the
    hook's DEFAULT_MAMBA_SSM_CACHE_DTYPE = "float32"."""
    return _SSM_CACHE_BITS.get(str(cfg.get("mamba_ssm_cache_dtype", "float32")), 32)


def _qwen3_next_layer_types(cfg: Config, n: int) -> tuple[str, ...]:
    """Qwen3NextConfig.layer_types, else full attention where (i + 1) % full_attention_interval
    == 0 (configuration_qwen3_next.py; interval 4 by default)."""
    listed = _listed_layer_types(cfg, n)
    if listed is not None:
        return listed
    interval = cfg.int("full_attention_interval", default=4)
    return tuple("full_attention" if (i + 1) % interval == 0 else "linear_attention" for i in range(n))


def _gated_delta_net(prefix: str, cfg: Config, h: int, i: int) -> tuple[list[Tensor], int, int, int]:
    """Qwen3NextGatedDeltaNet: in_proj_qkvz (q, k of key_dim, v, z of value_dim), in_proj_ba
    (beta and alpha per value head), a depthwise conv1d over q, k, v (no bias), dt_bias and
    A_log per value head, a gated RMSNorm of head_v_dim, out_proj.  Returns the tensors, the
    conv channels, the conv kernel and the recurrent state's elements
    (num_v_heads x head_k_dim x head_v_dim)."""
    nk, nv = cfg.int("linear_num_key_heads", default=16), cfg.int("linear_num_value_heads", default=32)
    dk, dv = cfg.int("linear_key_head_dim", default=128), cfg.int("linear_value_head_dim", default=128)
    kernel = cfg.int("linear_conv_kernel_dim", default=4)
    if nv % nk:
        raise ModelError("model.bad_field", field="linear_num_value_heads", value=nv,
                         why=f"must be a multiple of linear_num_key_heads ({nk})")
    key_dim, value_dim = nk * dk, nv * dv
    conv_dim = 2 * key_dim + value_dim
    rows = (linear_rows(f"{prefix}.in_proj_qkvz", "ssm_in", 2 * key_dim + 2 * value_dim, h, False, i)
            + linear_rows(f"{prefix}.in_proj_ba", "ssm_in", 2 * nv, h, False, i))
    rows.append(Tensor(f"{prefix}.conv1d.weight", "ssm_conv", (conv_dim, 1, kernel), i))
    rows += [Tensor(f"{prefix}.{n}", "other", (nv,), i) for n in ("dt_bias", "A_log")]
    rows += norm_rows(f"{prefix}.norm", dv, False, i)
    rows += linear_rows(f"{prefix}.out_proj", "ssm_out", h, value_dim, False, i)
    return rows, conv_dim, kernel, nv * dk * dv


def qwen3_next(cfg: Config) -> Architecture:
    """Qwen3NextForCausalLM: embed_tokens; per layer input_layernorm, a Gated DeltaNet or a
    gated attention (q_proj twice as wide: query and its output gate; q_norm and k_norm per
    head), post_attention_layernorm, a sparse MoE (router, experts, a shared expert with a
    sigmoid gate) or, in mlp_only_layers, a SwiGLU MLP; norm; lm_head (untied by default).
    The checkpoint's MTP layers (mtp.*) are not built by transformers and are not counted."""
    h = cfg.int("hidden_size", default=2048, maximum=limits.MAX_HIDDEN)
    n = cfg.int("num_hidden_layers", default=48, maximum=limits.MAX_LAYERS)
    vocab = cfg.int("vocab_size", default=151936, maximum=limits.MAX_VOCAB)
    nh = cfg.int("num_attention_heads", default=16)
    nkv = cfg.int("num_key_value_heads", default=2)
    if nh % nkv:
        raise ModelError("model.bad_field", field="num_key_value_heads", value=nkv,
                         why=f"must divide num_attention_heads ({nh})")
    hd = cfg.int("head_dim", default=256)
    inter = cfg.int("intermediate_size", default=5632)
    kinds = _qwen3_next_layer_types(cfg, n)
    moe = moe_mod.moe_of(cfg, moe_mod.MOE["qwen3_next"], n)
    sparse = moe.sparse_layers if moe else frozenset()
    bias = cfg.bool("attention_bias", False)
    rows = [Tensor("model.embed_tokens.weight", "embed", (vocab, h))]
    conv_dim = kernel = state = 0
    for i, kind in enumerate(kinds):
        p = f"model.layers.{i}"
        rows += norm_rows(f"{p}.input_layernorm", h, False, i)
        if kind == "linear_attention":
            mixer, conv_dim, kernel, state = _gated_delta_net(f"{p}.linear_attn", cfg, h, i)
            rows += mixer
        else:
            a = f"{p}.self_attn"
            rows += (linear_rows(f"{a}.q_proj", "attn_q", 2 * nh * hd, h, bias, i)
                     + linear_rows(f"{a}.k_proj", "attn_k", nkv * hd, h, bias, i)
                     + linear_rows(f"{a}.v_proj", "attn_v", nkv * hd, h, bias, i)
                     + linear_rows(f"{a}.o_proj", "attn_o", h, nh * hd, bias, i)
                     + norm_rows(f"{a}.q_norm", hd, False, i) + norm_rows(f"{a}.k_norm", hd, False, i))
        rows += norm_rows(f"{p}.post_attention_layernorm", h, False, i)
        rows += moe_mod.moe_block(f"{p}.mlp", h, moe, i) if i in sparse else _gated_mlp(f"{p}.mlp", h, inter, i)
    rows += norm_rows("model.norm", h, False, None)
    tied = cfg.bool("tie_word_embeddings", False)
    if not tied:
        rows += linear_rows("lm_head", "lm_head", vocab, h, False, None)
    n_linear = kinds.count("linear_attention")
    return Architecture(
        model_type=cfg.model_type, hidden_size=h, num_hidden_layers=n, num_attention_heads=nh,
        num_key_value_heads=nkv, head_dim=hd, vocab_size=vocab, intermediate_size=inter if len(sparse) < n else 0,
        max_position_embeddings=cfg.max_positions("max_position_embeddings"), tie_word_embeddings=tied,
        tensors=tuple(rows), kv_elements_per_token=2 * kinds.count("full_attention") * nkv * hd,
        num_experts=moe.num_experts if moe else 0, experts_per_token=moe.top_k if moe else 0,
        moe_layers=tuple(sorted(sparse)), layer_windows=(None,) * n, layer_types=kinds,
        conv_state_elements=n_linear * conv_dim * kernel, ssm_state_elements=n_linear * state,
        conv_kernel=kernel, params_mtp=_qwen3_next_mtp(cfg, h, nh, nkv, hd, bias, moe, inter),
    )


def _qwen3_next_mtp(cfg: Config, h: int, nh: int, nkv: int, hd: int, bias: bool, moe: moe_mod.Moe | None,
                    inter: int) -> int:
    """The checkpoint's mtp.* tensors (vLLM Qwen3NextMultiTokenPredictor, qwen3_next_mtp.py in
    the 0.33.0 wheel): fc (2h -> h), pre_fc_norm_embedding, pre_fc_norm_hidden, norm and
    num_nextn_predict_layers full-attention decoder layers; the embedding and lm_head are the
    main model's.  transformers builds none of them."""
    # Qwen3-Next configs spell it mtp_num_hidden_layers; vLLM reads num_nextn_predict_layers (default 1)
    key = "mtp_num_hidden_layers" if "mtp_num_hidden_layers" in cfg.raw else "num_nextn_predict_layers"
    count = cfg.int(key, default=0, minimum=0, maximum=limits.MAX_LAYERS)
    if not count:
        return 0
    attn = 2 * nh * hd * h + 2 * nkv * hd * h + nh * hd * h + 2 * hd + (3 * nh * hd + 2 * nkv * hd if bias else 0)
    mlp = sum(t.numel for t in moe_mod.moe_block("mtp", h, moe, 0)) if moe else 3 * h * inter
    return 2 * h * h + 3 * h + count * (attn + mlp + 2 * h)


def _ibm_mamba_dims(cfg: Config, h: int, inner: int | None = None) -> Mamba2Dims:
    """BambaConfig / GraniteMoeHybridConfig / FalconH1Config Mamba fields: d_inner =
    mamba_expand * hidden unless given, mamba_d_head "auto" = d_inner / mamba_n_heads (the
    configs' __post_init__)."""
    inner = cfg.int("mamba_expand", default=2) * h if inner is None else inner
    heads = cfg.int("mamba_n_heads", default=128)
    auto = cfg.get("mamba_d_head", "auto") in ("auto", None)
    head = inner // heads if auto else cfg.int("mamba_d_head")
    if heads * head != inner:
        raise ModelError("model.bad_field", field="mamba_d_head", value=head,
                         why=f"mamba_n_heads x mamba_d_head must equal the Mamba width ({inner})")
    d = Mamba2Dims(hidden=h, intermediate=inner, num_heads=heads, head_dim=head,
                   state_size=cfg.int("mamba_d_state", default=256), n_groups=cfg.int("mamba_n_groups", default=1),
                   conv_kernel=cfg.int("mamba_d_conv", default=4), use_bias=cfg.bool("mamba_proj_bias", False),
                   use_conv_bias=cfg.bool("mamba_conv_bias", True))
    if d.intermediate % d.n_groups:
        raise ModelError("model.bad_field", field="mamba_n_groups", value=d.n_groups,
                         why=f"must divide the mixer width ({d.intermediate})")
    return d


def _kv_heads(cfg: Config, nh: int, default_kv: int | None) -> int:
    """num_key_value_heads: the config class's default when the key is absent, the query
    heads when it is null (the IBM, Falcon-H1 and MiniMax configs' __post_init__)."""
    if "num_key_value_heads" not in cfg.raw:
        return nh if default_kv is None else default_kv
    return nh if cfg.raw["num_key_value_heads"] is None else cfg.int("num_key_value_heads")


def _heads(cfg: Config, h: int, default_kv: int | None, *, head_dim_from_hidden: bool = True) -> tuple[int, int]:
    """(query heads, KV heads), KV heads dividing the query heads and, where head_dim is
    hidden / heads, the heads dividing hidden_size."""
    nh = cfg.int("num_attention_heads", default=32)
    nkv = _kv_heads(cfg, nh, default_kv)
    if nh % nkv or (head_dim_from_hidden and h % nh):
        raise ModelError("model.bad_field", field="num_key_value_heads", value=nkv,
                         why=f"must divide num_attention_heads ({nh}), which must divide hidden_size ({h})")
    return nh, nkv


def bamba(cfg: Config) -> Architecture:
    """BambaForCausalLM: embed_tokens; per layer input_layernorm, a Mamba 2 mixer or, at
    attn_layer_indices, attention (head_dim = hidden / heads), pre_ff_layernorm and a SwiGLU
    feed_forward; final_layernorm; lm_head (untied by default)."""
    h = cfg.int("hidden_size", default=4096, maximum=limits.MAX_HIDDEN)
    n = cfg.int("num_hidden_layers", default=32, maximum=limits.MAX_LAYERS)
    vocab = cfg.int("vocab_size", default=128000, maximum=limits.MAX_VOCAB)
    nh, nkv = _heads(cfg, h, 8)
    inter = cfg.int("intermediate_size", default=14336)
    listed = cfg.get("attn_layer_indices") or []
    if not isinstance(listed, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in listed):
        raise ModelError("model.bad_field", field="attn_layer_indices", value=listed, why="must be a list of layer indices")
    kinds = tuple("full_attention" if i in listed else "linear_attention" for i in range(n))
    d = _ibm_mamba_dims(cfg, h)
    attn_bias, mlp_bias = cfg.bool("attention_bias", False), cfg.bool("mlp_bias", False)
    rows = [Tensor("model.embed_tokens.weight", "embed", (vocab, h))]
    for i, kind in enumerate(kinds):
        p = f"model.layers.{i}"
        rows += norm_rows(f"{p}.input_layernorm", h, False, i)
        rows += mamba2_mixer(f"{p}.mamba", d, i) if kind == "linear_attention" else \
            _gqa(f"{p}.self_attn", h, nh, nkv, h // nh, i, attn_bias)
        rows += norm_rows(f"{p}.pre_ff_layernorm", h, False, i)
        rows += _gated_mlp(f"{p}.feed_forward", h, inter, i, mlp_bias)
    rows += norm_rows("model.final_layernorm", h, False, None)
    return _ibm_hybrid(cfg, rows, kinds, d, h, nh, nkv, vocab, inter, None)


# GraniteMoeHybridConfig.layer_types values on the Hub ("mamba", "attention") and as
# transformers names them
_GRANITE_KINDS = {"mamba": "linear_attention", "attention": "full_attention",
                  "linear_attention": "linear_attention", "full_attention": "full_attention"}


def granite_moe_hybrid(cfg: Config) -> Architecture:
    """GraniteMoeHybridForCausalLM (Granite 4.0 H): embed_tokens; per layer
    input_layernorm, a Mamba 2 mixer or attention as layer_types says (default: all
    Mamba), post_attention_layernorm, an MoE (router + experts of intermediate_size) unless
    num_local_experts is 0, and a shared MLP (input_linear = gate and up fused, output_linear
    of shared_intermediate_size); norm; lm_head (untied by default)."""
    h = cfg.int("hidden_size", default=4096, maximum=limits.MAX_HIDDEN)
    n = cfg.int("num_hidden_layers", default=32, maximum=limits.MAX_LAYERS)
    vocab = cfg.int("vocab_size", default=32000, maximum=limits.MAX_VOCAB)
    nh, nkv = _heads(cfg, h, None)
    listed = cfg.get("layer_types") or ["mamba"] * n
    if not isinstance(listed, list) or len(listed) != n or any(k not in _GRANITE_KINDS for k in listed):
        raise ModelError("model.bad_field", field="layer_types", value=listed if not isinstance(listed, list) else len(listed),
                         why=f"must list mamba or attention for each of the {n} layers")
    kinds = tuple(_GRANITE_KINDS[k] for k in listed)
    d = _ibm_mamba_dims(cfg, h)
    moe = moe_mod.moe_of(cfg, moe_mod.MOE["granitemoe"], n)
    shared = cfg.int("shared_intermediate_size", default=1024)
    bias = cfg.bool("attention_bias", False)
    rows = [Tensor("model.embed_tokens.weight", "embed", (vocab, h))]
    for i, kind in enumerate(kinds):
        p = f"model.layers.{i}"
        rows += norm_rows(f"{p}.input_layernorm", h, False, i) + norm_rows(f"{p}.post_attention_layernorm", h, False, i)
        if moe is not None:
            rows += moe_mod.moe_block(f"{p}.block_sparse_moe", h, moe, i)
        rows += (linear_rows(f"{p}.shared_mlp.input_linear", "shared_up", 2 * shared, h, False, i)
                 + linear_rows(f"{p}.shared_mlp.output_linear", "shared_down", h, shared, False, i))
        rows += mamba2_mixer(f"{p}.mamba", d, i) if kind == "linear_attention" else \
            _gqa(f"{p}.self_attn", h, nh, nkv, h // nh, i, bias)
    rows += norm_rows("model.norm", h, False, None)
    return _ibm_hybrid(cfg, rows, kinds, d, h, nh, nkv, vocab, 0 if moe else shared, moe)


def _ibm_hybrid(cfg: Config, rows: list[Tensor], kinds: tuple[str, ...], d: Mamba2Dims, h: int, nh: int, nkv: int,
                vocab: int, inter: int, moe: moe_mod.Moe | None) -> Architecture:
    tied = cfg.bool("tie_word_embeddings", False)
    if not tied:
        rows += linear_rows("lm_head", "lm_head", vocab, h, False, None)
    n = len(kinds)
    n_mamba = kinds.count("linear_attention")
    sparse = tuple(sorted(moe.sparse_layers)) if moe else ()
    return Architecture(
        model_type=cfg.model_type, hidden_size=h, num_hidden_layers=n, num_attention_heads=nh,
        num_key_value_heads=nkv, head_dim=h // nh, vocab_size=vocab, intermediate_size=inter,
        max_position_embeddings=cfg.max_positions("max_position_embeddings"), tie_word_embeddings=tied,
        tensors=tuple(rows), kv_elements_per_token=2 * kinds.count("full_attention") * nkv * (h // nh),
        num_experts=moe.num_experts if moe else 0, experts_per_token=moe.top_k if moe else 0,
        moe_layers=sparse, layer_windows=(None,) * n, layer_types=kinds,
        conv_state_elements=n_mamba * d.conv_state_elements, ssm_state_elements=n_mamba * d.ssm_state_elements,
        conv_kernel=d.conv_kernel,
    )


def minimax(cfg: Config) -> Architecture:
    """MiniMaxForCausalLM: embed_tokens; per layer input_layernorm, softmax attention
    (q/k/v/o) or lightning attention (an RMSNorm over heads x head_dim, fused qkv_proj,
    out_proj and output_gate), post_attention_layernorm and a Mixtral-style MoE; norm;
    lm_head.  layer_types, else MiniMax's own attn_type_list (``_attn_type_list``), else full
    attention on even layers (configuration_minimax.py).
    A lightning layer keeps per sequence a (heads, head_dim, head_dim) state in the model
    dtype (transformers' MiniMaxCache.linear_cache), counted with the model-dtype state."""
    h = cfg.int("hidden_size", default=4096, maximum=limits.MAX_HIDDEN)
    n = cfg.int("num_hidden_layers", default=32, maximum=limits.MAX_LAYERS)
    vocab = cfg.int("vocab_size", default=32000, maximum=limits.MAX_VOCAB)
    nh, nkv = _heads(cfg, h, 8, head_dim_from_hidden=cfg.get("head_dim") is None)
    hd = cfg.int("head_dim") if cfg.get("head_dim") is not None else h // nh
    kinds = (_listed_layer_types(cfg, n) or _attn_type_list(cfg, n)
             or tuple("full_attention" if (i + 1) % 2 else "linear_attention" for i in range(n)))
    moe = moe_mod.moe_of(cfg, moe_mod.MOE["mixtral"], n)
    rows = [Tensor("model.embed_tokens.weight", "embed", (vocab, h))]
    for i, kind in enumerate(kinds):
        p = f"model.layers.{i}"
        rows += norm_rows(f"{p}.input_layernorm", h, False, i)
        if kind == "full_attention":
            rows += _gqa(f"{p}.self_attn", h, nh, nkv, hd, i)
        else:
            a = f"{p}.self_attn"
            rows += (norm_rows(f"{a}.norm", nh * hd, False, i)
                     + linear_rows(f"{a}.qkv_proj", "attn_qkv", 3 * nh * hd, h, False, i)
                     + linear_rows(f"{a}.out_proj", "attn_o", h, nh * hd, False, i)
                     + linear_rows(f"{a}.output_gate", "attn_q", nh * hd, h, False, i))
        rows += norm_rows(f"{p}.post_attention_layernorm", h, False, i)
        rows += moe_mod.moe_block(f"{p}.mlp", h, moe, i) if moe else \
            _gated_mlp(f"{p}.mlp", h, cfg.int("intermediate_size", default=14336), i)
    rows += norm_rows("model.norm", h, False, None)
    tied = cfg.bool("tie_word_embeddings", False)
    if not tied:
        rows += linear_rows("lm_head", "lm_head", vocab, h, False, None)
    n_linear = kinds.count("linear_attention")
    return Architecture(
        model_type=cfg.model_type, hidden_size=h, num_hidden_layers=n, num_attention_heads=nh,
        num_key_value_heads=nkv, head_dim=hd, vocab_size=vocab, intermediate_size=0 if moe else cfg.int("intermediate_size"),
        max_position_embeddings=cfg.max_positions("max_position_embeddings"), tie_word_embeddings=tied,
        tensors=tuple(rows), kv_elements_per_token=2 * kinds.count("full_attention") * nkv * hd,
        num_experts=moe.num_experts if moe else 0, experts_per_token=moe.top_k if moe else 0,
        moe_layers=tuple(sorted(moe.sparse_layers)) if moe else (), layer_windows=(None,) * n, layer_types=kinds,
        conv_state_elements=n_linear * nh * hd * hd,      # model dtype, like Mamba's conv state
    )


def falcon_h1(cfg: Config) -> Architecture:
    """FalconH1ForCausalLM: embed_tokens; per layer input_layernorm, attention AND a Mamba 2
    mixer of mamba_d_ssm channels (or mamba_expand x hidden) in parallel, its gated RMSNorm only
    with mamba_rms_norm, pre_ff_layernorm, a SwiGLU feed_forward; final_layernorm; lm_head.
    Every layer keeps K/V and a recurrent state (layer type "hybrid")."""
    h = cfg.int("hidden_size", default=4096, maximum=limits.MAX_HIDDEN)
    n = cfg.int("num_hidden_layers", default=32, maximum=limits.MAX_LAYERS)
    vocab = cfg.int("vocab_size", default=128000, maximum=limits.MAX_VOCAB)
    nh, nkv = _heads(cfg, h, 8, head_dim_from_hidden=cfg.get("head_dim") is None)
    hd = cfg.int("head_dim") if cfg.get("head_dim") is not None else h // nh
    # FalconH1Config: mamba_d_ssm 1024 when the key is absent; null means mamba_expand x hidden
    if "mamba_d_ssm" in cfg.raw and cfg.raw["mamba_d_ssm"] is None:
        inner = cfg.int("mamba_expand", default=2) * h
    else:
        inner = cfg.int("mamba_d_ssm", default=1024)
    d = _ibm_mamba_dims(cfg, h, inner)
    gated_norm = cfg.bool("mamba_rms_norm", False)
    out_bias = cfg.bool("projectors_bias", False)
    attn_bias, mlp_bias = cfg.bool("attention_bias", False), cfg.bool("mlp_bias", False)
    inter = cfg.int("intermediate_size", default=14336)
    rows = [Tensor("model.embed_tokens.weight", "embed", (vocab, h))]
    for i in range(n):
        p = f"model.layers.{i}"
        rows += norm_rows(f"{p}.input_layernorm", h, False, i)
        mixer = [t for t in mamba2_mixer(f"{p}.mamba", d, i) if gated_norm or not t.name.endswith(".norm.weight")]
        # out_proj's bias follows projectors_bias, not mamba_proj_bias (FalconH1Mixer)
        mixer = [t for t in mixer if t.name != f"{p}.mamba.out_proj.bias"]
        if out_bias:
            mixer.append(Tensor(f"{p}.mamba.out_proj.bias", "ssm_out", (h,), i))
        rows += mixer
        rows += _gqa(f"{p}.self_attn", h, nh, nkv, hd, i, attn_bias)
        rows += norm_rows(f"{p}.pre_ff_layernorm", h, False, i)
        rows += _gated_mlp(f"{p}.feed_forward", h, inter, i, mlp_bias)
    rows += norm_rows("model.final_layernorm", h, False, None)
    tied = cfg.bool("tie_word_embeddings", False)
    if not tied:
        rows += linear_rows("lm_head", "lm_head", vocab, h, False, None)
    return Architecture(
        model_type=cfg.model_type, hidden_size=h, num_hidden_layers=n, num_attention_heads=nh,
        num_key_value_heads=nkv, head_dim=hd, vocab_size=vocab, intermediate_size=inter,
        max_position_embeddings=cfg.max_positions("max_position_embeddings"), tie_word_embeddings=tied,
        tensors=tuple(rows), kv_elements_per_token=2 * n * nkv * hd, layer_windows=(None,) * n,
        layer_types=("hybrid",) * n,
        conv_state_elements=n * d.conv_state_elements, ssm_state_elements=n * d.ssm_state_elements,
        conv_kernel=d.conv_kernel,
    )
