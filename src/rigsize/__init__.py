"""rigsize: what server do I need to run this LLM, for this job, how fast, at what cost?

Public API::

    import rigsize
    report = rigsize.estimate("qwen2-72b")          # -> EstimateReport
    spec = rigsize.resolve_model("config.json")     # -> ModelSpec
    rigsize.list_presets("llama")                   # -> [PresetRow]

Heavy modules are imported on first use so that ``rigsize --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rigsize.errors import FormatError, HardwareError, InputError, ModelError, PlanError, RigsizeError

__all__ = [
    "estimate", "plan", "resolve_model", "list_presets", "serving_curve", "EstimateReport", "ModelSpec",
    "RigsizeError", "ModelError", "HardwareError", "FormatError", "PlanError", "InputError",
]

_LAZY = {
    "estimate": ("rigsize.planning.estimate", "estimate"),
    "plan": ("rigsize.planning.search", "search"),
    "resolve_model": ("rigsize.model.inputs", "resolve_model"),
    "ModelSpec": ("rigsize.model.inputs", "ModelSpec"),
    "list_presets": ("rigsize.api", "list_presets"),
    "serving_curve": ("rigsize.api", "serving_curve"),
    "EstimateReport": ("rigsize.report", "EstimateReport"),
}

if TYPE_CHECKING:
    from rigsize.api import list_presets, serving_curve
    from rigsize.model.inputs import ModelSpec, resolve_model
    from rigsize.planning.estimate import estimate
    from rigsize.report import EstimateReport


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'rigsize' has no attribute {name!r}")
