"""Parse numbers as people write them: ``300e9``, ``15T``, ``8k``, ``128k``, ``200ms``.

Counts take suffixes as vLLM reads them: ``8k`` = 8000 but ``8K`` = 8192 (k/m/g
decimal, K/M/G binary); ``70B``, ``15T`` decimal.  Durations take ns/us/ms/s/min/h.  ``1_000`` and
``1,000`` are accepted.  Anything else raises ``InputError`` naming the option.
"""

from __future__ import annotations

import math
import re

from rigsize.errors import InputError
from rigsize.units import SI_PREFIXES, TIME_SUFFIXES

_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?[a-zA-Z]*$")   # 1,000 or 2,048,000
_NUMBER = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_quantity(text: str | int | float, option: str = "value") -> float:
    """``"8k"`` -> 8000.0, ``"1.5T"`` -> 1.5e12, ``"300e9"`` -> 3e11."""
    if isinstance(text, bool) or not isinstance(text, (int, float, str)):
        raise InputError("input.not_a_number", option=option, value=repr(text))
    if isinstance(text, (int, float)):
        try:
            value = float(text)
        except OverflowError:
            raise InputError("input.not_a_number", option=option, value="a number too large") from None
    else:
        if "," in text and not _THOUSANDS.match(text.strip()):
            raise InputError("input.not_a_number", option=option, value=text)
        m = _NUMBER.match(text.replace("_", "").replace(",", ""))
        if not m:
            raise InputError("input.not_a_number", option=option, value=text)
        value = float(m.group(1))
        suffix = m.group(2)
        if suffix:
            if suffix not in SI_PREFIXES:
                raise InputError("input.not_a_number", option=option, value=text)
            value *= SI_PREFIXES[suffix]
    if not math.isfinite(value):
        raise InputError("input.not_a_number", option=option, value=text)
    return value


def parse_count(text: str | int | float, option: str = "value") -> int:
    """A whole, non-negative count: ``"128k"`` -> 128000; ``"1.5"`` is an error."""
    value = parse_quantity(text, option)
    if value < 0 or value != int(value):
        raise InputError("input.not_a_count", option=option, value=text)
    return int(value)


def parse_duration(text: str | int | float, option: str = "value") -> float:
    """Seconds from ``"200ms"``, ``"1.5s"``, ``"2h"`` or a bare number of seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        m = _NUMBER.match(str(text))
        if not m or (m.group(2) and m.group(2).lower() not in TIME_SUFFIXES):
            raise InputError("input.not_a_duration", option=option, value=text)
        value = float(m.group(1)) * TIME_SUFFIXES[m.group(2).lower() or "s"]
    if not math.isfinite(value):      # 1e400 parses to inf, as 'inf' itself is refused
        raise InputError("input.not_a_duration", option=option, value=text)
    return value
