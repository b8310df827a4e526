"""The one evaluation path: a fully specified job (``planning.job.Job``) -> the report blocks.

``estimate`` is option parsing, ``resolve_job`` / ``resolve_speed`` and one call of
``evaluate``; the planner evaluates its candidates through the same function, so no
formula has a second copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rigsize.errors import InputError
from rigsize.memory.per_gpu import MemoryResult, Parts
from rigsize.messages import Note
from rigsize.model import formats, recurrent, vision
from rigsize.model.architecture import active_params, breakdown, layer_type_counts
from rigsize.model.formats import KVFormat, WeightFormat
from rigsize.model.inputs import ModelSpec
from rigsize.planning.job import Job, evaluate_memory
from rigsize.report import (
    Bound,
    HardwareReport,
    InferencePerformance,
    MemoryReport,
    ModelReport,
    ParallelReport,
    PerGpuReport,
    Speculative,
    StageMemory,
    TrainingBreakdown,
    TrainingPerformance,
    VisionEncoder,
)
from rigsize.speed.error_bands import bands

# The figures an error band covers (performance.error_band's keys).  A band measures the
# packaged efficiencies: with --efficiency or --profile overrides there is none.
SERVING_BAND_FIELDS = ("ttft_seconds", "tpot_seconds", "output_tokens_per_second")
TRAINING_BAND_FIELDS = ("step_seconds", "mfu", "tokens_per_second")


@dataclass(frozen=True)
class Evaluation:
    """What one job evaluates to: the report's memory, hardware, parallel and
    performance blocks, the memory result they came from, and notes for the user."""

    memory: MemoryResult
    memory_report: MemoryReport
    hardware: HardwareReport
    parallel: ParallelReport
    performance: InferencePerformance | TrainingPerformance | None
    notes: list[Note] = field(default_factory=list)


def evaluate(job: Job) -> Evaluation:
    """Memory, then speed where the job fits and ``job.speed`` is set."""
    result = evaluate_memory(job)
    notes: list[Note] = []
    if result.kv is not None and not result.kv.starts and result.per_gpu.total <= result.usable_bytes:
        notes.append(Note("memory.engine_refuses", {"max_len": result.kv.max_model_len, "tokens": result.kv.tokens,
                                                    "single": result.kv.max_context_single}))
    if job.gpu.usable_memory_basis != "cuda":
        notes.append(Note("memory.gpu_memory_basis", {"gpu": job.gpu.name, "basis": job.gpu.usable_memory_basis,
                                                      "gib": job.gpu.usable_memory_bytes / 2**30}))
    performance = None
    if job.speed is not None:
        speed = _training_performance if job.workload.training else _inference_performance
        performance = speed(job, result, notes)
    return Evaluation(result, memory_report(result), hardware_report(job), parallel_report(job), performance, notes)


def _inference_performance(job: Job, result: MemoryResult, notes: list[Note]) -> InferencePerformance | None:
    if job.local is not None:       # llama.cpp / Ollama / MLX: rigsize.speed.local
        from rigsize.speed.local import local_performance

        if not result.fits and (result.gpu_short_bytes or result.host_short_bytes):
            from rigsize.units import GiB

            # say which memory is short: the GPUs', system RAM's (layers kept on the CPU), or both
            if result.gpu_short_bytes:
                notes.append(Note("perf.not_fit", {"short_gib": result.gpu_short_bytes / GiB}))
            if result.host_short_bytes:
                notes.append(Note("perf.not_fit_host", {"short_gib": result.host_short_bytes / GiB}))
            return None
        return local_performance(job, result, notes)
    from rigsize.speed.serving import serve

    sp = job.speed
    if not result.fits or not result.max_concurrency:
        from rigsize.units import GiB

        over = result.per_gpu.total - result.usable_bytes      # the parts themselves overflow
        notes.append(Note("perf.not_fit", {"short_gib": -result.headroom_bytes / GiB}) if over > 0
                     else Note("perf.no_kv_room"))
        return None
    w = job.workload
    try:
        encoder = _encoder(job)
        s = serve(job.spec.arch, job.layout, job.gpu, job.weights, job.kv, sp.efficiency, job.engine, w.batch,
                  w.prompt, w.output, kv_capacity=result.max_concurrency,
                  encoder_seconds=encoder.seconds if encoder else 0.0, acceptance=sp.acceptance_rate)
    except InputError as err:     # a catalog GPU without a published peak: say so, keep memory
        notes.append(Note("perf.unknown", {"why": str(err)}))
        return None
    from rigsize.speed.roofline import INFERENCE_NETWORK, spans_nodes

    if spans_nodes(job.gpu, job.layout.tp):
        notes.append(Note("perf.tp_across_nodes", {"tp": job.layout.tp, "node": job.gpu.scale_up(job.gpu.node_size),
                                                   "network": INFERENCE_NETWORK}))
    per_replica = -(-w.batch // job.layout.dp)      # s.running counts one data-parallel replica
    if s.running < per_replica:
        notes.append(Note("perf.queueing", {"running": s.running, "batch": per_replica}))
    if job.engine.speculative_tokens and sp.acceptance_rate is not None:
        notes.append(Note("perf.speculative_unvalidated", {"rate": sp.acceptance_rate}))
    return InferencePerformance(
        ttft_seconds=s.ttft_seconds, tpot_seconds=s.tpot_seconds, itl_seconds=s.itl_seconds,
        e2e_seconds=s.e2e_seconds, output_tokens_per_second=s.output_tokens_per_second,
        output_tokens_per_second_per_gpu=s.output_tokens_per_second_per_gpu,
        requests_per_second=s.requests_per_second, max_concurrency=result.max_concurrency, running=s.running,
        bound=Bound(prefill=s.prefill_bound, decode=s.decode_bound),
        efficiency={k: v for k, v in sp.efficiency.__dict__.items() if k != "source"}, efficiency_source=sp.source,
        error_band=bands("serving", sp.band_class, SERVING_BAND_FIELDS) if sp.band_class else {},
        encoder=encoder, speculative=_speculative(job, s.tokens_per_step),
    )


def _speculative(job: Job, tokens_per_step: float) -> Speculative | None:
    """What --speculative applied: the draft, its token count and acceptance, with the source."""
    if not job.engine.speculative_tokens or job.speed is None or job.speed.acceptance_rate is None:
        return None
    return Speculative(method="mtp", num_speculative_tokens=job.engine.speculative_tokens,
                       acceptance_rate=job.speed.acceptance_rate, acceptance_source=job.speed.acceptance_source,
                       tokens_per_step=tokens_per_step)


def _encoder(job: Job) -> VisionEncoder | None:
    """The vision encoder's part of a request's prefill (``speed.serving.encoder_time`` over
    ``model.vision.encoder_work``), where the request has images."""
    from rigsize.speed.serving import encoder_time

    w = job.workload
    if not w.images or w.image_size is None:
        return None
    work = vision.encoder_work(job.spec.config, job.spec.arch.tensors, *w.image_size)
    step = encoder_time(job.spec.arch, job.layout, job.gpu, job.weights, job.speed.efficiency, work, w.images)
    return VisionEncoder(images=w.images, patches_per_image=work.patches, tokens_per_image=work.merged,
                         flops_per_request=step.flops, attention_flops_per_request=w.images * work.attention_flops,
                         weight_bytes_per_gpu=int(step.weight_bytes), seconds=step.seconds, bound=step.bound)


def _training_performance(job: Job, result: MemoryResult, notes: list[Note]) -> TrainingPerformance | None:
    from rigsize.speed.training import training_speed

    sp = job.speed
    if not result.fits:
        from rigsize.units import GiB

        notes.append(Note("perf.not_fit", {"short_gib": (result.per_gpu.total - result.usable_bytes) / GiB}))
        return None
    eff = sp.efficiency
    try:
        s = training_speed(job.spec.arch, job.workload, job.layout, job.gpu, gpus_per_node=sp.gpus_per_node,
                           network=sp.network, vpp=sp.vpp, train_tokens=sp.train_tokens, eff=eff,
                           precision=sp.precision, host=sp.host)
    except InputError as err:
        notes.append(Note("perf.unknown", {"why": str(err)}))
        return None
    return TrainingPerformance(
        step_seconds=s.step_seconds, tokens_per_second=s.tokens_per_second, samples_per_second=s.samples_per_second,
        mfu=s.mfu, hfu=s.hfu, bound=s.bound, breakdown=TrainingBreakdown(**s.breakdown),
        flops_convention="PaLM (Chowdhery et al. 2022) Appendix B: 6N + 12LHQT per token over the attention "
                         "layers (sliding windows at their span); N excludes the input embedding; HFU adds "
                         "recomputation",
        train_days=s.train_days, gpu_hours=s.gpu_hours,
        efficiency={"e_max": eff.e_max, "width_half": eff.width_half, "link": eff.link,
                    **({"attention": eff.attention} if eff.attention else {})},
        efficiency_source=sp.source,
        error_band=bands("training", sp.band_class, TRAINING_BAND_FIELDS) if sp.band_class else {},
    )


def model_report(spec: ModelSpec, weight_fmt: WeightFormat, kv_fmt: KVFormat) -> ModelReport:
    """The ``model`` block: counts, bytes per KV token and weight bytes."""
    arch = spec.arch
    ckpt = spec.checkpoint
    return ModelReport(
        name=spec.name, source=spec.source, origin=spec.origin, approximate=spec.approximate,
        model_type=arch.model_type, params=arch.params, active_params=active_params(arch),
        stored_params=ckpt.stored_params if ckpt else None,
        stored_bytes=ckpt.stored_bytes if ckpt else None,
        kv_bytes_per_token=formats.kv_bytes_per_token(arch, kv_fmt), kv_dtype=kv_fmt.name,
        weight_bytes=formats.weights_bytes(weight_fmt, arch.tensors, arch.num_hidden_layers),
        weight_format=weight_fmt.name, breakdown=breakdown(arch),
        num_hidden_layers=arch.num_hidden_layers, hidden_size=arch.hidden_size,
        max_position_embeddings=arch.max_position_embeddings,
        config=dict(spec.config) if spec.approximate else None,
        state_bytes_per_sequence=recurrent.state_bytes_per_sequence(
            arch, 32 if spec.config.get("torch_dtype") == "float32" else 16, 32),
        layer_types=layer_type_counts(arch), params_mtp=arch.params_mtp,
        params_vision=vision.vision_params(arch.tensors),
        architectures=[a for a in spec.config.get("architectures") or () if isinstance(a, str)],
    )


# ----------------------------------------------------------------------------------
# Inputs -> a fully specified job
# ----------------------------------------------------------------------------------


def hardware_report(job: Job) -> HardwareReport:
    node = job.gpu.node_size
    gpus = job.layout.gpus
    return HardwareReport(gpu=job.gpu.name, gpus=gpus, nodes=-(-gpus // node), gpus_per_node=min(gpus, node),
                          gpu_memory_bytes=job.gpu.memory_bytes, gpu_memory_bytes_visible=job.gpu.usable_memory_bytes)


def parallel_report(job: Job) -> ParallelReport:
    lay, w = job.layout, job.workload
    return ParallelReport(tp=lay.tp, pp=lay.pp, dp=lay.dp, ep=lay.ep, cp=lay.cp, sp=lay.sp, zero=lay.zero,
                          offload=lay.offload, recompute=lay.recompute,
                          micro_batch=w.batch if w.training else None,
                          global_batch=w.global_batch if w.training else None)


def _per_gpu_report(p: Parts) -> PerGpuReport:
    return PerGpuReport(weights=p.weights, kv_cache=p.kv_cache, activations=p.activations, gradients=p.gradients,
                        optimizer=p.optimizer, overhead=p.overhead, recurrent_state=p.recurrent_state,
                        encoder_cache=p.encoder_cache, total=p.total)


def memory_report(result: MemoryResult) -> MemoryReport:
    """The memory block; suggestions (which re-estimate) are added by ``estimate``."""
    per_stage = [StageMemory(stage=st.index, role=st.role, first_layer=st.layers.start, num_layers=len(st.layers),
                             per_gpu=_per_gpu_report(parts)) for st, parts in result.stages]
    kv = result.kv
    return MemoryReport(
        per_gpu=_per_gpu_report(result.per_gpu), per_stage=per_stage,
        kv_cache_tokens=kv.tokens if kv else None, max_model_len=kv.max_model_len if kv else None,
        max_concurrency_at_max_model_len=round(kv.concurrency_at_max_model_len, 4) if kv else None,
        max_context_single=kv.max_context_single if kv else None,
        max_context_at_concurrency=kv.max_context_at_concurrency if kv else None,
        usable_bytes=result.usable_bytes, fits=result.fits, headroom_bytes=result.headroom_bytes,
        max_concurrency=result.max_concurrency, busiest_stage=result.stage,
        kv_bytes_per_sequence=result.kv_bytes_per_sequence, details=result.details,
        suggestions=[],
    )
