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
"""

from __future__ import annotations

from rigsize.errors import ModelError
from rigsize.model import moe as moe_mod
from rigsize.model.architecture import Architecture
from rigsize.model.hf_config import Config
from rigsize.model.recurrent import jamba_mamba_dims, jamba_mamba_mixer
from rigsize.model.tensors import Tensor, linear_rows, norm_rows
from rigsize.planning import limits

MODEL_TYPES: tuple[str, ...] = ("jamba",)


def _gqa(prefix: str, h: int, nh: int, nkv: int, hd: int, i: int) -> list[Tensor]:
    """Unbiased q/k/v/o projections (``JambaAttention``)."""
    return (linear_rows(f"{prefix}.q_proj", "attn_q", nh * hd, h, False, i)
            + linear_rows(f"{prefix}.k_proj", "attn_k", nkv * hd, h, False, i)
            + linear_rows(f"{prefix}.v_proj", "attn_v", nkv * hd, h, False, i)
            + linear_rows(f"{prefix}.o_proj", "attn_o", h, nh * hd, False, i))


def _gated_mlp(prefix: str, h: int, inter: int, i: int) -> list[Tensor]:
    return (linear_rows(f"{prefix}.gate_proj", "mlp_gate", inter, h, False, i)
            + linear_rows(f"{prefix}.up_proj", "mlp_up", inter, h, False, i)
            + linear_rows(f"{prefix}.down_proj", "mlp_down", h, inter, False, i))


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
    )
