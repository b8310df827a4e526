"""From a Hugging Face ``config.json`` to the exact list of weight tensors: which builder
lays out each ``model_type``, and the config-class defaults published configs rely on.

Each supported ``model_type`` is laid out as ``transformers`` (5.x) builds it, so that
``sum(t.numel for t in tensors)`` equals the parameter count of
``AutoModelForCausalLM.from_config(config)`` on the meta device (buffers excluded,
tied weights once).  ``tests/test_architecture_vs_transformers.py`` checks this
against ``transformers`` itself on real and random configs.

Most decoders are "Llama-like" (``rigsize.model.llama_like``); the GPT-style families
used by published training runs have a builder of their own (``gpt_family``); Mamba 2's
state-space layers are ``recurrent``; hybrids of Mamba and attention layers are
``hybrid`` (Jamba, Nemotron-H, Qwen3-Next, Bamba, Granite 4, MiniMax, Falcon-H1).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from rigsize.errors import ModelError
from rigsize.model import gpt_family, hybrid, llama_like, recurrent, vision
from rigsize.model.architecture import Architecture
from rigsize.model.hf_config import Config
from rigsize.planning import limits

_BUILDERS: dict[str, Callable[[Config], Architecture]] = {
    **{mt: llama_like.llama_like for mt in llama_like.MODEL_TYPES},
    **{mt: gpt_family.gpt_family for mt in gpt_family.MODEL_TYPES},
    "mamba2": recurrent.mamba2,
    "jamba": hybrid.jamba,
    "nemotron_h": hybrid.nemotron_h,
    "qwen3_next": hybrid.qwen3_next,
    "bamba": hybrid.bamba,
    "granitemoehybrid": hybrid.granite_moe_hybrid,
    "minimax": hybrid.minimax,
    "falcon_h1": hybrid.falcon_h1,
}

SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(sorted(_BUILDERS))
# vision-language wrappers: their text_config goes to a builder above, the vision tower
# and projector are laid out by ``rigsize.model.vision``
MULTIMODAL_MODEL_TYPES: tuple[str, ...] = tuple(sorted(vision.MODEL_TYPES))


# Config-class defaults that published configs rely on.  Gemma 3's multimodal Hub
# configs store a sparse ``text_config`` (e.g. gemma-3-4b-it omits vocab_size and the
# head counts); transformers fills them from ``Gemma3TextConfig.__init__`` defaults
# (transformers 5.x, models/gemma3/configuration_gemma3.py), and so do we.
_CLASS_DEFAULTS: dict[str, dict[str, Any]] = {
    "gemma3_text": {"vocab_size": 262208, "hidden_size": 2304, "intermediate_size": 9216,
                    "num_hidden_layers": 26, "num_attention_heads": 8, "num_key_value_heads": 4,
                    "head_dim": 256, "sliding_window": 4096, "max_position_embeddings": 131072},
    # MLA widths (configuration_deepseek_v3.py, configuration_minicpm3.py; q_lora_rank: llama_like's _Q_LORA_DEFAULT)
    **{mt: {"kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128}
       for mt in ("deepseek_v2", "deepseek_v3", "deepseek_v32")},
    "minicpm3": {"kv_lora_rank": 256, "qk_nope_head_dim": 64, "qk_rope_head_dim": 32},
}


# model_type values that name a laid-out architecture under another name.  Kimi K2:
# "Kimi-K2 reuses the DeepSeekV3CausalLM architecture ... model_type kimi_k2 lets engines tell it
# apart; setting model_type to deepseek_v3 runs it" (Moonshot's Kimi-K2 deployment guide, quoted in
# code-index id 67396502577); its config's architectures is ["DeepseekV3ForCausalLM"].
# model_types laid out as another: Kimi K2 is DeepSeek-V3-shaped; MiniMax-Text-01's and MiniMax-M1's own
# (remote-code) configs are the MiniMax layout transformers converted them to (MiniMaxAI/MiniMax-Text-01-hf),
# with attn_type_list for layer_types (hybrid._attn_type_list)
_SAME_AS: dict[str, str] = {"kimi_k2": "deepseek_v3", "minimax_text_01": "minimax", "minimax_m1": "minimax"}


def build_architecture(raw: Mapping[str, Any]) -> Architecture:
    """Lay out the model a Hugging Face config describes.

    Vision-language configs (``MULTIMODAL_MODEL_TYPES``: Gemma 3, Llama 4, Qwen2.5-VL...)
    are their text model plus the vision tower and projector (``rigsize.model.vision``);
    other wrappers are read through their ``text_config`` alone.
    """
    if not isinstance(raw.get("model_type"), str):
        raise ModelError("model.no_model_type", path="config")
    if raw["model_type"] in vision.MODEL_TYPES:
        text = _build(vision.text_config(raw))
        rows = text.tensors + vision.tower(raw, text.hidden_size)
        peak = vision.vision_peak(raw)
        return _capped(dataclasses.replace(text, tensors=rows, max_image_tokens=vision.max_image_tokens(raw),
                                           max_image_peak=(peak.positions, peak.replicated, peak.sharded)))
    if raw["model_type"] not in _BUILDERS and isinstance(raw.get("text_config"), Mapping):
        text = dict(raw["text_config"])
        text.setdefault("tie_word_embeddings", raw.get("tie_word_embeddings"))
        raw = text
    return _capped(_build(raw))


def _build(raw: Mapping[str, Any]) -> Architecture:
    if raw.get("model_type") in _SAME_AS:
        raw = {**raw, "model_type": _SAME_AS[str(raw["model_type"])]}
    defaults = _CLASS_DEFAULTS.get(str(raw.get("model_type")))
    if defaults:
        raw = {**raw, **{k: v for k, v in defaults.items() if raw.get(k) is None}}
    cfg = Config(raw)
    builder = _BUILDERS.get(cfg.model_type)
    if builder is None:
        raise ModelError("model.unsupported_type", model_type=cfg.model_type,
                         supported=", ".join(SUPPORTED_MODEL_TYPES + MULTIMODAL_MODEL_TYPES))
    return builder(cfg)


def _capped(arch: Architecture) -> Architecture:
    if arch.params > limits.MAX_PARAMS:
        raise ModelError("model.bad_field", field="(whole config)", value=arch.params,
                         why=f"describes more than the cap of {limits.MAX_PARAMS:.0e} parameters")
    return arch
