"""Vision-language models: the vision tower and the projector into the text model, as
``transformers`` (5.x) builds them in each family's ``ForConditionalGeneration``.

``text_config`` takes the text config out of a multimodal one, typed for a text builder
(``llama_like``: Qwen 2/3, Gemma 3, Llama 4, Mistral, GLM-4); ``tower`` lays out the
vision tower's and projector's tensors from the family's vision config with the config
classes' defaults.  ``sum(t.numel)`` over text and vision rows equals the parameters of
``AutoModelForImageTextToText.from_config(config)`` on the meta device;
``tests/model/test_vision.py`` checks it on real and random configs of each family.

The rows carry role ``vision`` (the tower) or ``vision_proj`` (the projector and the
towers' own mergers), ``layer`` None: they are no decoder layer, run once per image
rather than per token, and are stored unquantized by the quantizers rigsize prices
(their roles are not in any format's ``quantized_roles``).  Serving memory shards them
by tp like the text model's matrices (``memory.per_gpu.shard_factor``'s default; vLLM's
towers use column/row-parallel linears, their norms and embeddings replicated, which
is not told apart here) and holds them on the last pipeline stage (its default for
layer-less rows; SGLang builds Qwen2.5-VL's tower on the first pp rank only, and vLLM
builds a tower only when the image/video limit per prompt is not 0, neither modelled
there yet).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rigsize.errors import InputError, ModelError
from rigsize.model.hf_config import Config, whole_number
from rigsize.model.tensors import Role, Tensor
from rigsize.planning import limits

VISION_ROLES: frozenset[str] = frozenset({"vision", "vision_proj"})
"""Roles of the vision tower (``vision``) and the projector into the text model (``vision_proj``)."""

_Rows = list[Tensor]


def _lin(rows: _Rows, name: str, out_f: int, in_f: int, bias: bool, role: Role = "vision") -> None:
    rows.append(Tensor(f"{name}.weight", role, (out_f, in_f)))
    if bias:
        rows.append(Tensor(f"{name}.bias", role, (out_f,)))


def _norm(rows: _Rows, name: str, width: int, bias: bool, role: Role = "vision") -> None:
    rows.append(Tensor(f"{name}.weight", role, (width,)))
    if bias:
        rows.append(Tensor(f"{name}.bias", role, (width,)))


def _gated_blocks(rows: _Rows, depth: int, h: int, inter: int, qkv_bias: bool, bias: bool) -> None:
    """``depth`` tower blocks ``model.visual.blocks.{i}`` as Qwen2.5-VL and GLM-4V build them: norm1 and
    norm2 (RMSNorm), a fused qkv and proj, a gate/up/down MLP of ``inter``; ``bias`` on proj and the MLP."""
    for i in range(depth):
        b = f"model.visual.blocks.{i}"
        _norm(rows, f"{b}.norm1", h, False)
        _norm(rows, f"{b}.norm2", h, False)
        _lin(rows, f"{b}.attn.qkv", 3 * h, h, qkv_bias)
        _lin(rows, f"{b}.attn.proj", h, h, bias)
        for name, o, i_ in (("gate_proj", inter, h), ("up_proj", inter, h), ("down_proj", h, inter)):
            _lin(rows, f"{b}.mlp.{name}", o, i_, bias)


def _side(v: Config, key: str, default: int) -> tuple[int, int]:
    """An image or patch size: one int (square) or ``[height, width]`` (InternVL)."""
    value = v.get(key, default)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return whole_number(key, value[0]), whole_number(key, value[1])
    n = whole_number(key, value)
    return n, n


def _grid(v: Config, image_default: int, patch_default: int) -> int:
    """Patches per image side x side: (image // patch) per axis, as the embeddings size them."""
    (ih, iw), (ph, pw) = _side(v, "image_size", image_default), _side(v, "patch_size", patch_default)
    return (ih // ph) * (iw // pw)


def _width(v: Config, key: str, default: int | None = None) -> int:
    return v.int(key, default=default, maximum=limits.MAX_HIDDEN)


# ----------------------------------------------------------------------------------
# Towers
# ----------------------------------------------------------------------------------

def _qwen2_5_vl(v: Config, outer: Config, text_h: int) -> _Rows:
    """modeling_qwen2_5_vl.py: Conv3d patch embedding (no bias), blocks of RMSNorm, fused
    biased qkv and proj, a biased SwiGLU MLP; the PatchMerger (RMSNorm, two linears over
    spatial_merge_size^2 patches) is the projector."""
    h, depth, inter = _width(v, "hidden_size", 3584), v.int("depth", default=32, maximum=limits.MAX_LAYERS), \
        _width(v, "intermediate_size", 3420)
    p, t, ch = v.int("patch_size", default=14), v.int("temporal_patch_size", default=2), v.int("in_channels", default=3)
    m = v.int("spatial_merge_size", default=2)
    out = _width(v, "out_hidden_size", 3584)
    rows = [Tensor("model.visual.patch_embed.proj.weight", "vision", (h, ch, t, p, p))]
    _gated_blocks(rows, depth, h, inter, qkv_bias=True, bias=True)
    _norm(rows, "model.visual.merger.ln_q", h, False, "vision_proj")
    _lin(rows, "model.visual.merger.mlp.0", h * m * m, h * m * m, True, "vision_proj")
    _lin(rows, "model.visual.merger.mlp.2", out, h * m * m, True, "vision_proj")
    return rows


def _qwen3_vl_merger(rows: _Rows, name: str, h: int, m: int, out: int, postshuffle: bool) -> None:
    """Qwen3VLVisionPatchMerger: LayerNorm (over h, or h*m^2 after the shuffle), fc1, fc2."""
    _norm(rows, f"{name}.norm", h * m * m if postshuffle else h, True, "vision_proj")
    _lin(rows, f"{name}.linear_fc1", h * m * m, h * m * m, True, "vision_proj")
    _lin(rows, f"{name}.linear_fc2", out, h * m * m, True, "vision_proj")


def _qwen3_vl(v: Config, outer: Config, text_h: int) -> _Rows:
    """modeling_qwen3_vl.py (and qwen3_vl_moe, the same tower): biased Conv3d patches, a
    learned position table, LayerNorm blocks with biased qkv/proj and a biased 2-layer
    MLP, the merger, and one DeepStack merger per ``deepstack_visual_indexes`` entry."""
    h, depth, inter = _width(v, "hidden_size", 1152), v.int("depth", default=27, maximum=limits.MAX_LAYERS), \
        _width(v, "intermediate_size", 4304)
    p, t, ch = v.int("patch_size", default=16), v.int("temporal_patch_size", default=2), v.int("in_channels", default=3)
    m, out = v.int("spatial_merge_size", default=2), _width(v, "out_hidden_size", 3584)
    rows = [Tensor("model.visual.patch_embed.proj.weight", "vision", (h, ch, t, p, p)),
            Tensor("model.visual.patch_embed.proj.bias", "vision", (h,)),
            Tensor("model.visual.pos_embed.weight", "vision", (v.int("num_position_embeddings", default=2304), h))]
    for i in range(depth):
        b = f"model.visual.blocks.{i}"
        _norm(rows, f"{b}.norm1", h, True)
        _norm(rows, f"{b}.norm2", h, True)
        _lin(rows, f"{b}.attn.qkv", 3 * h, h, True)
        _lin(rows, f"{b}.attn.proj", h, h, True)
        _lin(rows, f"{b}.mlp.linear_fc1", inter, h, True)
        _lin(rows, f"{b}.mlp.linear_fc2", h, inter, True)
    _qwen3_vl_merger(rows, "model.visual.merger", h, m, out, False)
    deepstack = v.get("deepstack_visual_indexes", (8, 16, 24))
    for j in range(len(deepstack)):
        _qwen3_vl_merger(rows, f"model.visual.deepstack_merger_list.{j}", h, m, out, True)
    return rows


def _glm4v(v: Config, outer: Config, text_h: int) -> _Rows:
    """modeling_glm4v.py (glm4v_moe and glm46v build the same tower): a learned position
    table, biased Conv3d patches, RMSNorm blocks (qkv bias = attention_bias, proj without)
    with a SwiGLU MLP out_hidden_size wide, post-conv RMSNorm, a Conv2d downsample over
    spatial_merge_size^2 patches, and the merger (proj, LayerNorm, SwiGLU intermediate_size)."""
    h, depth = _width(v, "hidden_size", 1536), v.int("depth", default=24, maximum=limits.MAX_LAYERS)
    inter, out = _width(v, "intermediate_size", 13696), _width(v, "out_hidden_size", 4096)
    p, t, ch = v.int("patch_size", default=14), v.int("temporal_patch_size", default=2), v.int("in_channels", default=3)
    m, qkv_bias = v.int("spatial_merge_size", default=2), v.bool("attention_bias", False)
    rows = [Tensor("model.visual.embeddings.position_embedding.weight", "vision", (_grid(v, 336, 14), h)),
            Tensor("model.visual.patch_embed.proj.weight", "vision", (h, ch, t, p, p)),
            Tensor("model.visual.patch_embed.proj.bias", "vision", (h,))]
    _gated_blocks(rows, depth, h, out, qkv_bias=qkv_bias, bias=False)
    _norm(rows, "model.visual.post_conv_layernorm", h, False)
    rows += [Tensor("model.visual.downsample.weight", "vision", (out, h, m, m)),
             Tensor("model.visual.downsample.bias", "vision", (out,))]
    _norm(rows, "model.visual.post_layernorm", h, False)
    _lin(rows, "model.visual.merger.proj", out, out, False, "vision_proj")
    _norm(rows, "model.visual.merger.post_projection_norm", out, True, "vision_proj")
    for name, o, i_ in (("gate_proj", inter, out), ("up_proj", inter, out), ("down_proj", out, inter)):
        _lin(rows, f"model.visual.merger.{name}", o, i_, False, "vision_proj")
    return rows


def _siglip_layer(rows: _Rows, b: str, h: int, inter: int) -> None:
    """SiglipEncoderLayer (modeling_siglip.py): LayerNorms, biased q/k/v/out, biased fc1/fc2."""
    _norm(rows, f"{b}.layer_norm1", h, True)
    for name in ("k_proj", "v_proj", "q_proj", "out_proj"):
        _lin(rows, f"{b}.self_attn.{name}", h, h, True)
    _norm(rows, f"{b}.layer_norm2", h, True)
    _lin(rows, f"{b}.mlp.fc1", inter, h, True)
    _lin(rows, f"{b}.mlp.fc2", h, inter, True)


def _gemma3(v: Config, outer: Config, text_h: int) -> _Rows:
    """Gemma3ForConditionalGeneration: a SigLIP vision model (modeling_siglip.py,
    SiglipVisionConfig defaults; the attention-pooling head only with vision_use_head)
    and Gemma3MultiModalProjector (one h_vision x h_text matrix and an RMSNorm)."""
    if v.model_type not in ("", "siglip_vision_model"):
        raise ModelError("model.unsupported_type", model_type=f"gemma3 vision_config {v.model_type}",
                         supported="siglip_vision_model")
    h, inter = _width(v, "hidden_size", 768), _width(v, "intermediate_size", 3072)
    layers, ch = v.int("num_hidden_layers", default=12, maximum=limits.MAX_LAYERS), v.int("num_channels", default=3)
    p = _side(v, "patch_size", 16)
    pre = "model.vision_tower"
    rows = [Tensor(f"{pre}.embeddings.patch_embedding.weight", "vision", (h, ch, *p)),
            Tensor(f"{pre}.embeddings.patch_embedding.bias", "vision", (h,)),
            Tensor(f"{pre}.embeddings.position_embedding.weight", "vision", (_grid(v, 224, 16), h))]
    for i in range(layers):
        _siglip_layer(rows, f"{pre}.encoder.layers.{i}", h, inter)
    _norm(rows, f"{pre}.post_layernorm", h, True)
    if v.bool("vision_use_head", True):   # SiglipMultiheadAttentionPoolingHead
        rows.append(Tensor(f"{pre}.head.probe", "vision", (1, 1, h)))
        rows += [Tensor(f"{pre}.head.attention.in_proj_weight", "vision", (3 * h, h)),
                 Tensor(f"{pre}.head.attention.in_proj_bias", "vision", (3 * h,))]
        _lin(rows, f"{pre}.head.attention.out_proj", h, h, True)
        _norm(rows, f"{pre}.head.layernorm", h, True)
        _lin(rows, f"{pre}.head.mlp.fc1", inter, h, True)
        _lin(rows, f"{pre}.head.mlp.fc2", h, inter, True)
    rows += [Tensor("model.multi_modal_projector.mm_input_projection_weight", "vision_proj", (h, text_h)),
             Tensor("model.multi_modal_projector.mm_soft_emb_norm.weight", "vision_proj", (h,))]
    return rows


def _llama4(v: Config, outer: Config, text_h: int) -> _Rows:
    """modeling_llama4.py: Llama4VisionModel (unfold + linear patch embedding, class token,
    position table over (image/patch)^2 + 1, pre/post LayerNorms, biased attention and
    fc1/fc2, LayerNorms), its pixel-shuffle adapter (two linears) and the projector."""
    h, inter = _width(v, "hidden_size", 768), _width(v, "intermediate_size", 5632)
    layers, ch = v.int("num_hidden_layers", default=34, maximum=limits.MAX_LAYERS), v.int("num_channels", default=3)
    heads, p = v.int("num_attention_heads", default=16), v.int("patch_size", default=14)
    qkv = heads * (h // heads)
    pre = "vision_model"
    rows = [Tensor(f"{pre}.class_embedding", "vision", (h,)),
            Tensor(f"{pre}.positional_embedding_vlm", "vision", (_grid(v, 448, 14) + 1, h)),
            Tensor(f"{pre}.patch_embedding.linear.weight", "vision", (h, ch * p * p))]
    _norm(rows, f"{pre}.layernorm_pre", h, True)
    _norm(rows, f"{pre}.layernorm_post", h, True)
    for i in range(layers):
        b = f"{pre}.model.layers.{i}"
        for name in ("q_proj", "k_proj", "v_proj"):
            _lin(rows, f"{b}.self_attn.{name}", qkv, h, True)
        _lin(rows, f"{b}.self_attn.o_proj", h, qkv, True)
        _lin(rows, f"{b}.mlp.fc1", inter, h, True)
        _lin(rows, f"{b}.mlp.fc2", h, inter, True)
        _norm(rows, f"{b}.input_layernorm", h, True)
        _norm(rows, f"{b}.post_attention_layernorm", h, True)
    p_in, p_out = _width(v, "projector_input_dim", 4096), _width(v, "projector_output_dim", 4096)
    _lin(rows, f"{pre}.vision_adapter.mlp.fc1", p_in, inter, False, "vision_proj")
    _lin(rows, f"{pre}.vision_adapter.mlp.fc2", p_out, p_out, False, "vision_proj")
    _lin(rows, "multi_modal_projector.linear_1", text_h, _width(v, "vision_output_dim", 7680), False, "vision_proj")
    return rows


# Mistral3Config.sub_configs_defaults["vision_config"] init_kwargs (configuration_mistral3.py)
_PIXTRAL_DEFAULTS = {"intermediate_size": 4096, "hidden_size": 1024, "patch_size": 14,
                     "num_hidden_layers": 24, "num_attention_heads": 16}


def _mistral3(v: Config, outer: Config, text_h: int) -> _Rows:
    """Mistral3ForConditionalGeneration: a Pixtral vision model (modeling_pixtral.py: Conv2d
    patches without bias, RMSNorms, bias-free attention and SwiGLU) and
    Mistral3MultiModalProjector (RMSNorm, patch merger over spatial_merge_size^2 patches,
    two linears with multimodal_projector_bias)."""
    if v.model_type not in ("", "pixtral"):
        raise ModelError("model.unsupported_type", model_type=f"mistral3 vision_config {v.model_type}",
                         supported="pixtral")
    v = Config({**_PIXTRAL_DEFAULTS, **{k: x for k, x in v.raw.items() if x is not None}})
    h, inter = _width(v, "hidden_size"), _width(v, "intermediate_size")
    layers, ch = v.int("num_hidden_layers", maximum=limits.MAX_LAYERS), v.int("num_channels", default=3)
    p = _side(v, "patch_size", 14)
    pre = "model.vision_tower"
    rows = [Tensor(f"{pre}.patch_conv.weight", "vision", (h, ch, *p))]
    _norm(rows, f"{pre}.ln_pre", h, False)
    for i in range(layers):
        b = f"{pre}.transformer.layers.{i}"
        _norm(rows, f"{b}.attention_norm", h, False)
        for name, o, i_ in (("gate_proj", inter, h), ("up_proj", inter, h), ("down_proj", h, inter)):
            _lin(rows, f"{b}.feed_forward.{name}", o, i_, False)
        for name in ("k_proj", "v_proj", "q_proj", "o_proj"):
            _lin(rows, f"{b}.attention.{name}", h, h, False)
        _norm(rows, f"{b}.ffn_norm", h, False)
    m = outer.int("spatial_merge_size", default=2)
    feature = outer.get("vision_feature_layer", -1)
    n_feature = 1 if isinstance(feature, int) else len(feature)
    bias = outer.bool("multimodal_projector_bias", False)
    _norm(rows, "model.multi_modal_projector.norm", h, False, "vision_proj")
    _lin(rows, "model.multi_modal_projector.patch_merger.merging_layer", h, h * m * m, False, "vision_proj")
    _lin(rows, "model.multi_modal_projector.linear_1", text_h, h * n_feature, bias, "vision_proj")
    _lin(rows, "model.multi_modal_projector.linear_2", text_h, text_h, bias, "vision_proj")
    return rows


def _internvl(v: Config, outer: Config, text_h: int) -> _Rows:
    """modeling_internvl.py: InternViT (class token, optional mask token and absolute
    positions, biased Conv2d patches; layers with q/k/v (attention_bias), a biased output
    projection, optional q/k RMSNorms, LayerNorm or RMSNorm, layer-scale vectors; a final
    LayerNorm unless use_mean_pooling) and the projector (LayerNorm and two biased linears
    over the pixel-shuffled 1/downsample_ratio^2 patches)."""
    if v.model_type not in ("", "internvl_vision"):
        raise ModelError("model.unsupported_type", model_type=f"internvl vision_config {v.model_type}",
                         supported="internvl_vision")
    h, inter = _width(v, "hidden_size", 1024), _width(v, "intermediate_size", 4096)
    layers, ch = v.int("num_hidden_layers", default=24, maximum=limits.MAX_LAYERS), v.int("num_channels", default=3)
    p = _side(v, "patch_size", 14)
    qkv_bias, qk_norm = v.bool("attention_bias", False), v.bool("use_qk_norm", False)
    norm_type = v.get("norm_type", "layer_norm")
    if norm_type not in ("layer_norm", "rms_norm"):
        raise ModelError("model.bad_field", field="vision_config.norm_type", value=norm_type,
                         why="must be layer_norm or rms_norm")
    pre = "model.vision_tower"
    rows = [Tensor(f"{pre}.embeddings.cls_token", "vision", (1, 1, h))]
    if v.bool("use_mask_token", False):
        rows.append(Tensor(f"{pre}.embeddings.mask_token", "vision", (1, 1, h)))
    rows += [Tensor(f"{pre}.embeddings.patch_embeddings.projection.weight", "vision", (h, ch, *p)),
             Tensor(f"{pre}.embeddings.patch_embeddings.projection.bias", "vision", (h,))]
    if v.bool("use_absolute_position_embeddings", True):
        rows.append(Tensor(f"{pre}.embeddings.position_embeddings", "vision", (1, _grid(v, 448, 14) + 1, h)))
    for i in range(layers):
        b = f"{pre}.encoder.layer.{i}"
        for name in ("q_proj", "k_proj", "v_proj"):
            _lin(rows, f"{b}.attention.{name}", h, h, qkv_bias)
        _lin(rows, f"{b}.attention.projection_layer", h, h, True)
        if qk_norm:
            _norm(rows, f"{b}.attention.q_norm", h, False)
            _norm(rows, f"{b}.attention.k_norm", h, False)
        _lin(rows, f"{b}.mlp.fc1", inter, h, True)
        _lin(rows, f"{b}.mlp.fc2", h, inter, True)
        _norm(rows, f"{b}.layernorm_before", h, norm_type == "layer_norm")
        _norm(rows, f"{b}.layernorm_after", h, norm_type == "layer_norm")
        rows += [Tensor(f"{b}.lambda_1", "vision", (h,)), Tensor(f"{b}.lambda_2", "vision", (h,))]
    if not v.bool("use_mean_pooling", True):
        _norm(rows, f"{pre}.layernorm", h, True)
    ratio = outer.get("downsample_ratio", 0.5)
    if not isinstance(ratio, (int, float)) or isinstance(ratio, bool) or not 0 < ratio <= 1:
        raise ModelError("model.bad_field", field="downsample_ratio", value=ratio, why="must be in (0, 1]")
    merged = h * int(1 / ratio) ** 2
    _norm(rows, "model.multi_modal_projector.layer_norm", merged, True, "vision_proj")
    _lin(rows, "model.multi_modal_projector.linear_1", text_h, merged, True, "vision_proj")
    _lin(rows, "model.multi_modal_projector.linear_2", text_h, text_h, True, "vision_proj")
    return rows


# ----------------------------------------------------------------------------------
# Wrappers: where each family keeps its text config and how tying is decided
# ----------------------------------------------------------------------------------

# text config model_type -> (the rigsize text builder's model_type, fields its modeling
# file fixes whatever the config says): Glm4vTextAttention has head_dim = hidden // heads and
# biased q/k/v; Glm4vMoeTextAttention has no q/k norms and head_dim = getattr(config,
# "head_dim", hidden // heads).
_TEXT_TYPES: dict[str, tuple[str, Callable[[Mapping[str, Any]], dict[str, Any]]]] = {
    "qwen2_5_vl_text": ("qwen2", lambda t: {}),
    "qwen3_vl_text": ("qwen3", lambda t: {}),
    "qwen3_vl_moe_text": ("qwen3_moe", lambda t: {}),
    "glm4v_text": ("glm4", lambda t: {"attention_bias": True, "head_dim": _head_dim(t)}),
    "glm4v_moe_text": ("glm4_moe", lambda t: {"use_qk_norm": False, "head_dim": t.get("head_dim") or _head_dim(t)}),
    "gemma3_text": ("gemma3_text", lambda t: {}),
    "llama4_text": ("llama4_text", lambda t: {}),
}


def _head_dim(t: Mapping[str, Any]) -> int | None:
    h, nh = t.get("hidden_size"), t.get("num_attention_heads")
    return h // nh if isinstance(h, int) and isinstance(nh, int) and 0 < nh <= h else None


@dataclass(frozen=True)
class _Wrapper:
    """One ``ForConditionalGeneration`` family (configuration_<family>.py)."""

    tower: Callable[[Config, Config, int], _Rows]
    text_type: str                  # the text_config's model_type when it names none
    tie_default: bool               # the outer config class's tie_word_embeddings default
    text_tie: bool = False          # the BC hook: a text_config tie_word_embeddings true ties too
    inner_head: bool = False        # the lm_head is the text model's own (Llama4ForCausalLM): its config ties
    flat_text: bool = False         # Hub configs keep the text fields at the top level
    text_defaults: tuple[tuple[str, Any], ...] = ()   # the text config class's defaults rigsize needs


# tie defaults: configuration_qwen2_5_vl.py / qwen3_vl / qwen3_vl_moe / glm4v / glm4v_moe
# (False, with the pre-v5 text_config hook in qwen2_5_vl and glm4v*), gemma3 / internvl /
# mistral3 (True); llama4: Llama4ForConditionalGeneration holds a Llama4ForCausalLM, whose
# Llama4TextConfig (default False) decides, whatever the outer config says
_WRAPPERS: dict[str, _Wrapper] = {
    "qwen2_5_vl": _Wrapper(_qwen2_5_vl, "qwen2_5_vl_text", False, text_tie=True, flat_text=True,
                           text_defaults=(("num_key_value_heads", 8),)),
    "qwen3_vl": _Wrapper(_qwen3_vl, "qwen3_vl_text", False),
    "qwen3_vl_moe": _Wrapper(_qwen3_vl, "qwen3_vl_moe_text", False, text_defaults=(("num_key_value_heads", 16),)),
    "glm4v": _Wrapper(_glm4v, "glm4v_text", False, text_tie=True),
    "glm4v_moe": _Wrapper(_glm4v, "glm4v_moe_text", False, text_tie=True),
    "glm46v": _Wrapper(_glm4v, "glm4v_text", False),
    "gemma3": _Wrapper(_gemma3, "gemma3_text", True),
    "llama4": _Wrapper(_llama4, "llama4_text", False, inner_head=True),
    "mistral3": _Wrapper(_mistral3, "mistral", True),
    "internvl": _Wrapper(_internvl, "qwen2", True),
}

MODEL_TYPES: tuple[str, ...] = tuple(_WRAPPERS)


def text_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The text config of multimodal ``raw``, typed for a rigsize text builder, with the
    family's tie rule applied (the lm_head belongs to the outer model in transformers 5)."""
    wrapper = _WRAPPERS[str(raw["model_type"])]
    text_raw = raw.get("text_config")
    if text_raw is None and wrapper.flat_text:
        text_raw = {k: x for k, x in raw.items() if k not in ("vision_config", "model_type", "architectures")}
    if text_raw is None:
        text_raw = {}
    if not isinstance(text_raw, Mapping):
        raise ModelError("model.bad_field", field="text_config", value=type(text_raw).__name__, why="must be an object")
    text = dict(text_raw)
    text_type = str(text.get("model_type") or wrapper.text_type)
    if text_type == raw["model_type"]:
        text_type = wrapper.text_type
    builder_type, fixed = _TEXT_TYPES.get(text_type, (text_type, lambda t: {}))
    for key, value in wrapper.text_defaults:
        text.setdefault(key, value)
    text.update(fixed(text))
    tied = Config(text if wrapper.inner_head else raw).bool("tie_word_embeddings", wrapper.tie_default)
    if wrapper.text_tie and not tied and text.get("tie_word_embeddings") is True:
        tied = True
    text.update(model_type=builder_type, tie_word_embeddings=tied)
    return text


def tower(raw: Mapping[str, Any], text_hidden: int) -> tuple[Tensor, ...]:
    """The vision tower's and projector's tensors of multimodal ``raw``, projecting into
    a text model ``text_hidden`` wide."""
    vision_raw = raw.get("vision_config") or {}
    if not isinstance(vision_raw, Mapping):
        raise ModelError("model.bad_field", field="vision_config", value=type(vision_raw).__name__,
                         why="must be an object")
    build = _WRAPPERS[str(raw["model_type"])].tower
    return tuple(build(Config(vision_raw), Config(raw), text_hidden))


def vision_params(tensors: tuple[Tensor, ...] | list[Tensor]) -> int:
    """Parameters of the vision tower and projector (0 for a text-only model)."""
    return sum(t.numel for t in tensors if t.role in VISION_ROLES)


# ----------------------------------------------------------------------------------
# Image tokens: what one image adds to the prompt, by each family's processor
# ----------------------------------------------------------------------------------

# The Qwen-VL processors' pixel bounds, from the checkpoints' preprocessor_config.json (they
# override the image processor class's own 56*56 .. 28*28*1280): Qwen2.5-VL min_pixels 3136,
# max_pixels 12845056 (quoted with processor_class Qwen2_5_VLProcessor in public fixtures,
# code-index ids 69393411951, 5590532836); Qwen3-VL 65536 .. 16777216 (id 62983406432,
# "qwen3": patch 16, merge 2); as of 2026-12-01.
_QWEN_PIXELS = {"qwen2_5_vl": (3136, 12845056), "qwen3_vl": (65536, 16777216), "qwen3_vl_moe": (65536, 16777216)}
# Llama4ImageProcessor's class defaults (image_processing_llama4.py, transformers 5.24): 336-px
# tiles, at most 16 of them, no upscaling to the largest canvas.
_LLAMA4_TILE, _LLAMA4_MAX_TILES = 336, 16

# Glm4vImageProcessor's class defaults (image_processing_glm4v.py, transformers 5.24): 112*112 ..
# 28*28*15000 pixels; the checkpoints' preprocessor_config.json files were not read.
_GLM4V_PIXELS = (112 * 112, 28 * 28 * 15000)

IMAGE_TOKEN_TYPES: tuple[str, ...] = ("qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe", "gemma3", "llama4", "mistral3",
                                      "glm4v", "glm4v_moe", "glm46v", "internvl")
# GotOcr2ImageProcessor (InternVL's) class defaults: 1 .. 12 tiles (image_processing_got_ocr2.py)
_INTERNVL_TILES = (1, 12)
"""Families whose tokens per image are modelled (``image_tokens``)."""


def _smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """The Qwen-VL resize (image_processing_qwen2_vl.py ``smart_resize``): both sides to
    multiples of ``factor`` (patch x merge), the area kept within [min_pixels, max_pixels]."""
    h_bar, w_bar = round(height / factor) * factor, round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar, w_bar = math.ceil(height * beta / factor) * factor, math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def _glm4v_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """GLM-4V's ``smart_resize`` for one image (image_processing_glm4v.py): sides under a
    factor scaled up first, and the area bounds applied to two temporal frames."""
    if height < factor or width < factor:
        scale = max(factor / height, factor / width)
        height, width = int(height * scale), int(width * scale)
    h_bar, w_bar = round(height / factor) * factor, round(width / factor) * factor
    if 2 * h_bar * w_bar > max_pixels:
        beta = math.sqrt(2 * height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif 2 * h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (2 * height * width))
        h_bar, w_bar = math.ceil(height * beta / factor) * factor, math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def _internvl_tiles(height: int, width: int, tile: int, min_tiles: int, max_tiles: int) -> int:
    """Tiles GotOcr2ImageProcessor cuts (``get_optimal_tiled_canvas``: the grid nearest the
    image's aspect ratio, ties to more tiles while they cover under twice its area), plus
    the thumbnail when there are several."""
    grids = sorted(((c, r) for c in range(1, max_tiles + 1) for r in range(1, max_tiles + 1)
                    if min_tiles <= c * r <= max_tiles), key=lambda g: g[0] * g[1])
    aspect, area = width / height, width * height
    best, best_diff = (1, 1), float("inf")
    for c, r in grids:
        diff = abs(aspect - c / r)
        if diff < best_diff:
            best, best_diff = (c, r), diff
        elif diff == best_diff and area > 0.5 * tile * tile * c * r:
            best = (c, r)
    tiles = best[0] * best[1]
    return 1 + tiles if tiles > 1 else 1


def _llama4_canvas(height: int, width: int, tile: int, max_tiles: int) -> tuple[int, int]:
    """Tiles (rows, columns) of the canvas Llama4ImageProcessor picks: its
    ``find_supported_resolutions`` and ``get_best_fit`` (the smallest upscale that fits,
    else the least downscale; ties to the smallest area)."""
    shapes: dict[float, list[tuple[int, int]]] = {}
    for chunks in range(max_tiles, 0, -1):
        for f in sorted(d for d in range(1, chunks + 1) if chunks % d == 0):
            shapes.setdefault(f / (chunks // f), []).append((f, chunks // f))
    canvases = [(r * tile, c * tile) for group in shapes.values() for r, c in group]
    scales = [min(th / height, tw / width) for th, tw in canvases]
    up = [s for s in scales if s >= 1]
    pick = min(up) if up else max(s for s in scales if s < 1)
    chosen = [cv for cv, s in zip(canvases, scales) if s == pick]
    best = min(chosen, key=lambda cv: cv[0] * cv[1])
    return best[0] // tile, best[1] // tile


def _pixtral_tokens(vcfg: Config, merge: int, width: int, height: int) -> int:
    """PixtralImageProcessor's ``get_resize_output_image_size`` (floor-scaled to the longest
    edge, then rounded up to whole patches) and PixtralProcessor's [IMG]/[IMG_BREAK]/[IMG_END]
    rows (processing_pixtral.py ``replace_image_token``)."""
    rows, cols = _pixtral_grid(vcfg, merge, width, height)
    return rows * (cols + 1)


def _pixtral_grid(vcfg: Config, merge: int, width: int, height: int) -> tuple[int, int]:
    """Rows and columns of merged patches (p = patch x merge px each) of the resized image."""
    p = vcfg.int("patch_size") * merge
    edge = vcfg.int("image_size")
    ratio = max(height / edge, width / edge)
    if ratio > 1:
        height, width = math.floor(height / ratio), math.floor(width / ratio)
    return (height - 1) // p + 1, (width - 1) // p + 1


def image_tokens(raw: Mapping[str, Any], width: int, height: int) -> int:
    """Prompt tokens one ``width`` x ``height`` image becomes: the embeddings the vision
    tower hands the text model plus the image's own marker tokens, as the family's
    processor writes them (transformers 5.24 processing_<family>.py):

    - Qwen2.5-VL / Qwen3-VL: ``smart_resize`` to multiples of patch x merge (28 / 32 px),
      then (H/28)(W/28) ``<|image_pad|>`` tokens, plus vision_start and vision_end;
    - Gemma 3: ``mm_tokens_per_image`` soft tokens (256) between boi and eoi, whatever the
      size (pan-and-scan off, the processor's default); the "\\n\\n" text around them is
      not counted;
    - Llama 4: the image is fitted to a canvas of up to 16 336-px tiles; each tile is
      (336/patch)^2 x pixel_shuffle_ratio^2 patch tokens (144), with x/y separators, plus
      one global tile when there are several, between image_start and image_end;
    - Mistral 3 (Pixtral processor): the longest edge scaled down to vision_config.image_size
      (1540 by Mistral3Config's default; taken as the processor's longest_edge, an
      assumption), then ceil(H/p) rows of ceil(W/p) [IMG] tokens and one [IMG_BREAK]
      ([IMG_END] last) each, p = patch_size x spatial_merge_size (28);
    - GLM-4.1V/4.5V/4.6V: GLM's own smart_resize (factor 28, the class's pixel bounds over
      two temporal frames), then (H/28)(W/28) image tokens plus begin/end_of_image;
    - InternVL: 1 to 12 tiles of vision_config.image_size (448) on the grid nearest the
      image's aspect ratio, plus a thumbnail when several, each (448/14)^2 x
      downsample_ratio^2 tokens (256), between <img> and </img>.
    """
    mt = str(raw.get("model_type"))
    if mt not in IMAGE_TOKEN_TYPES:
        raise InputError("input.conflict", what=f"--images-per-request: tokens per image are not modelled for "
                         f"{mt} (only {', '.join(IMAGE_TOKEN_TYPES)})")
    vcfg = Config(raw.get("vision_config") or {})
    if mt in _QWEN_PIXELS:
        patch = vcfg.int("patch_size", default=14 if mt == "qwen2_5_vl" else 16)
        factor = patch * vcfg.int("spatial_merge_size", default=2)
        if max(width, height) / min(width, height) > 200:
            raise InputError("input.conflict", what=f"--image-size {width}x{height}: the Qwen-VL processor "
                             "refuses aspect ratios above 200")
        h, w = _smart_resize(height, width, factor, *_QWEN_PIXELS[mt])
        return (h // factor) * (w // factor) + 2
    if mt == "gemma3":
        return Config(raw).int("mm_tokens_per_image", default=256) + 2
    if mt in ("glm4v", "glm4v_moe", "glm46v"):
        factor = vcfg.int("patch_size", default=14) * vcfg.int("spatial_merge_size", default=2)
        if max(width, height) / min(width, height) > 200:
            raise InputError("input.conflict", what=f"--image-size {width}x{height}: the GLM-4V processor "
                             "refuses aspect ratios above 200")
        h, w = _glm4v_resize(height, width, factor, *_GLM4V_PIXELS)
        return (h // factor) * (w // factor) + 2
    if mt == "internvl":
        tile = _side(vcfg, "image_size", 448)[0]
        patch = _side(vcfg, "patch_size", 14)[0]
        ratio = raw.get("downsample_ratio", 0.5)
        per_tile = round((tile // patch) ** 2 * ratio * ratio)
        return 2 + per_tile * _internvl_tiles(height, width, tile, *_INTERNVL_TILES)
    if mt == "mistral3":
        return _pixtral_tokens(Config({**_PIXTRAL_DEFAULTS, "image_size": 1540, **(raw.get("vision_config") or {})}),
                               Config(raw).int("spatial_merge_size", default=2), width, height)
    rows, cols = _llama4_canvas(height, width, _LLAMA4_TILE, _LLAMA4_MAX_TILES)
    ratio = vcfg.get("pixel_shuffle_ratio", 0.5)
    per_tile = int((_LLAMA4_TILE // vcfg.int("patch_size", default=14)) ** 2 // round(1 / ratio ** 2))
    tiles = rows * cols
    local = tiles * per_tile + rows * (cols - 1) + rows if tiles > 1 else 0   # x separators between, a y one per row
    return 1 + local + 1 + per_tile + 1


def max_image_tokens(raw: Mapping[str, Any]) -> int:
    """The most tokens one image can become (the processor at its largest size), the unit of
    vLLM's encoder budget; 0 where ``image_tokens`` has no rule for the family.  Qwen-VL:
    the embeddings of a max_pixels square (vLLM's ``get_image_size_with_most_features``
    resizes a 9999999-px side); Gemma 3: mm_tokens_per_image; Llama 4: a 4 x 4-tile canvas
    and its global tile; Mistral 3: a square at the longest edge (55 x 56 tokens at 1540)."""
    mt = str(raw.get("model_type"))
    if mt not in IMAGE_TOKEN_TYPES:
        return 0
    if mt == "llama4":
        side = _LLAMA4_TILE * math.isqrt(_LLAMA4_MAX_TILES)
        return image_tokens(raw, side, side)
    if mt == "mistral3":                                     # a square at the longest edge
        return image_tokens(raw, 9_999_999, 9_999_999)
    if mt in ("glm4v", "glm4v_moe", "glm46v"):
        return image_tokens(raw, 9_999_999, 9_999_999) - 2
    if mt == "internvl":                                   # 12 tiles (a 3 x 4 grid) and the thumbnail
        tile = _side(Config(raw.get("vision_config") or {}), "image_size", 448)[0]
        return image_tokens(raw, 4 * tile, 3 * tile)
    return image_tokens(raw, 9_999_999, 9_999_999) - 2     # the embeddings, without the two markers


# ----------------------------------------------------------------------------------
# The tower's work on one image: what the encoder adds to a request's prefill
# ----------------------------------------------------------------------------------

# tower tensors that are looked up or interpolated, not multiplied: position tables (Qwen3-VL's
# and GLM-4V's are interpolated to the grid), class and mask tokens, SigLIP's pooling probe
_NOT_MATMUL = ("position_embedding", "pos_embed.", "positional_embedding", "cls_token", "mask_token", ".head.probe")
# GLM-4V's Conv2d downsample runs once per m x m patches (a merged token), though it is in the tower
_PER_MERGED = ("model.visual.downsample.",)


@dataclass(frozen=True)
class EncoderWork:
    """One image through the vision tower and the projector (``encoder_work``)."""

    patches: int             # patches the patch embedding runs on, every tile, before any merge
    tokens: int              # positions every tower layer runs: the patches plus class tokens
    merged: int              # embeddings the projector hands the text model (its tokens)
    layers: int              # tower layers (each one attention and one MLP)
    width: int               # the tower's hidden size (a tp all-reduce's message per position)
    linear_flops: float      # 2 x the multiply-accumulates of the tower's and the projector's matrices
    attention_flops: float   # the tower's QK^T and PV over its own positions, 2 FLOPs per MAC

    @property
    def flops(self) -> float:
        return self.linear_flops + self.attention_flops


@dataclass(frozen=True)
class _Geometry:
    patches: int
    tokens: int
    merged: int
    layers: int
    width: int
    groups: tuple[tuple[int, tuple[int, ...]], ...]   # (layers, lengths of the sequences each attends apart)
    head: bool = False                                # SigLIP's attention-pooling head runs
    inter: int = 0                                    # the tower MLP's intermediate width
    gated: bool = False                               # a gated (SwiGLU) MLP: gate and up outputs both live
    pixels: int = 0                                   # input values per patch (channels x frames x p x p)


def _chunks(n: int, size: int) -> list[int]:
    return [size] * (n // size) + ([n % size] if n % size else [])


def _qwen_geometry(mt: str, v: Config, width: int, height: int) -> _Geometry:
    """Qwen2.5-VL / Qwen3-VL: the smart-resized image's (H/p)(W/p) patches (one temporal
    patch: the processor repeats an image over temporal_patch_size frames), every block over
    them; Qwen2.5-VL attends in windows except in ``fullatt_block_indexes``
    (modeling_qwen2_5_vl.py ``get_window_index``: window_size // merge // patch merged tokens
    a side, edge windows smaller)."""
    patch, m = v.int("patch_size", default=14 if mt == "qwen2_5_vl" else 16), v.int("spatial_merge_size", default=2)
    h_px, w_px = _smart_resize(height, width, patch * m, *_QWEN_PIXELS[mt])
    gh, gw = h_px // patch, w_px // patch
    n = gh * gw
    depth = v.int("depth", default=32 if mt == "qwen2_5_vl" else 27, maximum=limits.MAX_LAYERS)
    h = _width(v, "hidden_size", 3584 if mt == "qwen2_5_vl" else 1152)
    pixels = v.int("in_channels", default=3) * v.int("temporal_patch_size", default=2) * patch * patch
    if mt != "qwen2_5_vl":
        return _Geometry(n, n, n // (m * m), depth, h, ((depth, (n,)),), inter=_width(v, "intermediate_size", 4304),
                         pixels=pixels)
    full = sum(1 for i in set(v.get("fullatt_block_indexes", (7, 15, 23, 31))) if 0 <= int(i) < depth)
    side = max(1, v.int("window_size", default=112) // m // patch)
    windows = tuple(r * c * m * m for r in _chunks(gh // m, side) for c in _chunks(gw // m, side))
    return _Geometry(n, n, n // (m * m), depth, h, ((full, (n,)), (depth - full, windows)),
                     inter=_width(v, "intermediate_size", 3420), gated=True, pixels=pixels)


def _geometry(raw: Mapping[str, Any], width: int, height: int) -> _Geometry:
    """Patches, positions and attention groups of one ``width`` x ``height`` image, by the
    same processor rules as ``image_tokens``."""
    mt = str(raw.get("model_type"))
    v, outer = Config(raw.get("vision_config") or {}), Config(raw)
    if mt in _QWEN_PIXELS:
        return _qwen_geometry(mt, v, width, height)
    if mt in ("glm4v", "glm4v_moe", "glm46v"):      # every block attends over the whole image
        patch, m = v.int("patch_size", default=14), v.int("spatial_merge_size", default=2)
        h_px, w_px = _glm4v_resize(height, width, patch * m, *_GLM4V_PIXELS)
        n, depth = (h_px // patch) * (w_px // patch), v.int("depth", default=24, maximum=limits.MAX_LAYERS)
        return _Geometry(n, n, n // (m * m), depth, _width(v, "hidden_size", 1536), ((depth, (n,)),),
                         inter=_width(v, "out_hidden_size", 4096), gated=True,    # Glm4VisionMlp: out_hidden_size
                         pixels=v.int("in_channels", default=3) * v.int("temporal_patch_size", default=2) * patch ** 2)
    if mt == "gemma3":           # SigLIP at its own image_size, whatever the image; pooled to mm_tokens_per_image
        n, layers = _grid(v, 224, 16), v.int("num_hidden_layers", default=12, maximum=limits.MAX_LAYERS)
        ph, pw = _side(v, "patch_size", 16)
        return _Geometry(n, n, outer.int("mm_tokens_per_image", default=256), layers, _width(v, "hidden_size", 768),
                         ((layers, (n,)),), head=v.bool("vision_use_head", True),
                         inter=_width(v, "intermediate_size", 3072), pixels=v.int("num_channels", default=3) * ph * pw)
    if mt == "mistral3":         # Pixtral: one sequence per image (block-diagonal mask between images)
        vp = Config({**_PIXTRAL_DEFAULTS, "image_size": 1540, **(raw.get("vision_config") or {})})
        m = outer.int("spatial_merge_size", default=2)
        rows, cols = _pixtral_grid(vp, m, width, height)
        n, layers = rows * cols * m * m, vp.int("num_hidden_layers", maximum=limits.MAX_LAYERS)
        return _Geometry(n, n, rows * cols, layers, _width(vp, "hidden_size"), ((layers, (n,)),),
                         inter=_width(vp, "intermediate_size"), gated=True,
                         pixels=vp.int("num_channels", default=3) * vp.int("patch_size") ** 2)
    if mt == "internvl":         # each 448-px tile (and the thumbnail) alone, with its class token
        tiles = _internvl_tiles(height, width, _side(v, "image_size", 448)[0], *_INTERNVL_TILES)
        per, ratio = _grid(v, 448, 14), raw.get("downsample_ratio", 0.5)
        layers = v.int("num_hidden_layers", default=24, maximum=limits.MAX_LAYERS)
        ph, pw = _side(v, "patch_size", 14)
        return _Geometry(tiles * per, tiles * (per + 1), tiles * round(per * ratio * ratio), layers,
                         _width(v, "hidden_size", 1024), ((layers, (per + 1,) * tiles),),
                         inter=_width(v, "intermediate_size", 4096), pixels=v.int("num_channels", default=3) * ph * pw)
    if mt == "llama4":           # each tile (and the global one) alone, with its class token
        rows, cols = _llama4_canvas(height, width, _LLAMA4_TILE, _LLAMA4_MAX_TILES)
        tiles = rows * cols + 1 if rows * cols > 1 else 1
        # tiles of the processor's 336 px, as image_tokens counts them (checkpoints set image_size 336)
        per, ratio = (_LLAMA4_TILE // v.int("patch_size", default=14)) ** 2, v.get("pixel_shuffle_ratio", 0.5)
        layers = v.int("num_hidden_layers", default=34, maximum=limits.MAX_LAYERS)
        return _Geometry(tiles * per, tiles * (per + 1), tiles * (per // round(1 / ratio ** 2)), layers,
                         _width(v, "hidden_size", 768), ((layers, (per + 1,) * tiles),),
                         inter=_width(v, "intermediate_size", 5632),
                         pixels=v.int("num_channels", default=3) * v.int("patch_size", default=14) ** 2)
    raise InputError("input.conflict", what=f"--images-per-request: the vision tower of {mt} is not modelled "
                     f"(only {', '.join(IMAGE_TOKEN_TYPES)})")


def encoder_work(raw: Mapping[str, Any], tensors: tuple[Tensor, ...] | list[Tensor], width: int,
                 height: int) -> EncoderWork:
    """The vision tower's and projector's FLOPs on one ``width`` x ``height`` image.

    Matrices: 2 FLOPs per multiply-accumulate of each tensor, per patch for the patch
    embedding, per position (patches and class tokens) for the tower's layers, per merged
    token for the projector/merger (and GLM-4V's downsample); position tables, class tokens
    and norms are not matrix work.  Attention: QK^T and PV, ``4 n^2 width`` over each
    sequence of ``n`` positions the tower attends over as one (an image, a tile, a Qwen2.5-VL
    window), per layer.  SigLIP's pooling head (where ``vision_use_head``): one probe query
    over the patches.  ``tests/model/test_vision_encoder.py`` checks the total against
    ``torch.utils.flop_counter.FlopCounterMode`` on transformers' own towers.
    """
    g = _geometry(raw, width, height)
    linear = 0.0
    for t in tensors:
        if t.role not in VISION_ROLES or len(t.shape) < 2 or any(k in t.name for k in _NOT_MATMUL):
            continue
        if t.role == "vision_proj" or t.name.startswith(_PER_MERGED):
            rows = g.merged
        elif ".head." in t.name:        # the pooling head: k and v over the patches, the rest on one query
            rows = (1 + 2 * g.tokens) / 3 if "in_proj" in t.name else 1
        else:
            rows = g.patches if "patch_" in t.name else g.tokens
        linear += 2.0 * t.numel * rows
    attention = sum(4.0 * layers * n * n * g.width for layers, lengths in g.groups for n in lengths)
    if g.head:
        attention += 4.0 * g.tokens * g.width
    return EncoderWork(g.patches, g.tokens, g.merged, g.layers, g.width, linear, attention)


def _largest_image(raw: Mapping[str, Any]) -> tuple[int, int]:
    """The (width, height) that becomes ``max_image_tokens`` (the processor at its largest):
    vLLM's profiling images (``get_image_size_with_most_features``)."""
    mt = str(raw.get("model_type"))
    if mt == "llama4":
        side = _LLAMA4_TILE * math.isqrt(_LLAMA4_MAX_TILES)
        return side, side
    if mt == "internvl":
        tile = _side(Config(raw.get("vision_config") or {}), "image_size", 448)[0]
        return 4 * tile, 3 * tile
    return 9_999_999, 9_999_999


@dataclass(frozen=True)
class TowerPeak:
    """What one largest image keeps alive at the peak of the tower's forward pass, per
    position, in the model dtype: ``replicated`` elements on every tp rank, ``sharded``
    split over tp (``vision_peak``)."""

    positions: int = 0
    replicated: int = 0
    sharded: int = 0


def vision_peak(raw: Mapping[str, Any]) -> TowerPeak:
    """The tower's transient working set on the largest image (0 for families without an
    image rule), as ``memory.per_gpu._live_per_token`` counts a decoder layer's: in a
    block's MLP the residual, the normed input and the MLP's intermediates (``2h + 3I``
    gated, gate_up and its product; ``2h + 2I`` for fc1 and its activation); in its
    attention the fused qkv, the contiguous q/k copy the rotary embedding reads, its rotated
    output and the attention output (``8h`` over the same ``2h``, as vLLM's
    ``Qwen2_5_VisionAttention.forward`` holds them: vllm/model_executor/models/qwen2_5_vl.py,
    0.33.0 wheel); plus the image's pixel values (held by the caller through the pass).  An
    estimate: the MLP term is within 4% of transformers' own Qwen2.5-VL tower on CPU (torch
    profiler's memory timeline, tests/model/test_vision_encoder.py); transformers' attention
    keeps more (fp32 rotary copies), vLLM's was not measured."""
    if str(raw.get("model_type")) not in IMAGE_TOKEN_TYPES:
        return TowerPeak()
    g = _geometry(raw, *_largest_image(raw))
    mlp = (3 if g.gated else 2) * g.inter
    sharded = max(mlp, 8 * g.width)
    return TowerPeak(g.tokens, 2 * g.width + g.pixels * g.patches // max(1, g.tokens), sharded)
