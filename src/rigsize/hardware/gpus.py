"""The GPU catalog (``data/gpus.toml``) and user-described GPUs (``--gpu-spec FILE``).

Every row is validated by the same pydantic model, so a user's file gets the same
checks and the same one-line errors as the packaged catalog.  Peaks are datasheet
figures (dense, never sparsity); achievable fractions of them are assumptions kept
elsewhere and labelled as such.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rigsize.errors import HardwareError
from rigsize.units import GiB as GIB

DEFAULT_GPU = "H100-SXM-80GB"

Unknown = Literal["unknown"]


def _in_range(v: Any, lo: float, hi: float, what: str) -> Any:
    """A catalog figure: "unknown", or a finite number in [lo, hi] (never a bool)."""
    if v != "unknown" and (isinstance(v, bool) or not isinstance(v, (int, float))
                           or not math.isfinite(v) or not lo <= v <= hi):
        raise ValueError(f"must be {what} between {lo:g} and {hi:g}, or \"unknown\"")
    return v


class Interconnect(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")

    kind: str = Field(description="nvswitch | nvlink-pairs | nvlink-bridge | pcie | infinity-fabric | hccs | ...")
    per_direction_bytes_per_second: float | Unknown = Field(
        description="GPU-to-GPU bandwidth each way inside a node")

    @field_validator("per_direction_bytes_per_second")
    @classmethod
    def _bandwidth(cls, v: Any) -> Any:
        return _in_range(v, 1e6, 1e15, "a bandwidth in bytes/s")
    p2p: bool | Unknown = "unknown"
    bridge_group: int = Field(2, gt=0, description="nvlink-bridge: the cards one bridge joins (2, or 4 for 4-way "
                              "bridges); a wider group crosses PCIe")


class GPU(BaseModel):
    """One accelerator SKU.  Units: bytes, bytes/s, FLOP/s, watts."""

    model_config = ConfigDict(frozen=True, extra="allow")

    name: str
    aliases: tuple[str, ...] = ()
    kind: Literal["gpu", "apple", "apu", "cpu"] = Field(
        "gpu", description="gpu: a discrete accelerator with its own memory; apple: Apple silicon (GPU in a "
        "unified-memory SoC); apu: a PC SoC whose GPU shares system memory (Ryzen AI Max, DGX Spark GB10); "
        "cpu: a CPU used as the compute device")
    unified_memory: bool = Field(
        False, description="The GPU and CPU share one memory pool (memory_bytes is the whole system's RAM)")
    gpu_wired_fraction: float | Unknown | None = Field(
        None, description="Share of unified memory the OS lets the GPU wire by default (macOS "
        "iogpu.wired_limit_mb default); None where memory is not unified, \"unknown\" where no source says")

    @field_validator("gpu_wired_fraction")
    @classmethod
    def _fraction(cls, v: Any) -> Any:
        return v if v is None else _in_range(v, 0.05, 1.0, "a fraction")
    vendor: str
    architecture: str
    memory_gb: float | None = Field(None, description="Capacity as printed on the datasheet")
    memory_bytes: int = Field(gt=0, description="Nameplate capacity in bytes")
    memory_bytes_visible: int | Unknown = Field(
        "unknown", description="Total the runtime reports (nvidia-smi / torch.cuda.mem_get_info)")
    memory_cuda_gib: float | Unknown = Field(
        "unknown", description="Total CUDA reports (torch.cuda.mem_get_info()[1], vLLM's total_gpu_memory), "
        "GiB as printed; below nvidia-smi's total by what the driver keeps")
    hbm_bytes_per_second: float | Unknown = Field(description="Peak memory bandwidth")

    @field_validator("hbm_bytes_per_second")
    @classmethod
    def _bandwidth(cls, v: Any) -> Any:
        return _in_range(v, 1e9, 1e15, "a bandwidth in bytes/s")

    @field_validator("memory_bytes_visible", "gpus_per_node", "tdp_watts")
    @classmethod
    def _positive(cls, v: Any) -> Any:
        return _in_range(v, 1e-9, math.inf, "a positive number")
    dense_flops: dict[str, float | Unknown] = Field(
        description="Dense peak FLOP/s per dtype (no sparsity); 'unknown' where the hardware runs the dtype "
                    "but no rate is published")
    sparse_flops: dict[str, float | Unknown] = {}
    fp8_variant: str | None = None
    interconnect: Interconnect
    pcie: str = Field("unknown", pattern=r"^(unknown|gen[3-6] x(1|2|4|8|16))$",
                      description="Host link as the datasheet prints it (\"gen5 x16\"), or \"unknown\"")
    gpus_per_node: int | Unknown = Field(description="Typical GPUs in one server")
    nvlink_domain: int | None = Field(
        None, gt=0, description="GPUs joined by one NVLink switch fabric across several hosts (GB200/GB300 NVL72: "
        "72); None where the fabric ends at the server")
    tdp_watts: float | Unknown
    source: str = Field(min_length=1)
    as_of: str = Field(min_length=1, description="Date of the source document (YYYY, YYYY-MM or "
                       "YYYY-MM-DD), or \"unknown\"")
    retrieved: str | None = Field(None, description="Date the source was read (YYYY-MM-DD)")
    source_kind: Literal["primary", "secondary"] = Field(
        "primary", description="primary: the figures are the vendor's own (datasheet, whitepaper, product page, "
        "even when read through a copy); secondary: they rest on third parties only")
    skypilot_name: str | None = Field(
        None, description="AcceleratorName in SkyPilot's catalogs (skypilot-org/skypilot-catalog), None where "
        "SkyPilot lists none")
    notes: str = ""

    @field_validator("dense_flops")
    @classmethod
    def _positive_flops(cls, v: dict[str, float]) -> dict[str, float]:
        if not v:
            raise ValueError("needs at least one dtype")
        for dtype, flops in v.items():
            if flops != "unknown" and (isinstance(flops, bool) or not isinstance(flops, (int, float))
                                       or not 1e9 <= flops <= 1e18):
                raise ValueError(f"{dtype} must be a FLOP/s figure between 1e9 and 1e18")
        return v

    @model_validator(mode="after")
    def _visible_within_nameplate(self) -> "GPU":
        if isinstance(self.memory_bytes_visible, int) and self.memory_bytes_visible > self.memory_bytes:
            raise ValueError("memory_bytes_visible exceeds memory_bytes")
        return self

    @property
    def usable_memory_bytes(self) -> int:
        """What the runtime can allocate: CUDA's reported total where measured, else
        nvidia-smi's total, else the nameplate (``usable_memory_basis`` says which)."""
        if self.memory_cuda_gib != "unknown":
            return int(float(self.memory_cuda_gib) * GIB)
        return self.memory_bytes if self.memory_bytes_visible == "unknown" else int(self.memory_bytes_visible)

    @property
    def usable_memory_basis(self) -> str:
        if self.memory_cuda_gib != "unknown":
            return "cuda"
        return "nameplate" if self.memory_bytes_visible == "unknown" else "nvidia-smi"

    def supports(self, dtype: str) -> bool:
        return dtype in self.dense_flops

    def flops(self, dtype: str) -> float | None:
        """Dense peak for ``dtype``, or None where it is unknown or unsupported."""
        v = self.dense_flops.get(dtype)
        return float(v) if isinstance(v, (int, float)) else None

    @property
    def node_size(self) -> int:
        """GPUs per node for layout defaults; 8 (an HGX/OAM board) where the catalog says unknown."""
        return self.gpus_per_node if isinstance(self.gpus_per_node, int) else 8

    def scale_up(self, gpus_per_node: int) -> int:
        """GPUs a collective reaches over the GPU fabric: the NVLink domain of a rack-scale
        system (GB200 NVL72: 72, though each host has 4), else the server of ``gpus_per_node``."""
        return max(gpus_per_node, self.nvlink_domain or 0)


def _key(name: str) -> str:
    """Case-insensitive, separator-insensitive lookup key: 'h100 sxm' == 'H100-SXM'."""
    return re.sub(r"[\s_\-]+", "-", name.strip().lower())


@cache
def catalog() -> tuple[GPU, ...]:
    """All catalog rows, validated (loaded once, lazily)."""
    text = resources.files("rigsize.data").joinpath("gpus.toml").read_text()
    return tuple(GPU.model_validate(row) for row in tomllib.loads(text)["gpu"])


@cache
def _index() -> dict[str, GPU]:
    out: dict[str, GPU] = {}
    for gpu in catalog():
        for name in (gpu.name, *gpu.aliases):
            out[_key(name)] = gpu
    return out


def resolve_gpu(name: str) -> GPU:
    """A catalog GPU by name or alias, or an error listing the closest names."""
    gpu = _index().get(_key(name))
    if gpu is None:
        key = _key(name)
        prefixed = [k for k in _index() if k.startswith(key)] if len(key) >= 2 else []
        close = prefixed or difflib.get_close_matches(key, list(_index()), n=3, cutoff=0.5)
        names = sorted({_index()[c].name for c in close})[:6]
        hint = f"; did you mean {', '.join(names)}?" if names else ""
        raise HardwareError("gpu.unknown", name=name, hint=hint)
    return gpu


def load_gpu_spec(path: str | Path) -> GPU:
    """A GPU described in a TOML or JSON file with the catalog's fields.

    The file holds one GPU, either at top level or as the single ``[[gpu]]`` row.
    """
    p = Path(path)
    try:
        text = p.read_text()
        data: Any = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
    except OSError as exc:
        raise HardwareError("gpu.bad_spec", path=str(p), detail=exc.strerror or str(exc)) from None
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise HardwareError("gpu.bad_spec", path=str(p), detail=f"not valid TOML/JSON ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("gpu"), list) and len(data["gpu"]) == 1:
        data = data["gpu"][0]
    if not isinstance(data, dict):
        raise HardwareError("gpu.bad_spec", path=str(p), detail="expected one GPU table")
    try:
        return GPU.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "(file)"
        raise HardwareError("gpu.bad_spec", path=str(p), detail=f"field '{where}': {first['msg']}") from None


def gpu_table() -> list[dict[str, Any]]:
    """Rows for ``rigsize gpus --json``."""
    return [g.model_dump(mode="json") for g in catalog()]
