"""What a plan costs: the instances to rent (whole instances are paid for), per hour, per
million output tokens (inference) and per run (training), and what owning costs instead.

- Renting: a plan of G GPUs runs on ``ceil(G / usable)`` instances of a type that holds
  at least one of its *node groups*, ``usable`` being the whole groups one instance holds;
  every GPU of every instance is paid (``gpus_paid``).  A node group is what the speed
  and memory models put inside one node, on NVLink: for inference one replica's
  tp x pp GPUs (replicas are independent servers), or a whole node where a replica
  spans nodes; for training every node's GPUs (all of them exchange gradients and
  activations at NVLink speed in the model).  Options are listed cheapest first.
- $/M output tokens = $/h / (output tokens/s x 3600 / 1e6); for training, $/M trained
  tokens likewise from the training tokens/s (compute time, no allowance).
- A run: compute hours = tokens / (tokens/s) / 3600; wall-clock and rented hours are
  divided by the effective-training-time fraction of data/ownership.toml (failures,
  restarts, evaluation); the speed model's ``gpu_hours`` is left as it is.
- Owning, per hour: the servers' price over ``amortization_years``, power at the GPUs'
  TDP plus the host's draw times PUE at ``power_price``, colocation per kW of IT load,
  operations per server; break-even utilization = fixed cost per hour / (cheapest cloud
  $/h - power cost per hour): rent below it, own above it.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from rigsize.errors import InputError
from rigsize.hardware.gpus import GPU
from rigsize.hardware.instances import DEFAULT_MAX_PRICE_AGE_DAYS, Instance, catalog, check_provider, instances_for
from rigsize.messages import Note
from rigsize.planning.job import Job
from rigsize.report import CostInstance, CostReport, InferencePerformance, OnPremCost, TrainingPerformance

HOURS_PER_YEAR = 8760
HOURS_PER_MONTH = HOURS_PER_YEAR / 12


@cache
def ownership() -> dict[str, Any]:
    return tomllib.loads(resources.files("rigsize.data").joinpath("ownership.toml").read_text())


@dataclass(frozen=True)
class CostSettings:
    pricing: str = "on-demand"
    provider: str | None = None
    region: str | None = None
    prices_file: str | None = None
    max_price_age_days: int = DEFAULT_MAX_PRICE_AGE_DAYS
    server_price: float | None = None
    amortization_years: float | None = None
    power_price: float | None = None
    pue: float | None = None
    colo_per_kw_month: float = 0.0
    ops_per_server_year: float = 0.0
    run_tokens: float | None = None


def cost_settings(opts: dict[str, Any], assumptions: dict[str, Any]) -> CostSettings:
    """The cost options of ``opts``, with the defaults applied echoed in ``assumptions``."""
    if "pricing" not in opts:
        assumptions["pricing"] = "on-demand"
    tokens = opts.get("train_tokens")
    if opts.get("epochs") or opts.get("dataset_tokens"):
        if not (opts.get("epochs") and opts.get("dataset_tokens")) or tokens:
            raise InputError("input.conflict", what="--epochs goes with --dataset-tokens (and not with "
                             "--train-tokens): give both, or --train-tokens alone")
        tokens = opts["epochs"] * opts["dataset_tokens"]
    return CostSettings(
        pricing=opts.get("pricing", "on-demand"), provider=opts.get("provider"), region=opts.get("region"),
        prices_file=opts.get("prices"), max_price_age_days=int(opts.get("max_price_age", DEFAULT_MAX_PRICE_AGE_DAYS)),
        server_price=opts.get("server_price"), amortization_years=opts.get("amortization_years"),
        power_price=opts.get("power_price"), pue=opts.get("pue"),
        colo_per_kw_month=float(opts.get("colo_per_kw_month", 0.0)),
        ops_per_server_year=float(opts.get("ops_per_server_year", 0.0)), run_tokens=tokens)


def check_cost_options(opts: dict[str, Any]) -> None:
    """Refuse bad cost input before anything is evaluated, so the answer is the same
    whether or not the job fits (where it does not, no cost is computed): the
    ``--epochs`` / ``--dataset-tokens`` pair, an unreadable or malformed ``--prices``
    file, a ``--provider`` no catalog row names."""
    settings = cost_settings(opts, {})
    if settings.prices_file or settings.provider:
        rows = catalog(settings.prices_file, settings.provider)
        if settings.provider:
            check_provider(settings.provider, rows)


def node_group(gpu: GPU, gpus: int, tp: int, pp: int, training: bool) -> int:
    """GPUs that must share one instance (module docstring)."""
    node = gpu.node_size
    if training:
        return min(gpus, node)
    replica = max(1, tp * pp)
    return replica if replica <= node else node


def instance_options(job: Job, rows: tuple[Instance, ...], settings: CostSettings) -> list[CostInstance]:
    """Every instance type that can hold the plan, with how many and what they cost, cheapest first."""
    group = node_group(job.gpu, job.layout.gpus, job.layout.tp, job.layout.pp, job.workload.training)
    return renting_options(job.gpu, job.layout.gpus, group, rows, settings)


def renting_options(gpu: GPU, gpus: int, group: int, rows: tuple[Instance, ...],
                    settings: CostSettings) -> list[CostInstance]:
    """``instance_options`` for ``gpus`` GPUs in node groups of ``group``: known before any
    memory or speed is evaluated, so the planner can order its search by it."""
    group = max(1, group)
    pricing = "on-demand" if settings.pricing == "on-prem" else settings.pricing
    out = []
    for inst in instances_for(gpu, rows, settings.provider, settings.region):
        price = inst.usd_per_hour(pricing)
        if inst.gpus < group or price is None:
            continue
        usable = inst.gpus // group * group
        count = math.ceil(gpus / usable)
        out.append(CostInstance(provider=inst.provider, name=inst.name, count=count, gpus_paid=count * inst.gpus,
                                usd_per_hour=count * price, price_as_of=inst.as_of,
                                stale=inst.stale(settings.max_price_age_days), region=inst.price_region,
                                source=inst.source))
    return sorted(out, key=lambda c: (c.usd_per_hour, c.provider, c.name))


def on_prem(job: Job, settings: CostSettings, cloud_per_hour: float | None) -> OnPremCost:
    """Owning the plan's servers, per hour of ownership (module docstring)."""
    return owning(job.gpu, job.layout.gpus, settings, cloud_per_hour)


def owning(gpu: GPU, gpus: int, settings: CostSettings, cloud_per_hour: float | None = None) -> OnPremCost:
    """``on_prem`` for ``gpus`` GPUs of ``gpu`` in whole servers of ``gpu.node_size``: known
    before any memory or speed is evaluated, so the planner can order an on-prem search by it.
    Every term is proportional to the GPUs (power, colocation) or to the servers
    (ceil(gpus / node_size): price, operations)."""
    own = ownership()
    nodes = math.ceil(gpus / gpu.node_size)
    tdp = gpu.tdp_watts if isinstance(gpu.tdp_watts, (int, float)) else None
    watts = None if tdp is None else gpus * (tdp + own["host_power"]["watts_per_gpu"])
    pue = settings.pue or own["pue"]["value"]
    price = settings.power_price if settings.power_price is not None else own["power_price"]["us"]["usd_per_kwh"]
    years = settings.amortization_years or own["amortization"]["years"]
    power_per_hour = None if watts is None else watts / 1000 * pue * price
    capex = None if settings.server_price is None else settings.server_price * nodes
    fixed = None
    if capex is not None and watts is not None:
        fixed = (capex / (years * HOURS_PER_YEAR) + settings.colo_per_kw_month * watts / 1000 / HOURS_PER_MONTH
                 + settings.ops_per_server_year * nodes / HOURS_PER_YEAR)
    per_hour = None if fixed is None or power_per_hour is None else fixed + power_per_hour
    break_even = None
    if fixed is not None and cloud_per_hour is not None and power_per_hour is not None and cloud_per_hour > power_per_hour:
        break_even = fixed / (cloud_per_hour - power_per_hour)
    return OnPremCost(usd_per_hour=per_hour, capex_usd=capex, power_watts=watts, break_even_utilization=break_even,
                      amortization_years=years, pue=pue, usd_per_kwh=price)


def job_cost(job: Job, performance: InferencePerformance | TrainingPerformance | None, settings: CostSettings,
             notes: list[Note]) -> CostReport:
    rows = catalog(settings.prices_file, settings.provider)
    options = instance_options(job, rows, settings)
    cloud = options[0].usd_per_hour if options else None
    owned = on_prem(job, settings, cloud)
    per_hour = owned.usd_per_hour if settings.pricing == "on-prem" else cloud
    if not options and settings.pricing != "on-prem":
        notes.append(Note("cost.no_instance", {"gpu": job.gpu.name, "pricing": settings.pricing}))
    if settings.pricing == "on-prem" and owned.usd_per_hour is None:
        notes.append(Note("cost.no_server_price", {}))
    if options and options[0].stale:
        notes.append(Note("cost.stale", {"name": options[0].name, "as_of": options[0].price_as_of,
                                         "days": settings.max_price_age_days}))
    per_mtok = per_mtrain = total = gpu_hours = days = None
    if isinstance(performance, InferencePerformance) and per_hour is not None:
        per_mtok = per_hour / (performance.output_tokens_per_second * 3600 / 1e6)
    if isinstance(performance, TrainingPerformance) and per_hour is not None:
        per_mtrain = per_hour / (performance.tokens_per_second * 3600 / 1e6)
    if isinstance(performance, TrainingPerformance) and settings.run_tokens:
        effective = ownership()["run_allowance"]["effective_training_time"]
        hours = settings.run_tokens / performance.tokens_per_second / 3600 / effective
        days, gpu_hours = hours / 24, hours * job.layout.gpus
        total = None if per_hour is None else per_hour * hours
    return CostReport(pricing=settings.pricing, usd_per_hour=per_hour, usd_per_million_output_tokens=per_mtok,
                      usd_per_million_train_tokens=per_mtrain,
                      usd_total=total, gpu_hours_with_allowance=gpu_hours, days_with_allowance=days,
                      instances=options, on_prem=owned)
