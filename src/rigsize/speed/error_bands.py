"""How far off rigsize's speed figures have been, shown beside them.

An error band is measured, never assumed: for a class of published runs (serving:
engine x GPU family x dense or MoE; training: framework x GPU family x dense or MoE)
it is the median and 90th percentile of ``|predicted / measured - 1|`` over the
class's *reserved* rows only, the rows no efficiency was fitted on.  A class with
fewer reserved rows than ``MIN_ROWS`` (serving 20, training 5: the issue targets'
thresholds) gets no band: the figure is reported as not validated there.

The bands are computed by ``bench/error_bands.py`` from ``rigsize.validation`` and
packaged as ``data/validation/error_bands_<kind>.toml``; ``tests/test_error_bands.py``
recomputes a class and checks the file agrees, so a stale file fails CI.
"""

from __future__ import annotations

import math
import statistics
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from rigsize.hardware.gpus import GPU

Kind = Literal["serving", "training"]
MIN_ROWS: dict[str, int] = {"serving": 20, "training": 5}

# GPU families as the bands name them (the catalog's ``architecture`` field).
FAMILY_NAMES = {"ampere": "Ampere", "ada": "Ada", "hopper": "Hopper", "blackwell": "Blackwell",
                "cdna3": "CDNA 3", "volta": "Volta", "turing": "Turing", "gaudi3": "Gaudi 3", "davinci": "Ascend"}


def class_key(engine: str, gpu_family: str, moe: bool) -> str:
    """``engine|family|dense`` (or ``|moe``): engine or framework, the catalog's
    architecture name in lower case, and whether routed experts run."""
    return f"{engine}|{gpu_family.lower()}|{'moe' if moe else 'dense'}"


def gpu_class_key(engine: str, gpu: GPU, moe: bool) -> str:
    return class_key(engine, gpu.architecture, moe)


@dataclass(frozen=True)
class Band:
    median_abs: float
    p90_abs: float
    n: int
    cls: str

    def as_json(self) -> dict[str, float | int | str]:
        return {"median_abs": self.median_abs, "p90_abs": self.p90_abs, "n": self.n, "class": self.cls}


def summarize(errors: list[float], cls: str) -> Band:
    """Median and 90th percentile (nearest rank) of the absolute relative errors."""
    values = sorted(abs(e) for e in errors)
    p90 = values[max(0, math.ceil(0.9 * len(values)) - 1)]
    return Band(statistics.median(values), p90, len(values), cls)


@cache
def _table(kind: str) -> dict:
    path = resources.files("rigsize.data").joinpath("validation", f"error_bands_{kind}.toml")
    return tomllib.loads(path.read_text()) if path.is_file() else {"class": {}}


def band(kind: Kind, cls: str, field: str) -> Band | None:
    """The packaged band of ``field`` for class ``cls``; None where the class has fewer
    than ``MIN_ROWS[kind]`` reserved rows (or none)."""
    row = _table(kind)["class"].get(cls, {}).get(field)
    if not row or row["n"] < MIN_ROWS[kind]:
        return None
    return Band(row["median_abs"], row["p90_abs"], row["n"], cls)


def bands(kind: Kind, cls: str, fields: tuple[str, ...]) -> dict[str, dict | None]:
    """``performance.error_band``: each field's band as JSON, or None."""
    out: dict[str, dict | None] = {}
    for field in fields:
        b = band(kind, cls, field)
        out[field] = b.as_json() if b else None
    return out


ENGINE_NAMES = {"vllm": "vLLM", "sglang": "SGLang", "trtllm": "TensorRT-LLM", "megatron": "Megatron-LM",
                "fsdp": "FSDP", "deepspeed": "DeepSpeed", "torchtitan": "torchtitan", "torchtune": "torchtune",
                "hf": "HF Trainer", "trl": "TRL", "unsloth": "Unsloth", "llamafactory": "LLaMA-Factory"}


def names(cls: str) -> tuple[str, str, bool]:
    """(engine or framework, GPU family, MoE?) of a class key, as people write them."""
    engine, family, kind = cls.split("|")
    return ENGINE_NAMES.get(engine, engine), FAMILY_NAMES.get(family, family), kind == "moe"
