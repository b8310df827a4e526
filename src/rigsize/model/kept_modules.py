"""Modules a checkpoint stores outside its weight format, and how quantizers name them.

A mixed-precision checkpoint keeps some quantizable modules in 16 bits: the ones its
``quantization_config`` lists (``rigsize.model.quantization.quantization_format``) or
its safetensors headers show unquantized (``with_stored_dtypes``).  ``KeptModules``
holds those rules; it travels on the ``WeightFormat`` so that every consumer of
``rigsize.model.formats.tensor_bits`` prices them the same way.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rigsize.errors import FormatError
from rigsize.model.tensors import Tensor


@dataclass(frozen=True)
class KeptModules:
    """Modules a checkpoint stores outside its weight format: ``rules`` are (pattern,
    format) pairs, the first match wins, and the format is a dense dtype (bf16, fp16,
    fp32) or the checkpoint's own format name (a module the headers show quantized).

    Patterns are Hugging Face module names as the quantizers write them: ``re:<regex>``
    is ``re.match`` on the module name (compressed-tensors ``ignore``,
    ``compressed_tensors.utils.match``), one with ``*`` a shell wildcard (ModelOpt
    ``exclude_modules``); any other pattern matches whole dot-separated
    components of the name, so ``lm_head``, ``self_attn``, ``model.layers.0.mlp`` and
    ``model.layers.0.self_attn.q_proj`` all work (transformers ``modules_to_not_convert``
    matches ``key == name`` or ``key + "."`` in name; AutoAWQ and vLLM a substring).  Only
    tensors the format would quantize are affected; norms, biases and routers keep the
    format's own rules."""

    rules: tuple[tuple[str, str], ...] = ()
    source: str = ""
    _plain: Mapping[str, tuple[int, str]] = field(default_factory=dict, compare=False, repr=False)
    _regex: tuple[tuple[int, Any, str], ...] = field(default=(), compare=False, repr=False)
    _memo: dict[str, str | None] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        plain: dict[str, tuple[int, str]] = {}
        regex: list[tuple[int, Any, str]] = []
        for i, (pattern, fmt) in enumerate(self.rules):
            if pattern.startswith("re:") or "*" in pattern:
                # ModelOpt exclude_modules use shell wildcards ("model.layers.0.self_attn*")
                text = pattern[3:] if pattern.startswith("re:") else fnmatch.translate(pattern)
                try:
                    regex.append((i, re.compile(text), fmt))
                except re.error:
                    raise FormatError("format.bad_pattern", pattern=pattern[:80]) from None
            else:
                key = pattern.strip(".").removesuffix(".weight")
                plain.setdefault(key, (i, fmt))
        object.__setattr__(self, "_plain", plain)
        object.__setattr__(self, "_regex", tuple(regex))

    def __bool__(self) -> bool:
        return bool(self.rules)

    def format_of(self, tensor: Tensor) -> str | None:
        """The format the rules give ``tensor``'s module, or None."""
        if tensor.name in self._memo:
            return self._memo[tensor.name]
        found: tuple[int, str] | None = None
        for name in module_names(tensor):
            parts = name.split(".")
            for a in range(len(parts)):
                for b in range(a + 1, len(parts) + 1):
                    hit = self._plain.get(".".join(parts[a:b]))
                    if hit and (found is None or hit[0] < found[0]):
                        found = hit
            for i, rx, fmt in self._regex:
                if (found is None or i < found[0]) and rx.match(name):
                    found = (i, fmt)
        self._memo[tensor.name] = found[1] if found else None
        return self._memo[tensor.name]


def module_names(tensor: Tensor) -> tuple[str, ...]:
    """The module names a checkpoint would use for ``tensor``: its name without the
    parameter suffix, and for merged expert rows (``...experts.gate_proj`` x count) the
    name of expert 0 as ``transformers`` numbers them (``...experts.0.gate_proj``)."""
    name = tensor.name.removesuffix(".weight").removesuffix(".bias")
    if tensor.count > 1 and ".experts." in name:
        head, _, tail = name.rpartition(".experts.")
        return name, f"{head}.experts.0.{tail}"
    return (name,)
