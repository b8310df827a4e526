"""``rigsize.estimate``: one model, one job, one layout, no search.

The flow (STYLE.md): parse options -> resolve model and GPU -> the job (workload, layout,
formats, engine; defaults echoed as assumptions; validated) -> its speed settings ->
``planning.evaluate.evaluate`` (memory per GPU, speed) -> suggestions where it does not fit
-> report.  The planner runs the same evaluation over many jobs.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rigsize.errors import PlanError
from rigsize.memory import runtime
from rigsize.messages import Note
from rigsize.model.inputs import ModelSpec, resolve_model, unknown_torch_dtype
from rigsize.planning.cost import check_cost_options
from rigsize.planning.evaluate import evaluate, model_report
from rigsize.planning.job import Job, default_inference_layout, fitting_memory, resolve_job, resolve_speed
from rigsize.planning.options import parse_options
from rigsize.report import EstimateReport


def estimate(model: str | ModelSpec, **options: Any) -> EstimateReport:
    """Size ``model`` for a job.  Options are those of ``rigsize estimate --help``
    (snake_case or hyphenated keys; strings like ``"8k"`` accepted).

    >>> estimate("qwen2-72b").model.params
    72706203648
    """
    opts = parse_options(options)
    spec = model if isinstance(model, ModelSpec) else resolve_model(model, opts.get("offline", False))
    check_cost_options(opts)
    assumptions: dict[str, Any] = {}
    warnings: list[Note] = list(spec.warnings)
    job, chosen = resolve_job(spec, opts, assumptions)
    speed, speed_notes = resolve_speed(job, opts, assumptions)
    job = replace(job, speed=speed)
    quant = spec.config.get("quantization_config")
    if quant is not None and "weights" not in opts and "quantization" not in assumptions.get("weights_reason", ""):
        method = quant.get("quant_method") if isinstance(quant, dict) else quant
        warnings.append(Note("model.unknown_quant", {"method": str(method)[:40], "fmt": job.weights.name}))
    odd_dtype = unknown_torch_dtype(spec.config)
    if odd_dtype is not None and "weights" not in opts and quant is None:
        warnings.append(Note("model.unknown_dtype", {"dtype": odd_dtype, "fmt": job.weights.name}))
    ev = evaluate(job)
    warnings += [n for n in ev.notes if n.key.startswith("memory.")]
    if chosen and not job.workload.training and ev.memory.fits and job.layout.gpus > 1:
        fewer = _fewest_inference_gpus(job)
        if fewer is not None and fewer < job.layout.gpus:
            warnings.append(Note("memory.fewer_gpus", {"n": fewer, "gpus": job.layout.gpus}))
    assumptions.update(runtime.assumptions(job.engine, job.workload))
    warnings += speed_notes + [n for n in ev.notes if not n.key.startswith("memory.")]
    memory = ev.memory_report
    if not ev.memory.fits:
        from rigsize.planning.suggest import suggestions  # suggest evaluates through planning.job

        memory = memory.model_copy(update={"suggestions": suggestions(spec, opts, job)})
    cost = None
    if ev.memory.fits:
        from rigsize.planning.cost import cost_settings, job_cost

        cost_notes: list[Note] = []
        cost = job_cost(job, ev.performance, cost_settings(opts, assumptions), cost_notes)
        warnings += cost_notes
    return EstimateReport(
        model=model_report(spec, job.weights, job.kv),
        task=job.workload.task,
        hardware=ev.hardware,
        parallel=ev.parallel,
        memory=memory,
        performance=ev.performance,
        cost=cost,
        inputs={"model": model if isinstance(model, str) else spec.name, **opts},
        assumptions=assumptions,
        warnings=[str(w) for w in warnings],
    )


def _fewest_inference_gpus(job: Job) -> int | None:
    for n in range(1, job.layout.gpus):
        if job.layout.gpus % n:
            continue
        try:
            trial = replace(job, layout=replace(default_inference_layout(job.spec.arch, n, job.gpu.node_size),
                                                ep=1))
        except PlanError:
            continue
        if fitting_memory(trial):
            return n
    return None
