"""The vision tower's work on one image (``rigsize.model.vision.encoder_work``) against
counts nobody here wrote.

Reference: ``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per multiply-accumulate
of every mm/addmm/bmm/convolution) around ``transformers``' own image path (5.24:
``get_image_features``, which ends in the projector; Llama 4 applies its
``multi_modal_projector`` in ``forward``, so the test does too) on tiny random-weight
towers of each family on CPU, eager attention so QK^T and PV are counted as bmm.  The
towers keep their real patch sizes and the images are multiples of patch x merge, so the
patch grids are the hand-checked ones written beside each case.  Exact equality.
A hand count of Qwen2.5-VL-7B's tower at 1024x1024 pins the real config.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest

from rigsize.model.families import build_architecture
from rigsize.model.inputs import preset_config
from rigsize.model.vision import encoder_work

_TEXT = {"hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 1,
         "intermediate_size": 64, "vocab_size": 128, "head_dim": 16}
_QWEN25 = {"depth": 4, "hidden_size": 64, "num_heads": 4, "intermediate_size": 96, "patch_size": 14,
           "spatial_merge_size": 2, "temporal_patch_size": 2, "out_hidden_size": 64, "window_size": 112,
           "fullatt_block_indexes": [1, 3]}
_QWEN3 = {"depth": 3, "hidden_size": 64, "num_heads": 4, "intermediate_size": 96, "patch_size": 16,
          "spatial_merge_size": 2, "out_hidden_size": 64, "num_position_embeddings": 64,
          "deepstack_visual_indexes": [0, 2]}
_GLM = {"depth": 2, "hidden_size": 64, "num_heads": 4, "intermediate_size": 96, "patch_size": 14, "image_size": 56,
        "spatial_merge_size": 2, "out_hidden_size": 64}
_SIGLIP = {"model_type": "siglip_vision_model", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
           "intermediate_size": 96, "patch_size": 14, "image_size": 112}
_LLAMA4 = {"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2, "intermediate_size": 256,
           "patch_size": 14, "image_size": 336, "vision_output_dim": 96, "projector_input_dim": 96,
           "projector_output_dim": 96, "pixel_shuffle_ratio": 0.5}
_PIXTRAL = {"model_type": "pixtral", "hidden_size": 64, "num_attention_heads": 4, "head_dim": 16,
            "num_hidden_layers": 2, "intermediate_size": 96, "patch_size": 14, "image_size": 1540}
_INTERN = {"model_type": "internvl_vision", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
           "intermediate_size": 96, "patch_size": [14, 14], "image_size": [112, 112]}


def _grid_call(gh: int, gw: int, per_patch: int) -> Callable:
    """Qwen-VL / GLM-4V inputs: flattened patches of a gh x gw grid, one temporal patch."""
    def call(m, torch):
        return m.model.get_image_features(pixel_values=torch.randn(gh * gw, per_patch),
                                          image_grid_thw=torch.tensor([[1, gh, gw]]))
    return call


def _llama4_call(m, torch):       # 672x336 px: a 1 x 2 canvas plus the global tile = 3 tiles
    out = m.get_image_features(pixel_values=torch.randn(3, 3, 336, 336), return_dict=True)
    return m.multi_modal_projector(out.last_hidden_state.flatten(0, -2))


# (config, image width, height, transformers' call)
_CASES = {
    # 308x224 px = 22 x 16 patches of 14 (already multiples of 28): 352 patches, 4x4-merged windows
    "qwen2_5_vl": ({"model_type": "qwen2_5_vl", "text_config": {**_TEXT, "model_type": "qwen2_5_vl_text"},
                    "vision_config": _QWEN25}, 308, 224, _grid_call(16, 22, 3 * 2 * 14 * 14)),
    # 320x256 px = 20 x 16 patches of 16
    "qwen3_vl": ({"model_type": "qwen3_vl", "text_config": {**_TEXT, "model_type": "qwen3_vl_text"},
                  "vision_config": _QWEN3}, 320, 256, _grid_call(16, 20, 3 * 2 * 16 * 16)),
    "glm4v": ({"model_type": "glm4v", "text_config": {**_TEXT, "model_type": "glm4v_text"}, "vision_config": _GLM},
              308, 224, _grid_call(16, 22, 3 * 2 * 14 * 14)),
    # SigLIP at its own 112 px whatever the image: 8 x 8 patches, pooled to 16 tokens
    "gemma3": ({"model_type": "gemma3", "text_config": {**_TEXT, "model_type": "gemma3_text"},
                "vision_config": {**_SIGLIP, "vision_use_head": False}, "mm_tokens_per_image": 16}, 1000, 700,
               lambda m, torch: m.model.get_image_features(pixel_values=torch.randn(1, 3, 112, 112))),
    "gemma3-head": ({"model_type": "gemma3", "text_config": {**_TEXT, "model_type": "gemma3_text"},
                     "vision_config": {**_SIGLIP, "vision_use_head": True}, "mm_tokens_per_image": 16}, 1000, 700,
                    lambda m, torch: m.model.get_image_features(pixel_values=torch.randn(1, 3, 112, 112))),
    "llama4": ({"model_type": "llama4", "text_config": {**_TEXT, "model_type": "llama4_text"},
                "vision_config": _LLAMA4}, 672, 336, _llama4_call),
    "mistral3": ({"model_type": "mistral3", "text_config": {**_TEXT, "model_type": "mistral"},
                  "vision_config": _PIXTRAL, "spatial_merge_size": 2}, 308, 224,
                 lambda m, torch: m.model.get_image_features(pixel_values=torch.randn(1, 3, 224, 308),
                                                             image_sizes=torch.tensor([[224, 308]]))),
    # 224x112 px on 112-px tiles: a 2 x 1 grid plus the thumbnail = 3 tiles
    "internvl": ({"model_type": "internvl", "text_config": {**_TEXT, "model_type": "qwen2"},
                  "vision_config": _INTERN, "downsample_ratio": 0.5}, 224, 112,
                 lambda m, torch: m.model.get_image_features(pixel_values=torch.randn(3, 3, 112, 112),
                                                             vision_feature_layer=-1,
                                                             vision_feature_select_strategy="default")),
}


def _torch_flops(config: dict, call: Callable) -> int:
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoConfig, AutoModelForImageTextToText
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    cfg = dict(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
        for sub in (hf, getattr(hf, "vision_config", None), getattr(hf, "text_config", None)):
            if sub is not None:
                sub._attn_implementation = "eager"      # attention as bmm, which the counter sees
        torch.manual_seed(0)
        model = AutoModelForImageTextToText.from_config(hf).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            call(model, torch)
    return counter.get_total_flops()


@pytest.mark.parametrize("case", sorted(_CASES))
def test_encoder_flops_equal_torch_flop_counter(case: str) -> None:
    config, width, height, call = _CASES[case]
    work = encoder_work(config, build_architecture(config).tensors, width, height)
    assert work.flops == _torch_flops(config, call)


def test_qwen2_5_vl_7b_tower_by_hand() -> None:
    """Qwen2.5-VL-7B (vision: 1280 wide, 32 blocks, SwiGLU 3420, patch 14, merge 2, window
    112 px, full attention in blocks 7/15/23/31) at 1024x1024: smart_resize to 1036x1036 =
    74 x 74 = 5,476 patches, 37 x 37 = 1,369 merged tokens; windows of 4 x 4 merged tokens
    over 37 x 37: 81 of 64 patches, 18 of 16 (edge strips), 1 of 4."""
    config = preset_config("qwen2.5-vl-7b")
    work = encoder_work(config, build_architecture(config).tensors, 1024, 1024)
    n, merged, h = 5476, 1369, 1280
    patch_embed = 2 * h * (3 * 2 * 14 * 14) * n
    blocks = 32 * 2 * (3 * h * h + h * h + 3 * h * 3420) * n
    merger = 2 * (4 * h * 4 * h + 3584 * 4 * h) * merged
    full = 4 * 4 * n * n * h
    windowed = 28 * 4 * (81 * 64 ** 2 + 18 * 16 ** 2 + 4 ** 2) * h
    assert (work.patches, work.merged) == (n, merged)
    assert work.linear_flops == patch_embed + blocks + merger
    assert work.attention_flops == full + windowed
    assert work.flops == pytest.approx(7.700e12, rel=1e-3)     # about 7.7 TFLOP for one such image


@pytest.mark.parametrize("model_type", ["qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe", "glm4v", "gemma3", "llama4",
                                        "mistral3", "internvl"])
def test_the_profiled_image_is_the_encoder_cache_unit(model_type: str) -> None:
    """vLLM profiles the tower on images of the most features; the image vision_peak sizes
    must be the one max_image_tokens, the encoder cache's unit, is counted at (its tokens,
    less the two markers where that unit leaves them out), and the tower's merged tokens
    are those tokens less markers and separators."""
    transformers = pytest.importorskip("transformers")
    from rigsize.model.vision import _largest_image, image_tokens, max_image_tokens

    cfg = transformers.AutoConfig.for_model(model_type).to_dict()
    size = _largest_image(cfg)
    tokens = image_tokens(cfg, *size)
    assert max_image_tokens(cfg) in (tokens, tokens - 2)
    assert 0 < encoder_work(cfg, build_architecture(cfg).tensors, *size).merged <= tokens - 2


def test_qwen2_5_vl_7b_tower_peak_by_hand() -> None:
    """The largest Qwen2.5-VL image (max_pixels 12845056: 3584 x 3584 px) is 256 x 256 =
    65,536 patches; per patch the residual and normed input (2 x 1280), the pixels
    (3 x 2 x 14 x 14 = 1176) and the SwiGLU's gate_up and product (3 x 3420, over 5 x 1280 for
    attention's qkv and rotated q/k), 2 bytes each."""
    from rigsize.model.vision import vision_peak

    peak = vision_peak(preset_config("qwen2.5-vl-7b"))
    assert (peak.positions, peak.replicated, peak.sharded) == (65536, 2 * 1280 + 1176, 3 * 3420)


def test_the_mlp_term_of_the_tower_peak_matches_transformers_on_cpu() -> None:
    """transformers' Qwen2.5-VL tower in bf16 on CPU, 32 x 32 patches, an MLP wide enough to
    hold the peak (2h + 3I over attention's 8h): torch profiler's memory timeline (creations
    less destructions, the weights and pixel input pre-existing) peaks within 10% of the
    estimate's positions x (2h + 3I) x 2 bytes (measured: +4% at h 1280, I 12000; the rest
    is the window-reordered copy and rotary tables)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from torch.profiler import ProfilerActivity, profile
    from transformers import AutoConfig, AutoModelForImageTextToText
    from transformers.utils import logging as hf_logging

    from rigsize.model.vision import vision_peak

    hf_logging.set_verbosity_error()
    vision = {**_QWEN25, "hidden_size": 256, "intermediate_size": 4096, "depth": 2, "fullatt_block_indexes": [1]}
    config = {"model_type": "qwen2_5_vl", "text_config": {**_TEXT, "model_type": "qwen2_5_vl_text"},
              "vision_config": vision}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf = AutoConfig.for_model("qwen2_5_vl", **{k: v for k, v in config.items() if k != "model_type"})
        hf._attn_implementation = hf.vision_config._attn_implementation = "sdpa"
        model = AutoModelForImageTextToText.from_config(hf).eval().to(torch.bfloat16)
        pixels = torch.randn(32 * 32, 3 * 2 * 14 * 14, dtype=torch.bfloat16)
        with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True,
                                      with_stack=True) as prof:
            model.model.get_image_features(pixel_values=pixels, image_grid_thw=torch.tensor([[1, 32, 32]]))
    live = peak = 0
    for _, action, _, size in prof._memory_profile().timeline:
        live += size if str(action).endswith("CREATE") else -size if str(action).endswith("DESTROY") else 0
        peak = max(peak, live)
    per = vision_peak(config)
    assert per.sharded == 3 * 4096                          # the MLP holds the peak here
    estimate = 32 * 32 * (2 * 256 + per.sharded) * 2        # without the pixels: the profiler's pre-existing input
    assert estimate <= peak <= 1.10 * estimate, (peak, estimate)
