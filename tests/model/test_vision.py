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


# ---- tokens per image, against the processors' own functions -----------------------------

def _hf_functions(module: str, names: list[str], env: dict) -> dict:
    """Functions of a transformers module, executed from its source alone (the modules
    import torchvision, which the test extra does not install)."""
    import ast
    import importlib.util
    from pathlib import Path

    path = Path(importlib.util.find_spec("transformers").origin).parent / f"{module}.py"
    tree = ast.parse(path.read_text())
    body = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in names]
    ns = dict(env)
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), ns)
    return {n: ns[n] for n in names}


_SIZES = st.tuples(st.integers(16, 6000), st.integers(16, 6000)).filter(lambda s: max(s) / min(s) <= 200)


@settings(max_examples=40, deadline=None)
@given(size=_SIZES, family=st.sampled_from(["qwen2_5_vl", "qwen3_vl"]))
def test_qwen_image_tokens_equal_smart_resize(size: tuple[int, int], family: str) -> None:
    """(H/f)(W/f) image_pad tokens after transformers' smart_resize (f = patch x merge), with
    the checkpoints' preprocessor pixel bounds, plus vision_start and vision_end."""
    import math

    from rigsize.model.vision import image_tokens

    smart_resize = _hf_functions("models/qwen2_vl/image_processing_qwen2_vl", ["smart_resize"],
                                 {"math": math})["smart_resize"]
    width, height = size
    factor, bounds = (28, (3136, 12845056)) if family == "qwen2_5_vl" else (32, (65536, 16777216))
    h, w = smart_resize(height, width, factor=factor, min_pixels=bounds[0], max_pixels=bounds[1])
    assert image_tokens({"model_type": family}, width, height) == (h // factor) * (w // factor) + 2


@settings(max_examples=40, deadline=None)
@given(size=_SIZES)
def test_llama4_image_tokens_equal_the_processor(size: tuple[int, int]) -> None:
    """Llama4ImageProcessor's canvas (find_supported_resolutions, get_best_fit over 16 tiles
    of 336 px) and Llama4Processor._prompt_split_image's tokens (144 patches a tile)."""
    import collections
    import functools
    import math

    import torch
    from transformers.models.llama4.processing_llama4 import Llama4Processor

    from rigsize.model.vision import image_tokens

    class _Size:
        def __init__(self, height: int, width: int) -> None:
            self.height, self.width = height, width

    f = _hf_functions("models/llama4/image_processing_llama4",
                      ["get_factors", "find_supported_resolutions", "get_best_fit"],
                      {"math": math, "torch": torch, "defaultdict": collections.defaultdict,
                       "lru_cache": functools.lru_cache, "SizeDict": _Size})
    width, height = size
    canvases = torch.tensor(f["find_supported_resolutions"](16, _Size(336, 336)))
    best = f["get_best_fit"]((height, width), canvases)
    text = Llama4Processor._prompt_split_image(None, (int(best[0]) // 336, int(best[1]) // 336), 144)
    assert image_tokens({"model_type": "llama4"}, width, height) == text.count("<|")


@settings(max_examples=40, deadline=None)
@given(size=_SIZES)
def test_internvl_image_tokens_equal_the_processor(size: tuple[int, int]) -> None:
    """GotOcr2ImageProcessor.get_number_of_image_patches' tiling (get_optimal_tiled_canvas over
    1..12 tiles of 448 px, plus the thumbnail) and InternVLProcessor's 2 + 256 x patches."""
    import ast
    import functools
    import importlib.util
    from pathlib import Path
    from types import SimpleNamespace

    from transformers import AutoConfig

    from rigsize.model.vision import image_tokens

    ns = _hf_functions("models/got_ocr2/image_processing_got_ocr2",
                       ["get_all_supported_aspect_ratios", "get_optimal_tiled_canvas"],
                       {"lru_cache": functools.lru_cache})
    path = Path(importlib.util.find_spec("transformers").origin).parent / "models/got_ocr2/image_processing_got_ocr2.py"
    cls = next(n for n in ast.parse(path.read_text()).body if isinstance(n, ast.ClassDef)
               and n.name == "GotOcr2ImageProcessor")
    method = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "get_number_of_image_patches")
    exec(compile(ast.Module(body=[method], type_ignores=[]), str(path), "exec"), ns)
    fake = SimpleNamespace(min_patches=1, max_patches=12, size={"height": 448, "width": 448}, crop_to_patches=True)
    width, height = size
    patches = ns["get_number_of_image_patches"](fake, height, width, {})
    assert image_tokens(AutoConfig.for_model("internvl").to_dict(), width, height) == 2 + 256 * patches


@settings(max_examples=40, deadline=None)
@given(size=_SIZES, family=st.sampled_from(["glm4v", "glm4v_moe", "glm46v"]))
def test_glm4v_image_tokens_equal_its_smart_resize(size: tuple[int, int], family: str) -> None:
    """GLM-4V's smart_resize for one image (two temporal frames, factor 28, the image
    processor's class bounds) and replace_image_token's grid_t x grid_h x grid_w / 4."""
    import math

    from rigsize.model.vision import image_tokens

    smart_resize = _hf_functions("models/glm4v/image_processing_glm4v", ["smart_resize"], {"math": math})["smart_resize"]
    width, height = size
    h, w = smart_resize(2, height, width, temporal_factor=2, factor=28, min_pixels=112 * 112,
                        max_pixels=28 * 28 * 15000)
    assert image_tokens({"model_type": family}, width, height) == (h // 14) * (w // 14) // 4 + 2


@settings(max_examples=40, deadline=None)
@given(size=_SIZES)
def test_mistral3_image_tokens_equal_the_pixtral_processor(size: tuple[int, int]) -> None:
    """PixtralImageProcessor's get_resize_output_image_size (longest edge 1540, patches of
    14 x merge 2) and PixtralProcessor.replace_image_token's [IMG]/[IMG_BREAK]/[IMG_END]."""
    import math
    from types import SimpleNamespace

    from transformers import AutoConfig
    from transformers.models.pixtral.processing_pixtral import PixtralProcessor

    from rigsize.model.vision import image_tokens

    width, height = size
    f = _hf_functions("models/pixtral/image_processing_pixtral", ["_num_image_tokens", "get_resize_output_image_size"],
                      {"math": math, "get_image_size": lambda image, fmt: image})
    h, w = f["get_resize_output_image_size"]((height, width), 1540, 28)
    fake = SimpleNamespace(patch_size=14, spatial_merge_size=2, image_token="A", image_break_token="B",
                           image_end_token="E")
    text = PixtralProcessor.replace_image_token(fake, {"image_sizes": [(h, w)]}, 0)
    assert image_tokens(AutoConfig.for_model("mistral3").to_dict(), width, height) == len(text)


def test_gemma3_image_tokens_are_the_processor_sequence() -> None:
    """Gemma3Processor: boi, image_seq_length (256) soft tokens, eoi, at any size."""
    import inspect

    from transformers.models.gemma3.processing_gemma3 import Gemma3Processor

    from rigsize.model.vision import image_tokens

    seq = inspect.signature(Gemma3Processor.__init__).parameters["image_seq_length"].default
    cfg = preset_config("gemma-3-27b")
    assert image_tokens(cfg, 640, 480) == image_tokens(cfg, 4000, 3000) == seq + 2


def test_images_add_their_tokens_to_the_prompt() -> None:
    """Two 1280x720 images on Qwen2.5-VL-7B: 2 x (26 x 46 + 2) tokens, sized like a
    text prompt that much longer; text-only models and bad sizes are one-line errors."""
    from rigsize.errors import InputError
    from rigsize.planning.estimate import estimate

    with_images = estimate("qwen2.5-vl-7b", gpu="H100", prompt=500, output=100, images_per_request=2,
                           image_size="1280x720")
    longer = estimate("qwen2.5-vl-7b", gpu="H100", prompt=500 + 2 * 1198, output=100)
    assert with_images.assumptions["image_tokens"].startswith("2 x 1198")
    assert with_images.memory.per_gpu.kv_cache == longer.memory.per_gpu.kv_cache
    assert with_images.model.params_vision == 676_550_144
    assert estimate("llama-3.1-8b", gpu="H100").model.params_vision == 0
    for bad in (dict(model="llama-3.1-8b", images_per_request=1), dict(model="qwen2.5-vl-7b", image_size="9x9"),
                dict(model="qwen2.5-vl-7b", images_per_request=1, image_size="wide")):
        with pytest.raises(InputError):
            estimate(bad.pop("model"), gpu="H100", **bad)
