"""Parameter counts and KV-cache bytes against Hugging Face ``transformers`` itself.

Reference: ``AutoModelForCausalLM.from_config`` on the meta device (transformers 5.x,
pinned in the test extra), parameters deduplicated by ``model.parameters()`` so tied
weights count once and buffers (rotary tables, DeepSeek's e_score_correction_bias)
are excluded.  Exact equality is required.
"""

from __future__ import annotations

import pytest
from _hf import meta_param_count
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rigsize.model.families import MULTIMODAL_MODEL_TYPES, SUPPORTED_MODEL_TYPES, build_architecture
from rigsize.model.inputs import preset_config, presets

pytest.importorskip("transformers")


# ---- every preset (real published architectures) --------------------------------------

def _preset_names() -> list[str]:
    """Text-only presets; vision-language ones (Gemma 3 4b+, Qwen2.5-VL) are compared whole,
    vision tower included, against AutoModelForImageTextToText in tests/model/test_vision.py."""
    return sorted(n for n in presets() if preset_config(n).get("model_type") not in MULTIMODAL_MODEL_TYPES)


@pytest.mark.parametrize("name", _preset_names())
def test_preset_param_count_equals_transformers(name: str) -> None:
    cfg = preset_config(name)
    assert build_architecture(cfg).params == meta_param_count(cfg)


# ---- random small configs of every family ---------------------------------------------

_dims = st.sampled_from([32, 64, 96])
_NO_HEAD_DIM = ("phi", "gpt2", "gpt_bigcode", "bloom", "opt", "gpt_neox", "falcon", "dbrx")
# families whose configs type layers as sliding even without a window (transformers then fails)
_NEED_WINDOW = ("gemma2", "gemma3_text", "cohere2", "exaone4", "gpt_oss", "qwen2_moe", "olmo3")


@st.composite
def _config(draw: st.DrawFn, model_type: str) -> dict:
    heads = draw(st.sampled_from([2, 4]))
    kv = draw(st.sampled_from([h for h in (1, 2, 4) if heads % h == 0]))
    hidden = heads * draw(st.sampled_from([8, 16]))
    cfg = {"model_type": model_type, "hidden_size": hidden, "num_attention_heads": heads,
           "num_key_value_heads": kv, "num_hidden_layers": draw(st.integers(1, 4)),
           "intermediate_size": draw(_dims), "vocab_size": draw(st.integers(50, 300)),
           "max_position_embeddings": 128, "tie_word_embeddings": draw(st.booleans())}
    if model_type in ("hunyuan_v1_dense", "hunyuan_v1_moe"):   # their attention needs an explicit head_dim
        cfg["head_dim"] = draw(st.sampled_from([8, 16]))
    elif draw(st.booleans()) and model_type not in _NO_HEAD_DIM:
        cfg["head_dim"] = draw(st.sampled_from([8, 16]))
    for flag in ("attention_bias", "mlp_bias", "use_bias", "qkv_bias", "use_qkv_bias", "attention_out_bias",
                 "lm_head_bias", "qk_layernorm", "use_qk_norm", "use_parallel_residual"):
        if draw(st.booleans()):
            cfg[flag] = draw(st.booleans())
    n = cfg["num_hidden_layers"]
    if model_type in ("olmoe", "granitemoe", "granitemoeshared", "phimoe", "gpt_oss", "llama4_text"):
        key = "num_experts" if model_type == "olmoe" else "num_local_experts"
        cfg.update({key: draw(st.integers(2, 5)), "num_experts_per_tok": draw(st.integers(1, 2))})
    if model_type == "granitemoeshared":
        cfg["shared_intermediate_size"] = draw(st.sampled_from([0, 32, 48]))
    if model_type == "llama4_text":
        cfg.update(intermediate_size_mlp=draw(_dims), use_qk_norm=draw(st.booleans()),
                   attention_chunk_size=draw(st.sampled_from([None, 16])))
        if draw(st.booleans()):
            cfg["moe_layers"] = draw(st.lists(st.integers(0, n - 1), max_size=n, unique=True))
        else:
            cfg["interleave_moe_layer_step"] = draw(st.integers(1, 2))
    if model_type == "hunyuan_v1_moe":
        e = draw(st.integers(1, 4))
        k = draw(st.integers(1, e))
        cfg.update(num_experts=e, moe_topk=draw(st.sampled_from([k, [k] * n])))
    if model_type == "ernie4_5_moe":
        cfg.update(moe_num_experts=draw(st.integers(2, 5)), moe_k=2, moe_intermediate_size=draw(_dims),
                   moe_num_shared_experts=draw(st.integers(0, 2)), moe_layer_start_index=draw(st.integers(0, 2)),
                   moe_layer_end_index=draw(st.sampled_from([-1, 1, 2])),
                   moe_layer_interval=draw(st.integers(1, 2)))
    if model_type not in _NO_HEAD_DIM and draw(st.booleans()):   # sliding windows (see the cache test)
        cfg.update(sliding_window=draw(st.sampled_from([16] if model_type in _NEED_WINDOW else [None, 16])),
                   use_sliding_window=draw(st.booleans()), max_window_layers=draw(st.integers(0, n)),
                   sliding_window_pattern=draw(st.integers(1, 3)))
    if model_type == "apertus":
        cfg["hidden_act"] = draw(st.sampled_from(["xielu", "relu2"]))
    if model_type == "exaone" and draw(st.booleans()):
        cfg["num_layers"] = cfg.pop("num_hidden_layers")   # EXAONE 3's own spelling
    if model_type == "dbrx":
        cfg.update(d_model=cfg.pop("hidden_size"), n_heads=cfg.pop("num_attention_heads"),
                   n_layers=cfg.pop("num_hidden_layers"), max_seq_len=cfg.pop("max_position_embeddings"),
                   tie_word_embeddings=False,   # DbrxConfig rejects tied embeddings
                   attn_config={"kv_n_heads": kv, "rope_theta": 10000.0},
                   ffn_config={"ffn_hidden_size": draw(_dims), "moe_num_experts": draw(st.integers(2, 5)),
                               "moe_top_k": draw(st.integers(1, 2))})
    if model_type == "minicpm3":
        cfg.update(kv_lora_rank=draw(st.sampled_from([8, 16])), qk_rope_head_dim=4, qk_nope_head_dim=8)
        if draw(st.booleans()):   # absent: the class default (768); null: no q LoRA
            cfg["q_lora_rank"] = draw(st.sampled_from([None, 16]))
        if draw(st.booleans()):
            cfg["v_head_dim"] = draw(st.sampled_from([8, 12]))
    if model_type == "mixtral":
        cfg.update(num_local_experts=draw(st.integers(2, 5)), num_experts_per_tok=2)
    if model_type in ("qwen2_moe", "qwen3_moe"):
        cfg.update(num_experts=draw(st.integers(2, 5)), num_experts_per_tok=2,
                   moe_intermediate_size=draw(_dims), decoder_sparse_step=draw(st.integers(1, 2)),
                   mlp_only_layers=draw(st.lists(st.integers(0, n - 1), max_size=2, unique=True)))
        if model_type == "qwen2_moe":
            cfg["shared_expert_intermediate_size"] = draw(_dims)
    if model_type in ("deepseek_v2", "deepseek_v3", "deepseek_v32", "glm4_moe"):
        cfg.update(n_routed_experts=draw(st.integers(2, 6)), num_experts_per_tok=2, n_group=1, topk_group=1,
                   moe_intermediate_size=draw(_dims), first_k_dense_replace=draw(st.integers(0, 2)),
                   n_shared_experts=draw(st.integers(0, 2)))
    if model_type in ("deepseek_v2", "deepseek_v3", "deepseek_v32"):
        cfg.update(kv_lora_rank=draw(st.sampled_from([8, 16])), q_lora_rank=draw(st.sampled_from([None, 16, 24])),
                   qk_rope_head_dim=4, qk_nope_head_dim=8, v_head_dim=draw(st.sampled_from([8, 12])))
    if model_type == "deepseek_v32":
        cfg.update(q_lora_rank=draw(st.sampled_from([16, 24])), index_n_heads=draw(st.integers(1, 3)),
                   index_head_dim=draw(st.sampled_from([8, 16])), index_topk=4)
        if draw(st.booleans()):
            cfg["mlp_layer_types"] = draw(st.lists(st.sampled_from(["dense", "sparse"]), min_size=n, max_size=n))
    if model_type == "falcon":
        new = draw(st.booleans())
        cfg.update(new_decoder_architecture=new, multi_query=draw(st.booleans()), bias=draw(st.booleans()),
                   parallel_attn=draw(st.booleans()) or new, num_kv_heads=kv)
    if model_type == "opt":
        cfg.update(ffn_dim=cfg["intermediate_size"], word_embed_proj_dim=draw(st.sampled_from([cfg["hidden_size"], 16])),
                   do_layer_norm_before=draw(st.booleans()))
    if model_type in ("gpt2", "gpt_bigcode"):
        cfg.update(n_embd=cfg.pop("hidden_size"), n_head=cfg.pop("num_attention_heads"),
                   n_layer=cfg.pop("num_hidden_layers"), n_positions=cfg.pop("max_position_embeddings"),
                   n_inner=draw(st.sampled_from([None, 48])))
    if model_type == "gpt_bigcode":   # StarCoder 1: one K/V head unless multi_query is off
        cfg["multi_query"] = draw(st.booleans())
    if model_type == "bloom":
        cfg.update(n_head=cfg.pop("num_attention_heads"), n_layer=cfg.pop("num_hidden_layers"))
    if model_type == "mamba2":   # Mamba2Config: num_heads * head_dim == expand * hidden_size
        expand, head_dim = draw(st.sampled_from([1, 2])), draw(st.sampled_from([8, 16]))
        hidden = cfg["hidden_size"]
        for k in ("num_attention_heads", "num_key_value_heads", "intermediate_size", "max_position_embeddings",
                  "head_dim", "sliding_window", "use_sliding_window", "max_window_layers", "sliding_window_pattern"):
            cfg.pop(k, None)
        cfg.update(expand=expand, head_dim=head_dim, num_heads=expand * hidden // head_dim,
                   n_groups=draw(st.sampled_from([1, 2])), state_size=draw(st.sampled_from([4, 16])),
                   conv_kernel=draw(st.integers(2, 4)), use_bias=draw(st.booleans()),
                   use_conv_bias=draw(st.booleans()))
    if model_type == "jamba":   # JambaConfig: offsets below their periods; one expert = no MoE
        for k in ("sliding_window", "use_sliding_window", "max_window_layers", "sliding_window_pattern"):
            cfg.pop(k, None)
        attn_period, expert_period = draw(st.integers(1, 4)), draw(st.integers(1, 3))
        experts = draw(st.integers(1, 4))
        cfg.update(attn_layer_period=attn_period, attn_layer_offset=draw(st.integers(0, attn_period - 1)),
                   expert_layer_period=expert_period, expert_layer_offset=draw(st.integers(0, expert_period - 1)),
                   num_experts=experts, num_experts_per_tok=draw(st.integers(1, max(1, min(2, experts)))),
                   mamba_d_state=draw(st.sampled_from([4, 16])), mamba_d_conv=draw(st.integers(2, 4)),
                   mamba_expand=draw(st.sampled_from([1, 2])),
                   mamba_dt_rank=draw(st.sampled_from(["auto", 4, 8])), mamba_conv_bias=draw(st.booleans()),
                   mamba_proj_bias=draw(st.booleans()))
    if model_type == "nemotron_h":   # the pattern sets the depth; Mamba width = heads x head_dim
        for k in ("sliding_window", "use_sliding_window", "max_window_layers", "sliding_window_pattern"):
            cfg.pop(k, None)
        experts = draw(st.integers(1, 4))
        cfg.update(hybrid_override_pattern="".join(draw(st.lists(st.sampled_from("M*-E"), min_size=1, max_size=5))),
                   head_dim=draw(st.sampled_from([8, 16])), mamba_num_heads=draw(st.sampled_from([2, 4])),
                   mamba_head_dim=draw(st.sampled_from([8, 16])), n_groups=draw(st.sampled_from([1, 2])),
                   ssm_state_size=draw(st.sampled_from([4, 16])), conv_kernel=draw(st.integers(2, 4)),
                   use_bias=draw(st.booleans()), use_conv_bias=draw(st.booleans()), mlp_bias=draw(st.booleans()),
                   n_routed_experts=experts, num_experts_per_tok=draw(st.integers(1, experts)),
                   moe_intermediate_size=draw(_dims), moe_shared_expert_intermediate_size=draw(_dims),
                   moe_latent_size=draw(st.sampled_from([None, 16])), chunk_size=16)
    if model_type == "minimax":
        cfg.update(num_local_experts=draw(st.integers(1, 4)), num_experts_per_tok=1, block_size=4,
                   layer_types=draw(st.lists(st.sampled_from(["full_attention", "linear_attention"]),
                                             min_size=n, max_size=n)))
    if model_type == "falcon_h1":   # Mamba width = mamba_d_ssm (1024 absent, expand x hidden when null)
        heads = draw(st.sampled_from([2, 4]))
        ssm = draw(st.sampled_from([None, 32, 64]))
        cfg.update(mamba_n_heads=heads, mamba_d_ssm=ssm, mamba_expand=draw(st.sampled_from([1, 2])),
                   mamba_n_groups=draw(st.sampled_from([1, 2])), mamba_d_state=draw(st.sampled_from([4, 8])),
                   mamba_d_conv=draw(st.integers(2, 4)), mamba_rms_norm=draw(st.booleans()),
                   mamba_proj_bias=draw(st.booleans()), mamba_conv_bias=draw(st.booleans()),
                   projectors_bias=draw(st.booleans()), mamba_chunk_size=16)
    if model_type in ("qwen3_next", "bamba", "granitemoehybrid", "minimax", "falcon_h1"):
        for k in ("sliding_window", "use_sliding_window", "max_window_layers", "sliding_window_pattern"):
            cfg.pop(k, None)
    if model_type == "qwen3_next":   # Gated DeltaNet: value heads a multiple of key heads
        nk = draw(st.sampled_from([1, 2]))
        cfg.update(linear_num_key_heads=nk, linear_num_value_heads=nk * draw(st.sampled_from([1, 2])),
                   linear_key_head_dim=draw(st.sampled_from([4, 8])), linear_value_head_dim=draw(st.sampled_from([4, 12])),
                   linear_conv_kernel_dim=draw(st.integers(2, 4)), full_attention_interval=draw(st.integers(1, 3)),
                   num_experts=draw(st.integers(2, 4)), num_experts_per_tok=2, moe_intermediate_size=draw(_dims),
                   shared_expert_intermediate_size=draw(_dims), decoder_sparse_step=draw(st.integers(1, 2)),
                   mlp_only_layers=draw(st.lists(st.integers(0, n - 1), max_size=2, unique=True)))
    if model_type in ("bamba", "granitemoehybrid"):   # Mamba width = heads x head_dim = expand x hidden
        expand, heads = draw(st.sampled_from([1, 2])), draw(st.sampled_from([2, 4, 8]))
        cfg.pop("head_dim", None)
        cfg.update(mamba_expand=expand, mamba_n_heads=heads, mamba_n_groups=draw(st.sampled_from([1, 2])),
                   mamba_d_state=draw(st.sampled_from([4, 16])), mamba_d_conv=draw(st.integers(2, 4)),
                   mamba_proj_bias=draw(st.booleans()), mamba_conv_bias=draw(st.booleans()), mamba_chunk_size=16)
    if model_type == "bamba":
        cfg["attn_layer_indices"] = draw(st.lists(st.integers(0, n - 1), max_size=n, unique=True))
    if model_type == "granitemoehybrid":
        cfg.update(layer_types=draw(st.lists(st.sampled_from(["mamba", "attention"]), min_size=n, max_size=n)),
                   num_local_experts=draw(st.integers(0, 4)), num_experts_per_tok=1,
                   shared_intermediate_size=draw(_dims))
    return cfg


@pytest.mark.parametrize("model_type", SUPPORTED_MODEL_TYPES)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_config_param_count_equals_transformers(model_type: str, data: st.DataObject) -> None:
    cfg = data.draw(_config(model_type))
    assert build_architecture(cfg).params == meta_param_count(cfg), cfg


# ---- sliding windows per layer ---------------------------------------------------------

@pytest.mark.parametrize("model_type", SUPPORTED_MODEL_TYPES)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_config_layer_windows_equal_transformers_cache(model_type: str, data: st.DataObject) -> None:
    """The window of each layer's cache in a ``DynamicCache`` built from the config
    (sliding and chunked layers keep a window; full layers none)."""
    import warnings

    from transformers import AutoConfig, DynamicCache

    cfg = data.draw(_config(model_type))
    kwargs = {k: v for k, v in cfg.items() if k != "model_type"}
    kwargs.setdefault("pad_token_id", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cache = DynamicCache(config=AutoConfig.for_model(model_type, **kwargs))
    theirs = tuple(getattr(layer, "sliding_window", None) for layer in cache.layers)
    assert build_architecture(cfg).layer_windows == theirs, cfg


# ---- KV cache bytes per token ----------------------------------------------------------

_KV_CASES = {
    "llama-gqa": {"model_type": "llama", "hidden_size": 64, "num_attention_heads": 8, "num_key_value_heads": 2,
                  "num_hidden_layers": 3, "intermediate_size": 64, "vocab_size": 128},
    "qwen3-explicit-head-dim": {"model_type": "qwen3", "hidden_size": 64, "num_attention_heads": 4,
                                "num_key_value_heads": 2, "head_dim": 32, "num_hidden_layers": 2,
                                "intermediate_size": 64, "vocab_size": 128},
    "gpt2-mha": {"model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_layer": 2, "vocab_size": 128, "n_positions": 64},
    "falcon-mqa": {"model_type": "falcon", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
                   "vocab_size": 128, "multi_query": True},
    "mixtral": {"model_type": "mixtral", "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 1,
                "num_hidden_layers": 2, "intermediate_size": 32, "vocab_size": 128, "num_local_experts": 3,
                "num_experts_per_tok": 2},
    "starcoder1-mqa": {"model_type": "gpt_bigcode", "n_embd": 64, "n_head": 4, "n_layer": 2, "vocab_size": 128,
                       "n_positions": 64, "multi_query": True},
    "dbrx": {"model_type": "dbrx", "d_model": 64, "n_heads": 4, "n_layers": 2, "vocab_size": 128,
             "attn_config": {"kv_n_heads": 2, "rope_theta": 10000.0, "clip_qkv": 8.0},
             "ffn_config": {"ffn_hidden_size": 32, "moe_num_experts": 3, "moe_top_k": 2}},
    "gpt-oss": {"model_type": "gpt_oss", "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
                "head_dim": 16, "num_hidden_layers": 2, "intermediate_size": 32, "vocab_size": 128,
                "num_local_experts": 3, "num_experts_per_tok": 2},
    "glm4": {"model_type": "glm4", "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
             "num_hidden_layers": 2, "intermediate_size": 32, "vocab_size": 128},
}


@pytest.mark.parametrize("case", sorted(_KV_CASES))
def test_kv_elements_per_token_equal_transformers_cache(case: str) -> None:
    """Run a tiny model on CPU and read what its DynamicCache holds per token."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = dict(_KV_CASES[case])
    model_type = cfg.pop("model_type")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, pad_token_id=None, **cfg))
    tokens = 7
    with torch.no_grad():
        out = model(torch.arange(tokens).unsqueeze(0), use_cache=True)
    cache = out.past_key_values
    elements = 0
    for layer in cache.layers:
        elements += layer.keys.numel() + layer.values.numel()
    ours = build_architecture({"model_type": model_type, **cfg}).kv_elements_per_token
    assert ours * tokens == elements
