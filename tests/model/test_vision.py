"""Vision-language models: the whole model (text, vision tower, projector) against
``transformers`` itself.

Reference: ``AutoModelForImageTextToText.from_config`` on the meta device (transformers
5.24 in the test extra), ``model.parameters()`` deduplicated so tied weights count once.
Exact equality is required, for each family's config class defaults, the presets and
random small configs (hypothesis); ``params_vision`` is the parameters outside the
language model and its lm_head, read from transformers' own module names.
"""

from __future__ import annotations

import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rigsize.model.families import MULTIMODAL_MODEL_TYPES, build_architecture
from rigsize.model.inputs import preset_config, presets
from rigsize.model.vision import VISION_ROLES, vision_params

pytest.importorskip("transformers")


def _meta_model(config: dict):
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    cfg = dict(config)
    model_type = cfg.pop("model_type")
    cfg.pop("architectures", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf_config = AutoConfig.for_model(model_type, **cfg)
        with torch.device("meta"):
            return AutoModelForImageTextToText.from_config(hf_config)


def _counts(config: dict) -> tuple[int, int]:
    """(all parameters, those outside the language model and lm_head) of transformers' model."""
    model = _meta_model(config)
    total = sum(p.numel() for p in model.parameters())
    text = sum(p.numel() for n, p in model.named_parameters()
               if "language_model." in n or n.startswith("lm_head") or n.endswith(".lm_head.weight"))
    return total, total - text


def _assert_equal(cfg: dict) -> None:
    arch = build_architecture(cfg)
    total, vis = _counts(cfg)
    assert (arch.params, vision_params(arch.tensors)) == (total, vis), cfg


# ---- the config classes' defaults (each family's reference model) ----------------------

@pytest.mark.parametrize("model_type", MULTIMODAL_MODEL_TYPES)
def test_class_default_config_equals_transformers(model_type: str) -> None:
    from transformers import AutoConfig

    cfg = AutoConfig.for_model(model_type).to_dict()
    _assert_equal(cfg)
    assert vision_params(build_architecture(cfg).tensors) > 0


# ---- presets ----------------------------------------------------------------------------

def _vlm_presets() -> list[str]:
    return sorted(n for n in presets() if preset_config(n).get("model_type") in MULTIMODAL_MODEL_TYPES)


@pytest.mark.parametrize("name", _vlm_presets())
def test_vlm_preset_equals_transformers(name: str) -> None:
    _assert_equal(preset_config(name))


def test_text_only_presets_have_no_vision_params() -> None:
    for name in ("llama-3.1-8b", "qwen2.5-7b", "gemma-3-1b", "mixtral-8x7b"):
        arch = build_architecture(preset_config(name))
        assert vision_params(arch.tensors) == 0
        assert not any(t.role in VISION_ROLES for t in arch.tensors)


# ---- random small configs of every family ------------------------------------------------

_w = st.sampled_from([32, 64])


@st.composite
def _text(draw: st.DrawFn, model_type: str) -> dict:
    heads = draw(st.sampled_from([2, 4]))
    kv = draw(st.sampled_from([k for k in (1, 2, 4) if heads % k == 0]))
    cfg = {"model_type": model_type, "hidden_size": heads * 16, "num_attention_heads": heads,
           "num_key_value_heads": kv, "num_hidden_layers": draw(st.integers(1, 3)),
           "intermediate_size": draw(_w), "vocab_size": draw(st.integers(50, 300)), "max_position_embeddings": 256}
    if model_type in ("qwen3_vl_text", "qwen3_vl_moe_text", "gemma3_text", "mistral", "qwen2", "qwen3"):
        cfg["head_dim"] = draw(st.sampled_from([8, 16]))
    if model_type in ("qwen3_vl_text", "qwen3_vl_moe_text", "mistral", "llama", "qwen3"):
        cfg["attention_bias"] = draw(st.booleans())
    if model_type == "qwen3_vl_moe_text":
        n = cfg["num_hidden_layers"]
        cfg.update(num_experts=draw(st.integers(2, 4)), num_experts_per_tok=2, moe_intermediate_size=draw(_w),
                   decoder_sparse_step=draw(st.integers(1, 2)),
                   mlp_only_layers=draw(st.lists(st.integers(0, n - 1), max_size=2, unique=True)))
    if model_type == "glm4v_moe_text":
        cfg.update(n_routed_experts=draw(st.integers(2, 4)), num_experts_per_tok=2, n_group=1, topk_group=1,
                   moe_intermediate_size=draw(_w), first_k_dense_replace=draw(st.integers(0, 2)),
                   n_shared_experts=draw(st.integers(0, 2)), attention_bias=draw(st.booleans()))
    if model_type == "gemma3_text":
        cfg.update(sliding_window=16)
    if model_type == "llama4_text":
        cfg.update(intermediate_size_mlp=draw(_w), num_local_experts=draw(st.integers(2, 3)), num_experts_per_tok=1,
                   interleave_moe_layer_step=draw(st.integers(1, 2)), head_dim=16)
    if model_type in ("qwen2_5_vl_text", "qwen3_vl_text", "qwen3_vl_moe_text", "glm4v_text", "glm4v_moe_text"):
        cfg["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}
    return cfg


@st.composite
def _vlm(draw: st.DrawFn, model_type: str) -> dict:
    vh = draw(st.sampled_from([2, 4])) * 16           # vision width (heads x 16)
    vheads = vh // 16
    depth, vi = draw(st.integers(1, 3)), draw(_w)
    tie = {"tie_word_embeddings": draw(st.booleans())} if draw(st.booleans()) else {}
    if model_type == "qwen2_5_vl":
        text = draw(_text("qwen2_5_vl_text"))
        vision = {"depth": depth, "hidden_size": vh, "num_heads": vheads, "intermediate_size": vi,
                  "patch_size": draw(st.sampled_from([2, 4])), "spatial_merge_size": draw(st.sampled_from([1, 2])),
                  "temporal_patch_size": draw(st.sampled_from([1, 2])), "out_hidden_size": text["hidden_size"],
                  "fullatt_block_indexes": [0]}
        if draw(st.booleans()):   # the Hub's flat layout: text fields at the top level
            text.pop("model_type")
            return {"model_type": model_type, **text, "vision_config": vision, **tie}
        return {"model_type": model_type, "text_config": text, "vision_config": vision, **tie}
    if model_type in ("qwen3_vl", "qwen3_vl_moe"):
        text = draw(_text(f"{model_type}_text"))
        vision = {"depth": depth, "hidden_size": vh, "num_heads": vheads, "intermediate_size": vi,
                  "patch_size": draw(st.sampled_from([2, 4])), "spatial_merge_size": draw(st.sampled_from([1, 2])),
                  "out_hidden_size": text["hidden_size"], "num_position_embeddings": draw(st.sampled_from([16, 64])),
                  "deepstack_visual_indexes": draw(st.lists(st.integers(0, depth - 1), max_size=depth, unique=True))}
        return {"model_type": model_type, "text_config": text, "vision_config": vision, **tie}
    if model_type in ("glm4v", "glm4v_moe", "glm46v"):
        text = draw(_text("glm4v_moe_text" if model_type == "glm4v_moe" else "glm4v_text"))
        vision = {"depth": depth, "hidden_size": vh, "num_heads": vheads, "intermediate_size": vi,
                  "patch_size": 4, "image_size": draw(st.sampled_from([16, 32])),
                  "spatial_merge_size": draw(st.sampled_from([1, 2])), "out_hidden_size": text["hidden_size"],
                  "attention_bias": draw(st.booleans())}
        return {"model_type": model_type, "text_config": text, "vision_config": vision, **tie}
    if model_type == "gemma3":
        text = draw(_text("gemma3_text"))
        vision = {"model_type": "siglip_vision_model", "hidden_size": vh, "num_attention_heads": vheads,
                  "num_hidden_layers": depth, "intermediate_size": vi, "patch_size": 4, "image_size": 16,
                  "vision_use_head": draw(st.booleans())}
        return {"model_type": model_type, "text_config": text, "vision_config": vision, "mm_tokens_per_image": 4,
                **tie}
    if model_type == "llama4":
        text = draw(_text("llama4_text"))
        vision = {"hidden_size": vh, "num_attention_heads": vheads, "num_hidden_layers": depth,
                  "intermediate_size": vi, "patch_size": 4, "image_size": 16,
                  "vision_output_dim": draw(_w), "projector_input_dim": draw(_w), "projector_output_dim": draw(_w)}
        return {"model_type": model_type, "text_config": text, "vision_config": vision, **tie}
    if model_type == "mistral3":
        text = draw(_text("mistral"))
        vision = {"model_type": "pixtral", "hidden_size": vh, "num_attention_heads": vheads, "head_dim": 16,
                  "num_hidden_layers": depth, "intermediate_size": vi, "patch_size": 4, "image_size": 32}
        feature = draw(st.sampled_from([-1, [-1, -2]]))
        return {"model_type": model_type, "text_config": text, "vision_config": vision,
                "spatial_merge_size": draw(st.sampled_from([1, 2])), "vision_feature_layer": feature,
                "multimodal_projector_bias": draw(st.booleans()), **tie}
    if model_type == "internvl":
        text = draw(_text(draw(st.sampled_from(["qwen2", "qwen3", "llama"]))))
        vision = {"model_type": "internvl_vision", "hidden_size": vh, "num_attention_heads": vheads,
                  "num_hidden_layers": depth, "intermediate_size": vi, "patch_size": [4, 4], "image_size": [16, 16],
                  "attention_bias": draw(st.booleans()), "use_qk_norm": draw(st.booleans()),
                  "norm_type": draw(st.sampled_from(["layer_norm", "rms_norm"])),
                  "use_mean_pooling": draw(st.booleans()), "use_mask_token": draw(st.booleans()),
                  "use_absolute_position_embeddings": draw(st.booleans())}
        return {"model_type": model_type, "text_config": text, "vision_config": vision,
                "downsample_ratio": draw(st.sampled_from([0.5, 1.0])), **tie}
    raise AssertionError(model_type)


@pytest.mark.parametrize("model_type", MULTIMODAL_MODEL_TYPES)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_config_equals_transformers(model_type: str, data: st.DataObject) -> None:
    _assert_equal(data.draw(_vlm(model_type)))
