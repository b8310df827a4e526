"""Hybrid Mamba + attention models against ``transformers`` itself (5.x): parameters of
the real preset on the meta device (exact; random configs are in
test_architecture_vs_transformers.py), the recurrent state and the KV cache that a tiny
model's cache allocates when run on CPU (exact shapes and dtypes), and the layer counts.

Jamba (Mamba 1 mixers): conv state (d_inner, d_conv) in the model dtype, SSM state
(d_inner, d_state) in fp32; K/V only in the attention layers.
"""

from __future__ import annotations

import warnings

import pytest
from _hf import meta_param_count

from rigsize.model.architecture import active_params, layer_type_counts
from rigsize.model.families import build_architecture
from rigsize.model.formats import kv_bytes_per_token, resolve_kv_format
from rigsize.model.inputs import preset_config
from rigsize.model.recurrent import state_bytes_per_sequence

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

# attention at 1 and 3, MoE (3 experts) at 0 and 2, d_inner 128
TINY_JAMBA = {"model_type": "jamba", "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
              "num_hidden_layers": 4, "intermediate_size": 32, "vocab_size": 100, "attn_layer_period": 2,
              "attn_layer_offset": 1, "expert_layer_period": 2, "expert_layer_offset": 0, "num_experts": 3,
              "num_experts_per_tok": 2, "mamba_d_state": 8, "mamba_d_conv": 3, "mamba_expand": 2}


def _run_cache(cfg: dict, dtype: torch.dtype, batch: int, tokens: int) -> list:
    """The cache layers of a tiny model after one forward pass on CPU."""
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    kwargs = {k: v for k, v in cfg.items() if k != "model_type"}
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(cfg["model_type"], pad_token_id=None, **kwargs))
        model = model.to(dtype).eval()
        with torch.no_grad():
            out = model(torch.ones((batch, tokens), dtype=torch.long), use_cache=True)
    return list(out.past_key_values.layers)


def _allocated(layers: list, dtype: torch.dtype) -> tuple[int, int]:
    """(recurrent-state bytes, K/V elements) the cache holds, checking the state dtypes."""
    state = kv = 0
    for layer in layers:
        for conv in getattr(layer, "conv_states", {}).values():
            if conv is not None:
                assert conv.dtype == dtype                       # conv state: the model dtype
                state += conv.numel() * conv.dtype.itemsize
        for rec in getattr(layer, "recurrent_states", {}).values():
            if rec is not None:
                assert rec.dtype == torch.float32                # SSM state: fp32 whatever the model
                state += rec.numel() * rec.dtype.itemsize
        keys = getattr(layer, "keys", None)
        if keys is not None and keys.numel():
            kv += keys.numel() + layer.values.numel()
    return state, kv


def test_real_jamba_config_param_count_equals_transformers() -> None:
    cfg = preset_config("jamba-1.5-mini")
    arch = build_architecture(cfg)
    assert arch.params == meta_param_count(cfg) == 51_570_323_328
    # model card: "12B active parameters and an overall of 52B parameters across all experts"
    assert arch.params / 1e9 == pytest.approx(52, rel=0.01)
    assert active_params(arch) / 1e9 == pytest.approx(12, rel=0.01)
    assert layer_type_counts(arch) == {"linear_attention": 28, "full_attention": 4, "moe_mlp": 16, "dense_mlp": 16}


def test_real_jamba_kv_covers_the_attention_layers_only() -> None:
    arch = build_architecture(preset_config("jamba-1.5-mini"))
    # 4 attention layers x K and V x 8 KV heads x 128 x 2 bytes
    assert kv_bytes_per_token(arch, resolve_kv_format("bf16")) == 4 * 2 * 8 * 128 * 2
    # 28 Mamba layers x (conv 8192 x 4 in bf16 + SSM 8192 x 16 in fp32)
    assert state_bytes_per_sequence(arch) == 28 * (8192 * 4 * 2 + 8192 * 16 * 4)


@pytest.mark.parametrize("dtype, conv_bits", [(torch.bfloat16, 16), (torch.float32, 32)])
def test_jamba_state_and_kv_equal_what_the_cache_allocates(dtype: torch.dtype, conv_bits: int) -> None:
    batch, tokens = 2, 5
    layers = _run_cache(TINY_JAMBA, dtype, batch, tokens)
    state, kv = _allocated(layers, dtype)
    arch = build_architecture(TINY_JAMBA)
    assert batch * state_bytes_per_sequence(arch, conv_bits, 32) == state
    assert batch * tokens * arch.kv_elements_per_token == kv
    assert [type(layer).__name__ for layer in layers] == ["LinearAttentionLayer", "DynamicLayer"] * 2
    assert layer_type_counts(arch) == {"linear_attention": 2, "full_attention": 2, "moe_mlp": 2, "dense_mlp": 2}


# Mamba 2 (4 heads x 16, 2 groups, state 8), attention, MLP, MoE (3 experts, latent 16)
TINY_NEMOTRON_H = {"model_type": "nemotron_h", "hidden_size": 32, "hybrid_override_pattern": "M*-EM*",
                   "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8, "intermediate_size": 48,
                   "mamba_num_heads": 4, "mamba_head_dim": 16, "n_groups": 2, "ssm_state_size": 8, "conv_kernel": 3,
                   "n_routed_experts": 3, "num_experts_per_tok": 2, "moe_intermediate_size": 16,
                   "moe_shared_expert_intermediate_size": 24, "moe_latent_size": 16, "vocab_size": 100,
                   "chunk_size": 4}


def test_real_nemotron_h_config_param_count_equals_transformers() -> None:
    cfg = preset_config("nemotron-3-nano-30b-a3b")
    arch = build_architecture(cfg)
    assert arch.params == meta_param_count(cfg) == 31_577_937_344
    assert layer_type_counts(arch) == {"linear_attention": 23, "moe": 23, "full_attention": 6,
                                       "moe_mlp": 23, "dense_mlp": 0}
    # 6 attention layers x K and V x 2 KV heads x 128 x 2 bytes
    assert kv_bytes_per_token(arch, resolve_kv_format("bf16")) == 6 * 2 * 2 * 128 * 2
    # 23 Mamba layers x (conv (4096 + 2 x 8 x 128) x 4 in bf16 + SSM 64 x 64 x 128 in fp32)
    assert state_bytes_per_sequence(arch) == 23 * ((4096 + 2 * 8 * 128) * 4 * 2 + 64 * 64 * 128 * 4)


@pytest.mark.parametrize("dtype, conv_bits", [(torch.bfloat16, 16), (torch.float32, 32)])
def test_nemotron_h_state_and_kv_equal_what_the_cache_allocates(dtype: torch.dtype, conv_bits: int) -> None:
    batch, tokens = 2, 5
    layers = _run_cache(TINY_NEMOTRON_H, dtype, batch, tokens)
    state, kv = _allocated(layers, dtype)
    arch = build_architecture(TINY_NEMOTRON_H)
    assert arch.params == meta_param_count(TINY_NEMOTRON_H)
    assert batch * state_bytes_per_sequence(arch, conv_bits, 32) == state
    assert batch * tokens * arch.kv_elements_per_token == kv
    assert layer_type_counts(arch) == {"linear_attention": 2, "full_attention": 2, "mlp": 1, "moe": 1,
                                       "moe_mlp": 1, "dense_mlp": 1}


def test_mlp_and_moe_blocks_hold_neither_state_nor_kv() -> None:
    """Pipeline stages: a stage of only MLP/MoE blocks carries no recurrent state."""
    arch = build_architecture(TINY_NEMOTRON_H)
    assert state_bytes_per_sequence(arch, layers=range(2, 4)) == 0          # "-" and "E"
    assert state_bytes_per_sequence(arch, layers=range(0, 1)) * 2 == state_bytes_per_sequence(arch)


# attention at 3 (full_attention_interval 4), MoE everywhere but layer 1 (mlp_only_layers)
TINY_QWEN3_NEXT = {"model_type": "qwen3_next", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
                   "num_key_value_heads": 2, "head_dim": 16, "intermediate_size": 96, "moe_intermediate_size": 32,
                   "shared_expert_intermediate_size": 48, "num_experts": 4, "num_experts_per_tok": 2,
                   "linear_num_key_heads": 2, "linear_num_value_heads": 4, "linear_key_head_dim": 8,
                   "linear_value_head_dim": 12, "linear_conv_kernel_dim": 4, "vocab_size": 100, "mlp_only_layers": [1]}


def test_real_qwen3_next_config_param_count_equals_transformers() -> None:
    cfg = preset_config("qwen3-next-80b-a3b")
    arch = build_architecture(cfg)
    # the total and active counts a public test states for this architecture (Qwen3-Coder-Next)
    assert arch.params == meta_param_count(cfg) == 79_674_391_296
    assert active_params(arch) == 3_874_929_408
    assert layer_type_counts(arch)["linear_attention"] == 36 and layer_type_counts(arch)["full_attention"] == 12
    # 12 attention layers x K and V x 2 KV heads x 256 x 2 bytes
    assert kv_bytes_per_token(arch, resolve_kv_format("bf16")) == 12 * 2 * 2 * 256 * 2


@pytest.mark.parametrize("dtype, conv_bits", [(torch.bfloat16, 16), (torch.float32, 32)])
def test_qwen3_next_state_and_kv_equal_what_the_cache_allocates(dtype: torch.dtype, conv_bits: int) -> None:
    batch, tokens = 2, 5
    layers = _run_cache(TINY_QWEN3_NEXT, dtype, batch, tokens)
    state, kv = _allocated(layers, dtype)
    arch = build_architecture(TINY_QWEN3_NEXT)
    assert arch.params == meta_param_count(TINY_QWEN3_NEXT)
    assert batch * state_bytes_per_sequence(arch, conv_bits, 32) == state
    assert batch * tokens * arch.kv_elements_per_token == kv


TINY_BAMBA = {"model_type": "bamba", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
              "num_key_value_heads": 2, "intermediate_size": 96, "vocab_size": 100, "mamba_n_heads": 4,
              "mamba_n_groups": 1, "mamba_d_state": 8, "mamba_d_conv": 4, "mamba_expand": 1,
              "attn_layer_indices": [1], "mamba_chunk_size": 16}
TINY_GRANITE_H = {"model_type": "granitemoehybrid", "hidden_size": 64, "num_hidden_layers": 4,
                  "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 96, "vocab_size": 100,
                  "num_local_experts": 4, "num_experts_per_tok": 2, "shared_intermediate_size": 48,
                  "mamba_n_heads": 4, "mamba_n_groups": 1, "mamba_d_state": 8, "mamba_d_conv": 4, "mamba_expand": 1,
                  "layer_types": ["mamba", "attention", "mamba", "mamba"], "mamba_chunk_size": 16}


@pytest.mark.parametrize("cfg", [TINY_BAMBA, TINY_GRANITE_H], ids=["bamba", "granitemoehybrid"])
@pytest.mark.parametrize("dtype, conv_bits", [(torch.bfloat16, 16), (torch.float32, 32)])
def test_ibm_hybrids_state_and_kv_equal_what_the_cache_allocates(cfg: dict, dtype: torch.dtype, conv_bits: int) -> None:
    batch, tokens = 2, 5
    layers = _run_cache(cfg, dtype, batch, tokens)
    state, kv = _allocated(layers, dtype)
    arch = build_architecture(cfg)
    assert arch.params == meta_param_count(cfg)
    assert batch * state_bytes_per_sequence(arch, conv_bits, 32) == state
    assert batch * tokens * arch.kv_elements_per_token == kv
    assert layer_type_counts(arch)["full_attention"] == 1 and layer_type_counts(arch)["linear_attention"] == 3


def test_deepseek_v3_mtp_layer_completes_the_checkpoint() -> None:
    """The Hub's safetensors summary of deepseek-ai/DeepSeek-V3 (quoted in public copies of
    its API response, code-index ids 67469160833 and 58758039937): BF16 3,918,786,560 and
    F8_E4M3 680,571,043,840 weights (F32 41,555,600 are the FP8 block scales).  The main model
    (params) and the MTP layer (params_mtp) together are exactly those weights."""
    arch = build_architecture(preset_config("deepseek-v3"))
    assert arch.params + arch.params_mtp == 3_918_786_560 + 680_571_043_840
    assert arch.params == meta_param_count(preset_config("deepseek-v3"))      # transformers builds no MTP


def test_kimi_k2_is_laid_out_as_deepseek_v3() -> None:
    """Moonshot's guide: Kimi K2 is DeepseekV3ForCausalLM under model_type kimi_k2."""
    tiny = {"hidden_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 4,
            "q_lora_rank": 16, "kv_lora_rank": 8, "qk_nope_head_dim": 8, "qk_rope_head_dim": 4, "v_head_dim": 8,
            "n_routed_experts": 4, "num_experts_per_tok": 2, "n_shared_experts": 1, "moe_intermediate_size": 16,
            "intermediate_size": 48, "first_k_dense_replace": 1, "vocab_size": 100, "n_group": 1, "topk_group": 1}
    kimi = build_architecture({"model_type": "kimi_k2", **tiny})
    assert kimi.params == meta_param_count({"model_type": "deepseek_v3", **tiny})
    assert kimi.attention == "mla" and kimi.num_experts == 4


TINY_MINIMAX = {"model_type": "minimax", "hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4,
                "num_key_value_heads": 2, "head_dim": 16, "intermediate_size": 32, "vocab_size": 100,
                "num_local_experts": 4, "num_experts_per_tok": 2, "block_size": 4}


@pytest.mark.parametrize("dtype, bits", [(torch.bfloat16, 16), (torch.float32, 32)])
def test_minimax_lightning_state_and_kv_equal_what_the_cache_allocates(dtype: torch.dtype, bits: int) -> None:
    """MiniMaxCache keeps each lightning layer's (heads, head_dim, head_dim) state in the
    model dtype (linear_cache) and K/V for the softmax layers only."""
    from transformers import AutoConfig, AutoModelForCausalLM

    kwargs = {k: v for k, v in TINY_MINIMAX.items() if k != "model_type"}
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model("minimax", **kwargs)).to(dtype).eval()
    with torch.no_grad():
        cache = model(torch.ones((2, 5), dtype=torch.long), use_cache=True).past_key_values
    state = sum(x.numel() * x.dtype.itemsize for x in cache.linear_cache if isinstance(x, torch.Tensor))
    kv = sum(layer.keys.numel() + layer.values.numel() for layer in cache.layers
             if getattr(layer, "keys", None) is not None and layer.keys.numel())
    arch = build_architecture(TINY_MINIMAX)
    assert arch.params == meta_param_count(TINY_MINIMAX)
    assert 2 * state_bytes_per_sequence(arch, bits, 32) == state
    assert 2 * 5 * arch.kv_elements_per_token == kv


TINY_FALCON_H1 = {"model_type": "falcon_h1", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                  "num_key_value_heads": 2, "intermediate_size": 96, "vocab_size": 100, "mamba_n_heads": 4,
                  "mamba_n_groups": 1, "mamba_d_state": 8, "mamba_d_conv": 4, "mamba_d_ssm": 128,
                  "mamba_chunk_size": 16}


@pytest.mark.parametrize("dtype, conv_bits", [(torch.bfloat16, 16), (torch.float32, 32)])
def test_falcon_h1_layers_keep_both_kv_and_state(dtype: torch.dtype, conv_bits: int) -> None:
    """Falcon-H1 runs attention and Mamba side by side: every layer caches K/V and a state."""
    batch, tokens = 2, 5
    layers = _run_cache(TINY_FALCON_H1, dtype, batch, tokens)
    state, kv = _allocated(layers, dtype)
    arch = build_architecture(TINY_FALCON_H1)
    assert arch.params == meta_param_count(TINY_FALCON_H1)
    assert batch * state_bytes_per_sequence(arch, conv_bits, 32) == state
    assert batch * tokens * arch.kv_elements_per_token == kv
    assert layer_type_counts(arch)["hybrid"] == 2


# Falcon-H1-0.5B's config.json as NVIDIA's Megatron-Bridge tests quote it (FALCON_H1_500M_CONFIG,
# tests/unit_tests/models/falcon_h1/test_falcon_h1_bridge.py at ebd91e974d0b2caba82fc91c09b47e77e2dd53fc),
# parts sizing reads. RECONSTRUCTED: the quote has no mamba_d_ssm, which transformers' FalconH1Config
# refuses without (24 heads do not divide mamba_expand x hidden = 2048); 1536 = mamba_n_heads x mamba_d_head,
# the value that file's own megatron_to_hf_config writes back (hf_config["mamba_d_ssm"] == heads x head_dim).
REAL_FALCON_H1_0_5B = {
    "model_type": "falcon_h1", "architectures": ["FalconH1ForCausalLM"], "attention_bias": False, "head_dim": 64,
    "hidden_act": "silu", "hidden_size": 1024, "intermediate_size": 2048, "mamba_chunk_size": 128,
    "mamba_conv_bias": True, "mamba_d_conv": 4, "mamba_d_head": 64, "mamba_d_state": 128, "mamba_expand": 2,
    "mamba_n_groups": 1, "mamba_n_heads": 24, "mamba_norm_before_gate": False, "mamba_proj_bias": False,
    "mamba_rms_norm": False, "mamba_use_mlp": True, "max_position_embeddings": 16384, "mlp_bias": False,
    "num_attention_heads": 8, "num_hidden_layers": 36, "num_key_value_heads": 2, "projectors_bias": False,
    "rms_norm_eps": 1e-5, "rope_theta": 1e11, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "vocab_size": 32784, "mamba_d_ssm": 1536,
}


def test_real_falcon_h1_config_param_count_equals_transformers() -> None:
    arch = build_architecture(REAL_FALCON_H1_0_5B)
    assert arch.params == meta_param_count(REAL_FALCON_H1_0_5B) == 521_411_104
    assert arch.params / 1e9 == pytest.approx(0.5, rel=0.05)          # the model's name: 0.5B
    assert layer_type_counts(arch) == {"hybrid": 36, "moe_mlp": 0, "dense_mlp": 36}
    # the quote as it stands (no mamba_d_ssm) is refused, as transformers refuses it, in one line
    incomplete = {k: v for k, v in REAL_FALCON_H1_0_5B.items() if k != "mamba_d_ssm"}
    with pytest.raises(Exception) as err:
        build_architecture(incomplete)
    assert "mamba_n_heads x mamba_d_head" in str(err.value) and "\n" not in str(err.value)


# Granite-4.0-H-Tiny's and Granite-4.0-H-1B's config.json, "verbatim from the published config.json
# (2026-08-24), minus the fields the importer does not read", as a public test module quotes them
# (GRANITE_H_TINY_HF, GRANITE_H_1B_HF; code-index id 65865534003, repository not resolvable here);
# unquoted fields (biases) keep GraniteMoeHybridConfig's defaults.
_GRANITE_LAYERS = (["mamba"] * 5 + ["attention"] + ["mamba"] * 9 + ["attention"] + ["mamba"] * 9 + ["attention"]
                   + ["mamba"] * 9 + ["attention"] + ["mamba"] * 4)
REAL_GRANITE_4_H_TINY = {
    "model_type": "granitemoehybrid", "hidden_size": 1536, "num_hidden_layers": 40, "num_attention_heads": 12,
    "num_key_value_heads": 4, "intermediate_size": 512, "shared_intermediate_size": 1024, "num_local_experts": 64,
    "num_experts_per_tok": 6, "vocab_size": 100352, "tie_word_embeddings": True, "mamba_d_state": 128,
    "mamba_n_groups": 1, "mamba_n_heads": 48, "mamba_d_head": 64, "mamba_expand": 2, "mamba_d_conv": 4,
    "mamba_chunk_size": 256, "max_position_embeddings": 131072, "layer_types": _GRANITE_LAYERS,
}
REAL_GRANITE_4_H_1B = {**REAL_GRANITE_4_H_TINY, "intermediate_size": 4096, "shared_intermediate_size": 4096,
                       "num_local_experts": 0, "num_experts_per_tok": 0}


def test_real_granite_4_h_configs_param_count_equals_transformers() -> None:
    tiny = build_architecture(REAL_GRANITE_4_H_TINY)
    assert tiny.params == meta_param_count(REAL_GRANITE_4_H_TINY) == 6_939_037_248
    assert tiny.params / 1e9 == pytest.approx(7, rel=0.02)            # IBM's model card: 7B
    assert layer_type_counts(tiny) == {"linear_attention": 36, "full_attention": 4, "moe_mlp": 40, "dense_mlp": 0}
    one = build_architecture(REAL_GRANITE_4_H_1B)
    assert one.params == meta_param_count(REAL_GRANITE_4_H_1B) == 1_461_538_368
    # no routed experts: the shared MLP is each layer's only, dense, MLP
    assert layer_type_counts(one) == {"linear_attention": 36, "full_attention": 4, "moe_mlp": 0, "dense_mlp": 40}
    assert active_params(one) == one.params


# MiniMax-M1's config.json as FastDeploy's tests quote it "(from HuggingFace)" (code-index id 59165385622;
# the same fields in a repository dump of the checkpoint's config.json, id 54036155376): MiniMax's own
# remote-code format, model_type minimax_m1, layers named by attn_type_list (0 lightning, 1 softmax).
REAL_MINIMAX_M1 = {
    "model_type": "minimax_m1", "architectures": ["MiniMaxM1ForCausalLM"], "hidden_size": 6144,
    "intermediate_size": 9216, "num_hidden_layers": 80, "num_attention_heads": 64, "num_key_value_heads": 8,
    "head_dim": 128, "vocab_size": 200064, "rope_theta": 10000000, "max_position_embeddings": 10240000,
    "rms_norm_eps": 1e-5, "hidden_act": "silu", "num_local_experts": 32, "num_experts_per_tok": 2,
    "attn_type_list": [0, 0, 0, 0, 0, 0, 0, 1] * 10, "tie_word_embeddings": False, "postnorm": True,
}


def test_real_minimax_m1_config_reads_attn_type_list() -> None:
    """transformers' MiniMaxConfig reads layer_types only (its default alternates); the same model in
    that format (MiniMaxAI's -hf conversions) lists the layers as attn_type_list does."""
    arch = build_architecture(REAL_MINIMAX_M1)
    as_hf = {**{k: v for k, v in REAL_MINIMAX_M1.items() if k not in ("attn_type_list", "architectures")},
             "model_type": "minimax",
             "layer_types": ["full_attention" if v else "linear_attention" for v in REAL_MINIMAX_M1["attn_type_list"]]}
    assert arch.params == meta_param_count(as_hf) == 456_089_655_296
    # MiniMax-Text-01 / M1 model cards: 456B total, 45.9B activated per token (the latter without the
    # embedding and lm_head, 2 x 200,064 x 6,144)
    assert arch.params / 1e9 == pytest.approx(456, rel=0.001)
    assert (active_params(arch) - 2 * 200_064 * 6_144) / 1e9 == pytest.approx(45.9, rel=0.005)
    assert layer_type_counts(arch) == {"linear_attention": 70, "full_attention": 10, "moe_mlp": 80, "dense_mlp": 0}
    assert arch.kv_elements_per_token == 2 * 10 * 8 * 128            # K and V of the 10 softmax layers only
    with pytest.raises(Exception) as err:
        build_architecture({**REAL_MINIMAX_M1, "attn_type_list": [0, 2] * 40})
    assert "attn_type_list" in str(err.value) and "\n" not in str(err.value)
