"""vLLM's encoder cache for vision-language models (``rigsize.memory.encoder_cache``).

Expected values restate vLLM V1's rule from its source (``compute_mm_encoder_budget``,
``MultiModalBudget.get_max_items``, ``profile_run``; see the module docstring) with the
model's own numbers: T tokens per image at the processor's largest size, the text hidden
size from the config, the engine's max_num_batched_tokens as rigsize echoes it.
"""

from __future__ import annotations

from rigsize.model.inputs import preset_config
from rigsize.planning.estimate import estimate


def _run(model: str, **opts):
    return estimate(model, gpu="H100", **opts)


def test_qwen2_5_vl_holds_one_max_size_image() -> None:
    """T = (3584/28)^2 = 16,384 (a 12,845,056-px square), above max_num_batched_tokens: one
    item of T x 3,584 bf16 values."""
    r = _run("qwen2.5-vl-7b")
    assert r.assumptions["max_num_batched_tokens"] <= 16384
    hidden = preset_config("qwen2.5-vl-7b")["hidden_size"]
    assert r.memory.per_gpu.encoder_cache == 16384 * hidden * 2


def test_gemma3_fills_the_batch_budget_with_256_token_images() -> None:
    r = _run("gemma-3-27b")
    budget = max(r.assumptions["max_num_batched_tokens"], 256)
    hidden = preset_config("gemma-3-27b")["text_config"]["hidden_size"]
    assert r.memory.per_gpu.encoder_cache == budget // 256 * 256 * hidden * 2


def test_text_only_models_and_image_limit_zero_hold_none() -> None:
    assert _run("llama-3.1-8b").memory.per_gpu.encoder_cache == 0
    text_only = _run("qwen2.5-vl-7b", images_per_request=0)
    default = _run("qwen2.5-vl-7b")
    assert text_only.memory.per_gpu.encoder_cache == 0
    # the KV pool gets what the encoder cache and the tower (not built with the image limit at 0:
    # vLLM's _mark_tower_model) no longer take; the tower is params_vision in bf16
    assert text_only.memory.kv_cache_tokens > default.memory.kv_cache_tokens
    # and the tower's profiling peak over the text forward's (encoder_activation_bytes), where larger
    tower_excess = default.memory.per_gpu.activations - text_only.memory.per_gpu.activations
    assert tower_excess >= 0
    assert default.memory.per_gpu.total - text_only.memory.per_gpu.total == (
        default.memory.per_gpu.encoder_cache + 2 * default.model.params_vision + tower_excess)


def test_only_vllm_from_0_15_builds_no_tower_at_image_limit_zero() -> None:
    """_mark_tower_model skips every model's tower from vLLM 0.15.0 (interfaces.py in the 0.15.0
    wheel; in 0.14.0 only some models check the limit themselves, gemma3_mm.py does not), and
    SGLang and TensorRT-LLM are not known to skip it: there the tower stays counted, in bf16
    (params_vision: transformers' tower and projector of Qwen2.5-VL-7B, 676,550,144)."""
    tower = 2 * 676_550_144
    new = _run("qwen2.5-vl-7b", images_per_request=0, engine_version="0.15.0").memory.per_gpu.weights
    for kept in (dict(engine_version="0.14.0"), dict(engine="sglang"), dict(engine="trtllm")):
        assert _run("qwen2.5-vl-7b", images_per_request=0, **kept).memory.per_gpu.weights - new == tower
    assert _run("qwen2.5-vl-7b", images_per_request=0).memory.per_gpu.weights == new     # the newest
