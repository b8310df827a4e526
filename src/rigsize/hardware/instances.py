"""Cloud GPU instances and their prices: the packaged catalog (``data/instances.toml``),
extended or overridden by the user's own file (``--prices``: rigsize's schema, or a
SkyPilot catalog ``vms.csv``).  Never goes to the network.

A price is per instance-hour in the currency published; ``usd_per_hour`` converts with
the row's stated rate (no rate: no USD figure, never a guess).  A price whose ``as_of``
is older than ``max_age_days`` is *stale*; "today" is ``RIGSIZE_TODAY`` (YYYY-MM-DD)
where set, so tests can fix it.
"""

from __future__ import annotations

import csv
import difflib
import math
import os
import tomllib
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from rigsize.errors import HardwareError, InputError
from rigsize.hardware.gpus import GPU, resolve_gpu
from rigsize.hardware.gpus import catalog as gpu_catalog

PRICINGS = ("on-demand", "spot", "1y", "3y")
_PRICE_KEYS = {"on-demand": "price_on_demand_per_hour", "spot": "price_spot_per_hour",
               "1y": "price_1y_per_hour", "3y": "price_3y_per_hour"}
DEFAULT_MAX_PRICE_AGE_DAYS = 180


@dataclass(frozen=True)
class Instance:
    provider: str
    name: str
    gpu: str                   # a catalog GPU name
    gpus: int
    prices: dict[str, float]   # pricing -> price per hour in ``currency`` (published ones only)
    currency: str = "USD"
    usd_rate: float | None = 1.0   # USD per unit of ``currency``
    vcpus: int | None = None
    ram_gib: float | None = None
    network: str = "unknown"
    regions: tuple[str, ...] = ()
    price_region: str = ""
    source: str = ""
    as_of: str = "unknown"
    notes: str = field(default="", compare=False)

    def usd_per_hour(self, pricing: str) -> float | None:
        price = self.prices.get(pricing)
        if price is None or self.usd_rate is None:
            return None
        return price * self.usd_rate

    def stale(self, max_age_days: int = DEFAULT_MAX_PRICE_AGE_DAYS) -> bool:
        """True when the price is older than ``max_age_days`` or its date is unknown."""
        try:
            published = date.fromisoformat(self.as_of[:10])
        except ValueError:
            return True
        return (today() - published).days > max_age_days


def today() -> date:
    fixed = os.environ.get("RIGSIZE_TODAY")
    if fixed:
        try:
            return date.fromisoformat(fixed)
        except ValueError:
            raise InputError("input.conflict", what=f"RIGSIZE_TODAY={fixed!r} is not a date; write YYYY-MM-DD") from None
    return date.today()


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _is_price(value: Any) -> bool:
    """A price the arithmetic can use: a finite number >= 0 (nan and inf parse from TOML
    and CSV alike, and an inf price made the planner's cost search never end)."""
    number = _number(value)
    return number is not None and math.isfinite(number) and number >= 0


def _from_row(row: dict[str, Any], origin: str) -> Instance | None:
    """One catalog row; placeholder rows (a provider known to offer a GPU, no instance
    read yet), rows whose GPU is not in the GPU catalog (they cannot be planned) and rows
    with no GPU count are kept out."""
    if row.get("placeholder") or row.get("gpu_catalog") is False or not isinstance(row.get("gpus"), int):
        return None
    prices = {p: v for p, key in _PRICE_KEYS.items() if (v := _number(row.get(key))) is not None}
    notes = str(row.get("notes", ""))
    if prices.get("spot", 0) > prices.get("on-demand", float("inf")):
        # a spot price above the on-demand one: the row's figures contradict each other, so
        # neither is used (rather than a possibly wrong on-demand price ranking first)
        prices = {}
        notes = "prices not used: the source's spot price is above its on-demand price. " + notes
    currency = str(row.get("currency", "USD")).upper()
    rate = 1.0 if currency == "USD" else _number(row.get("usd_rate"))
    return Instance(
        provider=str(row["provider"]), name=str(row["name"]), gpu=str(row["gpu"]), gpus=row["gpus"], prices=prices,
        currency=currency, usd_rate=rate, vcpus=row.get("vcpus") if isinstance(row.get("vcpus"), int) else None,
        ram_gib=_number(row.get("ram_gib")), network=str(row.get("network", "unknown")),
        regions=tuple(row.get("regions", ()) or ()), price_region=str(row.get("price_region", "")),
        source=str(row.get("source", origin)), as_of=str(row.get("as_of", "unknown")), notes=notes)


@cache
def packaged() -> tuple[Instance, ...]:
    path = resources.files("rigsize.data").joinpath("instances.toml")
    if not path.is_file():
        return ()
    rows = tomllib.loads(path.read_text()).get("instance", [])
    return tuple(i for r in rows if (i := _from_row(r, "data/instances.toml")) is not None)


@cache
def packaged_providers() -> frozenset[str]:
    """Every provider data/instances.toml names, its placeholder rows (a provider known to
    offer a GPU, no priced instance read yet) included."""
    path = resources.files("rigsize.data").joinpath("instances.toml")
    if not path.is_file():
        return frozenset()
    return frozenset(str(r["provider"]) for r in tomllib.loads(path.read_text()).get("instance", []) if "provider" in r)


def check_provider(provider: str, rows: tuple[Instance, ...]) -> None:
    """Refuse a ``--provider`` that neither the packaged catalog nor the user's price
    rows (``rows``, as ``catalog`` returns them) name: filtering by it would leave no
    instance, and the cost table would be empty for a reason the user did not cause."""
    known = sorted(packaged_providers() | {i.provider for i in rows})
    if provider not in known:
        close = difflib.get_close_matches(provider.lower(), known, n=1)
        raise InputError("cost.unknown_provider", name=provider, known=", ".join(known),
                         hint=f" (did you mean {close[0]}?)" if close else "")


def load_prices(path: str, provider: str | None = None) -> tuple[Instance, ...]:
    """The user's price file: rigsize's TOML schema (``[[instance]]`` rows as in
    data/instances.toml) or a SkyPilot ``vms.csv``."""
    p = Path(path)
    if not p.is_file():
        raise InputError("input.conflict", what=f"--prices {path}: no such file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError("input.conflict", what=f"--prices {path}: cannot be read as UTF-8 text "
                         f"({type(err).__name__}); give a TOML file of [[instance]] rows or a SkyPilot vms.csv") from None
    if p.suffix.lower() == ".csv":
        return skypilot_csv(p, provider)
    try:
        rows = tomllib.loads(text).get("instance", [])
    except tomllib.TOMLDecodeError as err:
        raise InputError("input.conflict", what=f"--prices {path}: not valid TOML ({err})") from None
    if not rows or not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InputError("input.conflict", what=f"--prices {path}: no [[instance]] rows (the schema is "
                         "data/instances.toml's: provider, name, gpu, gpus, price_on_demand_per_hour, ...)")
    return tuple(inst for i, r in enumerate(rows) if (inst := _from_row(_checked_row(r, path, i + 1), str(p))))


def _checked_row(row: dict[str, Any], path: str, n: int) -> dict[str, Any]:
    """One row of the user's price file with its GPU resolved to the catalog name; a
    missing key, a GPU the catalog does not know or a value of the wrong type is refused
    (``_from_row`` would drop such a row, and the user's price would be silently unused)."""
    where = f"--prices {path}: instance {n}"
    missing = [k for k in ("provider", "name", "gpu", "gpus") if k not in row]
    if missing:
        raise InputError("input.conflict", what=f"{where} lacks {', '.join(missing)}")
    if not isinstance(row["gpus"], int) or isinstance(row["gpus"], bool) or row["gpus"] < 1:
        raise InputError("input.conflict", what=f"{where}: gpus = {row['gpus']!r} must be a whole number >= 1")
    bad = [k for k in _PRICE_KEYS.values() if k in row and not _is_price(row[k])]
    if bad:
        raise InputError("input.conflict", what=f"{where}: {', '.join(bad)} must be a finite number >= 0 "
                         "(per instance-hour)")
    if "usd_rate" in row and not (_is_price(row["usd_rate"]) and row["usd_rate"] > 0):
        raise InputError("input.conflict", what=f"{where}: usd_rate = {row['usd_rate']!r} must be a finite number > 0 "
                         "(USD per unit of the row's currency)")
    if row.get("placeholder") or row.get("gpu_catalog") is False:
        return row
    try:
        gpu = resolve_gpu(str(row["gpu"])).name
    except HardwareError as err:
        raise InputError("input.conflict", what=f"{where}: {err}") from None
    return {**row, "gpu": gpu}


def _skypilot_names() -> dict[str, str]:
    """SkyPilot AcceleratorName -> catalog GPU name (the catalog's ``skypilot_name``)."""
    return {g.skypilot_name: g.name for g in gpu_catalog() if getattr(g, "skypilot_name", None)}


def skypilot_csv(path: Path, provider: str | None = None) -> tuple[Instance, ...]:
    """SkyPilot's ``catalogs/<version>/<cloud>/vms.csv``: one row per instance type and
    zone; the lowest on-demand and the lowest spot price per (instance type, region) are kept.  The provider is
    ``provider``, else the file's parent folder (SkyPilot names it after the cloud)."""
    cloud = provider or path.parent.name
    names = _skypilot_names()
    best: dict[tuple[str, str], dict[str, str]] = {}
    lowest: dict[tuple[str, str], dict[str, float]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        lacking = [c for c in ("InstanceType", "AcceleratorName", "AcceleratorCount", "Price")
                   if c not in (reader.fieldnames or ())]
        if lacking:
            raise InputError("input.conflict", what=f"--prices {path}: not a SkyPilot vms.csv (no "
                             f"{', '.join(lacking)} column); give that catalog file or a TOML file of [[instance]] rows")
        for row in reader:
            if row.get("AcceleratorName") not in names or not row.get("Price"):
                continue
            line = reader.line_num
            if not _csv_number(row, "AcceleratorCount", path, line, positive=True).is_integer():
                continue   # a fraction of a GPU (Azure's NV*ads A10 slices): not a server to plan
            if row.get("vCPUs"):
                _csv_number(row, "vCPUs", path, line, positive=True)
            if row.get("MemoryGiB"):
                _csv_number(row, "MemoryGiB", path, line)
            key = (row["InstanceType"], row.get("Region", ""))
            best.setdefault(key, row)
            low = lowest.setdefault(key, {})
            for pricing, column in (("on-demand", "Price"), ("spot", "SpotPrice")):
                if row.get(column):
                    low[pricing] = min(low.get(pricing, float("inf")), _csv_number(row, column, path, line))
    out = []
    for (name, region), row in sorted(best.items()):
        prices = lowest[(name, region)]
        out.append(Instance(provider=cloud, name=name, gpu=names[row["AcceleratorName"]],
                            gpus=int(float(row["AcceleratorCount"])), prices=prices,
                            vcpus=int(float(row["vCPUs"])) if row.get("vCPUs") else None,
                            ram_gib=float(row["MemoryGiB"]) if row.get("MemoryGiB") else None,
                            regions=(region,), price_region=region, source=f"{path} (SkyPilot catalog)",
                            as_of=date.fromtimestamp(path.stat().st_mtime).isoformat()))
    return tuple(out)


def _csv_number(row: dict[str, str], column: str, path: Path, line: int, *, positive: bool = False) -> float:
    """One numeric cell of a SkyPilot vms.csv (a price, a count, a memory size), refused
    unless a finite number >= 0 (> 0 for the counts)."""
    try:
        value = float(row[column])
    except ValueError:
        value = float("nan")
    if _is_price(value) and (value > 0 or not positive):
        return value
    need = ("a finite number > 0" if positive else "a finite number >= 0") + (
        " (per instance-hour)" if "Price" in column else "")
    raise InputError("input.conflict", what=f"--prices {path}: line {line}: {column} = {row[column]!r} must be {need}")


def catalog(prices_file: str | None = None, provider: str | None = None) -> tuple[Instance, ...]:
    """The packaged instances, with the user's file's rows replacing packaged rows of
    the same (provider, name, price region) and adding the rest."""
    rows = list(packaged())
    if prices_file:
        extra = load_prices(prices_file, provider)
        keys = {(i.provider, i.name, i.price_region) for i in extra}
        rows = [i for i in rows if (i.provider, i.name, i.price_region) not in keys] + list(extra)
    return tuple(rows)


def instances_for(gpu: GPU, rows: tuple[Instance, ...], provider: str | None = None,
                  region: str | None = None) -> list[Instance]:
    """Instances of ``gpu`` (by catalog name), optionally of one provider / region."""
    out = [i for i in rows if i.gpu == gpu.name]
    if provider:
        out = [i for i in out if i.provider == provider]
    if region:
        out = [i for i in out if region in i.regions or i.price_region == region]
    return out
