"""Read access to a Hugging Face ``config.json``, with errors that name the field.

Every family builder (``rigsize.model.llama_like``, ``moe``, ``windows``,
``gpt_family``) reads its numbers through ``Config``, so that a missing or malformed
field is a ``ModelError`` naming the field, the value and the allowed range.  The
``Flag``/``Num``/``When`` specs are how the family tables say where a config keeps a
switch or a number, with the config class's default (``configuration_<family>.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rigsize.errors import ModelError
from rigsize.planning import limits

Flag = str | bool | tuple[str, bool]        # config key (default False), constant, or (key, default)
Num = tuple[str | tuple[str, ...], int | None]   # config key(s), the class default (None: required)
When = tuple[str, Any, Any]                  # (config key, value that turns it on, the key's default)


def whole_number(key: str, value: Any, minimum: int = 1, maximum: float = float("inf")) -> int:
    """``value`` of config field ``key`` as an int in [minimum, maximum], else a ModelError."""
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or value != int(value)):
        raise ModelError("model.bad_field", field=key, value=value, why="must be a whole number")
    if not minimum <= value <= maximum:
        why = f"must be between {minimum} and {maximum:g}"
        raise ModelError("model.bad_field", field=key, value=value, why=why)
    return int(value)


class Config:
    """Read access to a config dict with errors that name the missing field."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.model_type = str(raw.get("model_type", ""))

    def lookup(self, key: str) -> Any:
        """The raw value of ``key``; a dotted key reads a nested dict (DBRX's ``ffn_config.moe_top_k``)."""
        value: Any = self.raw
        for part in key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return value

    def get(self, key: str, default: Any = None) -> Any:
        value = self.lookup(key)
        return default if value is None else value

    def first(self, *keys: str, default: Any = None) -> Any:
        for key in keys:
            if self.lookup(key) is not None:
                return self.lookup(key)
        return default

    def int(self, *keys: str, default: int | None = None, minimum: int = 1,
            maximum: float = limits.MAX_WIDTH) -> int:
        """The first present key among ``keys`` as a positive int, else ``default``."""
        value = self.first(*keys)
        if value is None:
            if default is None:
                raise ModelError("model.missing_field", model_type=self.model_type, field=keys[0])
            return default
        return whole_number(keys[0], value, minimum, maximum)

    def bool(self, key: str, default: bool) -> bool:
        value = self.lookup(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ModelError("model.bad_field", field=key, value=value, why="must be true or false")
        return value

    def flag(self, spec: Flag) -> bool:
        """A switch the family table gives as a constant, a key (default off) or (key, default)."""
        if isinstance(spec, bool):
            return spec
        key, default = spec if isinstance(spec, tuple) else (spec, False)
        return self.bool(key, default)

    def holds(self, when: When | None) -> bool:
        """Whether the config sets ``when``'s key to its value (no condition: always)."""
        if when is None:
            return True
        key, value, default = when
        return self.get(key, default) == value

    def number(self, spec: Num, minimum: int = 0, maximum: float = float("inf")) -> int:
        """The first present key of ``spec`` (the largest entry of a per-layer list), else its default."""
        keys, default = spec
        keys = (keys,) if isinstance(keys, str) else keys
        value = self.first(*keys)
        if isinstance(value, list) and value:   # per-layer lists (HunYuan's moe_topk): the largest
            value = max(value)
        if value is None:
            value = default
        if value is None:
            raise ModelError("model.missing_field", model_type=self.model_type, field=keys[0])
        return whole_number(keys[0], value, minimum, maximum)

    def max_positions(self, *keys: str) -> int | None:
        """The context limit if the config states one (a positive whole number), else None."""
        if self.first(*keys) is None:
            return None
        return self.int(*keys, maximum=limits.MAX_CONTEXT)
