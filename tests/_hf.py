"""Helpers for tests that compare against Hugging Face ``transformers`` (test extra)."""

from __future__ import annotations

import warnings


def meta_param_count(config: dict) -> int:
    """Parameters of ``AutoModelForCausalLM.from_config`` built on the meta device,
    buffers excluded and tied tensors counted once (``named_parameters`` dedups)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    cfg = dict(config)
    model_type = cfg.pop("model_type")
    cfg.pop("architectures", None)
    cfg.setdefault("pad_token_id", None)  # some classes default to an id beyond a tiny vocab
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf_config = AutoConfig.for_model(model_type, **cfg)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(hf_config)
    return sum(p.numel() for p in model.parameters())
