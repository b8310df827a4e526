"""The CPU catalog (``data/cpus.toml``): host CPUs for local inference.

A CPU holds and computes the layers llama.cpp does not offload to a GPU, so what matters
is its memory bandwidth (decode) and compute (prompt processing).  One row per SKU and
socket; peaks are the vendor's figures or exact arithmetic on them (named in each row's
notes), measured bandwidth only where a citable source prints it.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rigsize.errors import HardwareError

Unknown = Literal["unknown"]


def _in_range(v: Any, lo: float, hi: float, what: str) -> Any:
    """A catalog figure: "unknown", or a finite number in [lo, hi] (never a bool)."""
    if v != "unknown" and (isinstance(v, bool) or not isinstance(v, (int, float))
                           or not math.isfinite(v) or not lo <= v <= hi):
        raise ValueError(f"must be {what} between {lo:g} and {hi:g}, or \"unknown\"")
    return v


class CPU(BaseModel):
    """One CPU SKU, one socket.  Units: bytes, bytes/s, FLOP/s, watts."""

    model_config = ConfigDict(frozen=True, extra="allow")

    name: str
    aliases: tuple[str, ...] = ()
    kind: Literal["cpu"] = "cpu"
    vendor: str
    architecture: str
    memory_channels: int = Field(gt=0, le=24, description="DDR channels per socket")
    memory_type: str = Field(pattern=r"^(DDR3L?|DDR[45]|LPDDR5X?|MRDIMM)-\d{4}$",
                             description="Fastest supported memory at one DIMM per channel, e.g. DDR5-5600")
    memory_bytes_per_second: float = Field(description="Theoretical peak: channels x 8 bytes x MT/s")
    measured_bytes_per_second: float | Unknown = Field(
        "unknown", description="A STREAM-like measured bandwidth from a cited source")
    cores: int = Field(gt=0, le=1024)
    fp32_flops: float | Unknown = Field(description="Peak FP32 FLOP/s (vendor figure or named arithmetic)")
    max_memory_bytes: int = Field(gt=0, description="Vendor maximum memory per socket")
    tdp_watts: float | Unknown = "unknown"
    source: str = Field(min_length=1)
    as_of: str = Field(min_length=1)
    retrieved: str | None = None
    source_kind: Literal["primary", "secondary"] = "primary"
    notes: str = ""

    @field_validator("memory_bytes_per_second", "measured_bytes_per_second")
    @classmethod
    def _bandwidth(cls, v: Any) -> Any:
        return _in_range(v, 1e9, 1e13, "a bandwidth in bytes/s")

    @field_validator("fp32_flops")
    @classmethod
    def _flops(cls, v: Any) -> Any:
        return _in_range(v, 1e10, 1e15, "a FLOP/s figure")

    @property
    def memory_mt_per_s(self) -> int:
        """The transfer rate in the memory type's name (DDR5-5600 -> 5600)."""
        return int(self.memory_type.rsplit("-", 1)[1])


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "-", name.strip().lower())


@cache
def cpu_catalog() -> tuple[CPU, ...]:
    """All CPU rows, validated (loaded once, lazily)."""
    text = resources.files("rigsize.data").joinpath("cpus.toml").read_text(encoding="utf-8")
    return tuple(CPU.model_validate(row) for row in tomllib.loads(text)["cpu"])


@cache
def _index() -> dict[str, CPU]:
    out: dict[str, CPU] = {}
    for cpu in cpu_catalog():
        for name in (cpu.name, *cpu.aliases):
            out[_key(name)] = cpu
    return out


def resolve_cpu(name: str) -> CPU:
    """A catalog CPU by name or alias, or an error listing the closest names."""
    key = _key(name)
    cpu = _index().get(key)
    if cpu is None:
        prefixed = [k for k in _index() if k.startswith(key)] if len(key) >= 2 else []
        close = prefixed or difflib.get_close_matches(key, list(_index()), n=3, cutoff=0.5)
        names = sorted({_index()[c].name for c in close})[:6]
        hint = f"; did you mean {', '.join(names)}?" if names else ""
        raise HardwareError("cpu.unknown", name=name, hint=hint)
    return cpu


def cpu_table() -> list[dict[str, Any]]:
    """Rows for a ``--json`` listing."""
    return [c.model_dump(mode="json") for c in cpu_catalog()]
