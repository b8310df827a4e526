"""GPT-style families, the ones published training runs use: GPT-2/GPT-3 (gpt2),
StarCoder 1 (gpt_bigcode), GPT-NeoX, OPT, BLOOM and Falcon.

All are MHA (MQA for StarCoder, MQA/GQA for Falcon) with LayerNorm and a non-gated
two-layer MLP; they differ in where the config keeps its widths, their biases and
norms, and what sits around the layer stack (learned positions, embedding norms,
projections).  Each family's differences are one step below, citing the ``transformers``
modeling file it follows; the tensor names are uniform (``h.{i}.attn.qkv``...), since
only their shapes and roles are priced.
"""

from __future__ import annotations

from dataclasses import dataclass

from rigsize.errors import ModelError
from rigsize.model.architecture import Architecture
from rigsize.model.hf_config import Config
from rigsize.model.tensors import Tensor, linear_rows, norm_rows
from rigsize.planning import limits

MODEL_TYPES: tuple[str, ...] = ("gpt2", "gpt_bigcode", "gpt_neox", "opt", "bloom", "falcon")


@dataclass(frozen=True)
class _Family:
    """What one GPT-style family sets: the MLP width, KV heads, the rows before the layer
    stack, each layer's norms, the context limit, biases and the tying default."""

    inter: int
    kv_heads: int
    embeddings: tuple[Tensor, ...]
    norms: tuple[str, ...]
    max_positions: int | None
    bias: bool = True
    mlp_bias: bool | None = None        # None: same as the attention bias
    ln_bias: bool = True
    tie_default: bool = True


def gpt_family(cfg: Config) -> Architecture:
    """The model a GPT-style config describes: embeddings, the layer stack, the final
    norm and the lm_head, with K and V of every KV head in the cache."""
    h = cfg.int("hidden_size", "n_embd", "d_model", maximum=limits.MAX_HIDDEN)
    nh = cfg.int("num_attention_heads", "n_head", maximum=limits.MAX_HIDDEN)
    n_layers = cfg.int("num_hidden_layers", "n_layer", maximum=limits.MAX_LAYERS)
    vocab = cfg.int("vocab_size", maximum=limits.MAX_VOCAB)
    if h % nh:
        raise ModelError("model.bad_field", field="num_attention_heads", value=nh,
                         why=f"must divide hidden_size ({h})")
    hd = h // nh
    fam = _FAMILIES[cfg.model_type](cfg, h, nh, vocab)
    rows = list(fam.embeddings)
    for i in range(n_layers):
        rows += _layer(i, h, nh, hd, fam)
    if _has_final_norm(cfg):
        rows += norm_rows("ln_f", h, fam.ln_bias, None)
    tied = cfg.bool("tie_word_embeddings", fam.tie_default)
    if not tied:
        rows += linear_rows("lm_head", "lm_head", vocab, rows[0].shape[1], False, None)
    return Architecture(
        model_type=cfg.model_type, hidden_size=h, num_hidden_layers=n_layers, num_attention_heads=nh,
        num_key_value_heads=fam.kv_heads, head_dim=hd, vocab_size=vocab, intermediate_size=fam.inter,
        max_position_embeddings=fam.max_positions, tie_word_embeddings=tied, tensors=tuple(rows),
        kv_elements_per_token=2 * n_layers * fam.kv_heads * hd, layer_windows=(None,) * n_layers,
    )


def _layer(i: int, h: int, nh: int, hd: int, fam: _Family) -> list[Tensor]:
    """One block: fused QKV (``nh`` query heads plus K and V of each KV head), the output
    projection, the two-layer MLP and the family's LayerNorms."""
    p = f"h.{i}"
    fc_bias = fam.bias if fam.mlp_bias is None else fam.mlp_bias
    rows = linear_rows(f"{p}.attn.qkv", "attn_qkv", (nh + 2 * fam.kv_heads) * hd, h, fam.bias, i)
    rows += linear_rows(f"{p}.attn.proj", "attn_o", h, h, fam.bias, i)
    rows += linear_rows(f"{p}.mlp.fc_in", "mlp_up", fam.inter, h, fc_bias, i)
    rows += linear_rows(f"{p}.mlp.fc_out", "mlp_down", h, fam.inter, fc_bias, i)
    for norm in fam.norms:
        rows += norm_rows(f"{p}.{norm}", h, fam.ln_bias, i)
    return rows


def _has_final_norm(cfg: Config) -> bool:
    """modeling_opt.py: OPTDecoder builds final_layer_norm only with do_layer_norm_before
    and without _remove_final_layer_norm (OPT-350m); every other family has ln_f."""
    return not (cfg.model_type == "opt" and (not cfg.bool("do_layer_norm_before", True)
                                             or cfg.bool("_remove_final_layer_norm", False)))


def _token_embedding(vocab: int, width: int) -> Tensor:
    return Tensor("embed_tokens.weight", "embed", (vocab, width))


def _gpt2(cfg: Config, h: int, nh: int, vocab: int) -> _Family:
    """modeling_gpt2.py (GPT-2, GPT-3 shapes) and modeling_gpt_bigcode.py (StarCoder 1,
    one K/V head with ``multi_query``, the default): learned positions ``wpe``."""
    inter = cfg.int("n_inner", default=4 * h)
    nkv = nh
    if cfg.model_type == "gpt_bigcode":
        nkv = 1 if cfg.bool("multi_query", True) else nh
    wpe = Tensor("wpe.weight", "pos_embed", (cfg.int("n_positions", "max_position_embeddings"), h))
    return _Family(inter, nkv, (_token_embedding(vocab, h), wpe), ("ln_1", "ln_2"),
                   cfg.int("n_positions", "max_position_embeddings"))


def _gpt_neox(cfg: Config, h: int, nh: int, vocab: int) -> _Family:
    """modeling_gpt_neox.py: attention bias with ``attention_bias``, the MLP always biased,
    untied embeddings by default (``embed_out``), rotary positions."""
    inter = cfg.int("intermediate_size")
    bias = cfg.bool("attention_bias", True)
    return _Family(inter, nh, (_token_embedding(vocab, h),), ("input_layernorm", "post_attention_layernorm"),
                   cfg.max_positions("max_position_embeddings"), bias=bias, mlp_bias=True, tie_default=False)


def _opt(cfg: Config, h: int, nh: int, vocab: int) -> _Family:
    """modeling_opt.py: embeddings ``word_embed_proj_dim`` wide with project_in/out when
    that differs from hidden_size (OPT-350m), learned positions offset by 2."""
    inter = cfg.int("ffn_dim")
    proj = cfg.int("word_embed_proj_dim", default=h)
    bias = cfg.bool("enable_bias", True)
    ln_bias = cfg.bool("layer_norm_elementwise_affine", True)
    max_pos = cfg.int("max_position_embeddings")
    rows = [_token_embedding(vocab, proj),
            Tensor("embed_positions.weight", "pos_embed", (max_pos + 2, h))]   # OPT offsets positions by 2
    if proj != h:
        rows += linear_rows("project_in", "other", h, proj, False, None)
        rows += linear_rows("project_out", "other", proj, h, False, None)
    return _Family(inter, nh, tuple(rows), ("self_attn_layer_norm", "final_layer_norm"), max_pos,
                   bias=bias, ln_bias=ln_bias)


def _bloom(cfg: Config, h: int, nh: int, vocab: int) -> _Family:
    """modeling_bloom.py: a LayerNorm on the word embeddings, a 4h MLP, ALiBi (no
    position limit in the architecture)."""
    rows = [_token_embedding(vocab, h), *norm_rows("word_embeddings_layernorm", h, True, None)]
    return _Family(4 * h, nh, tuple(rows), ("input_layernorm", "post_attention_layernorm"), None)


def _falcon(cfg: Config, h: int, nh: int, vocab: int) -> _Family:
    """modeling_falcon.py: the new decoder architecture (Falcon 40B/180B: GQA with
    ``num_kv_heads``, one or two input norms) or the old one (Falcon 7B: MQA with
    ``multi_query``, parallel attention with one norm)."""
    inter = cfg.int("ffn_hidden_size", default=4 * h)
    bias = cfg.bool("bias", False)
    if cfg.bool("new_decoder_architecture", False):
        nkv = cfg.int("num_kv_heads", default=nh)
        n_ln = cfg.int("num_ln_in_parallel_attn", default=2)
        norms: tuple[str, ...] = ("ln_attn", "ln_mlp") if n_ln == 2 else ("input_layernorm",)
    else:
        nkv = 1 if cfg.bool("multi_query", True) else nh
        parallel = cfg.bool("parallel_attn", True)
        norms = ("input_layernorm",) if parallel else ("input_layernorm", "post_attention_layernorm")
    return _Family(inter, nkv, (_token_embedding(vocab, h),), norms, cfg.max_positions("max_position_embeddings"),
                   bias=bias)


_FAMILIES = {"gpt2": _gpt2, "gpt_bigcode": _gpt2, "gpt_neox": _gpt_neox, "opt": _opt, "bloom": _bloom,
             "falcon": _falcon}
