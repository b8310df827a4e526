"""Sliding-window (and Llama 4 chunked) attention per layer, as each family's
configuration decides it; the KV cache of a windowed layer holds at most the window.
"""

from __future__ import annotations

from typing import Protocol

from rigsize.model.hf_config import Config, whole_number
from rigsize.planning import limits


class WindowTraits(Protocol):
    """What the window rules read from a family's traits (``rigsize.model.llama_like``)."""

    slides: bool                    # False: the config types no layer as sliding
    window_default: int | None      # the config class's sliding_window when absent
    window_switch: bool             # windows only with use_sliding_window
    window_pattern: int | None      # every n-th layer full, the rest sliding
    window_pattern_key: bool        # ... or every sliding_window_pattern-th


def _sliding_layers(cfg: Config, tr: WindowTraits, n_layers: int) -> tuple[bool, ...]:
    """Which layers slide when the config lists no ``layer_types`` (each family's
    configuration ``__post_init__``, or all layers where it sets none)."""
    mt, layers = cfg.model_type, range(n_layers)
    if mt in ("qwen2", "qwen3"):        # the layers from max_window_layers on
        first = cfg.int("max_window_layers", default=28, minimum=0)
        return tuple(i >= first for i in layers)
    if mt == "qwen2_moe":               # even layers below max_window_layers
        last = cfg.int("max_window_layers", default=28, minimum=0)
        return tuple(i % 2 == 0 and i < last for i in layers)
    if mt == "smollm3":                 # the NoPE layers
        return tuple(not rope for rope in _rope_layers(cfg, n_layers))
    if tr.window_pattern is None:
        return (True,) * n_layers
    pattern = cfg.get("sliding_window_pattern", tr.window_pattern) if tr.window_pattern_key else tr.window_pattern
    if isinstance(pattern, str) and pattern:   # EXAONE 4 may spell it "LLLG": L local, G global
        return tuple(pattern[i % len(pattern)] == "L" for i in layers)
    pattern = whole_number("sliding_window_pattern", pattern)
    return tuple((i + 1) % pattern != 0 for i in layers)


def _rope_layers(cfg: Config, n_layers: int) -> list[bool]:
    """Llama 4 and SmolLM3's no_rope_layers (1 = uses RoPE); by default every 4th layer is NoPE."""
    listed = cfg.get("no_rope_layers")
    if isinstance(listed, list) and len(listed) == n_layers:
        return [bool(x) for x in listed]
    interval = cfg.int("no_rope_layer_interval", default=4)
    return [(i + 1) % interval != 0 for i in range(n_layers)]


def layer_windows(cfg: Config, tr: WindowTraits, n_layers: int) -> tuple[int | None, ...]:
    """Sliding-window (or Llama 4 chunked-attention) size per layer (None = full attention);
    transformers' cache keeps both kinds as a sliding window (cache_utils.py)."""
    window = cfg.raw.get("sliding_window", tr.window_default) if tr.slides else None
    if window is not None:
        window = whole_number("sliding_window", window, 1, limits.MAX_CONTEXT)
    chunk = cfg.raw.get("attention_chunk_size", 8192) if cfg.model_type == "llama4_text" else None
    if chunk is not None:
        chunk = whole_number("attention_chunk_size", chunk, 1, limits.MAX_CONTEXT)
    if tr.window_switch and not cfg.bool("use_sliding_window", False):
        window = None
    layer_types = cfg.get("layer_types")
    if isinstance(layer_types, list) and len(layer_types) == n_layers:
        sizes = {"sliding_attention": window, "chunked_attention": chunk}
        return tuple(sizes.get(t) for t in layer_types)
    if chunk:   # configuration_llama4.py: the RoPE layers are chunked
        return tuple(chunk if rope else None for rope in _rope_layers(cfg, n_layers))
    if not window:
        return (None,) * n_layers
    return tuple(window if s else None for s in _sliding_layers(cfg, tr, n_layers))
