"""Training validation: published runs with their layouts (training_runs.toml) and whole runs."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from rigsize.hardware.gpus import resolve_gpu
from rigsize.speed.error_bands import class_key
from rigsize.validation.common import Row

# ----------------------------------------------------------------------------------
# Training runs
# ----------------------------------------------------------------------------------

@cache
def training_runs() -> tuple[dict[str, Any], ...]:
    import tomllib

    text = resources.files("rigsize.data").joinpath("validation", "training_runs.toml").read_text()
    return tuple(tomllib.loads(text)["run"])


def _eq3_flops(run: dict[str, Any], arch: Any) -> float:
    """Narayanan et al. 2021 eq. 3: 96 B s l h^2 (1 + s/(6h) + V/(16 l h)) per iteration,
    the convention of their (and MT-NLG's, BLOOM's) reported TFLOP/s."""
    b, s, layer, h, v = run["global_batch"], run["seq"], arch.num_hidden_layers, arch.hidden_size, arch.vocab_size
    return 96 * b * s * layer * h * h * (1 + s / (6 * h) + v / (16 * layer * h))


# Fitting subset for the training efficiency (documented in data/efficiency.toml): the
# Narayanan et al. 2021 Table 1 rows; every other known-layout run is out of sample.
TRAINING_FIT_PREFIX = "narayanan2021-t1-"


def training_case(run: dict[str, Any]) -> tuple[Any, Any, Any, Any, str] | None:
    """(arch, workload, layout, gpu, network) of a known-layout run, or None if rigsize
    cannot express it (unknown fields)."""
    from rigsize.model.families import build_architecture
    from rigsize.model.inputs import preset_config
    from rigsize.planning.layout import Layout, Workload

    needed = ("tp", "pp", "dp", "micro_batch", "global_batch", "seq", "gpu")
    if run.get("class") != "known_layout" or any(not isinstance(run.get(k), (int, str)) or run.get(k) == "unknown"
                                                  for k in needed):
        return None
    cfg = dict(run["config"]) if "config" in run else preset_config(run["preset"])
    arch = build_architecture(cfg)
    recompute = run.get("recompute") if run.get("recompute") in ("none", "selective", "full") else "full"
    zero = run.get("zero") if isinstance(run.get("zero"), int) else 0
    framework = "deepspeed" if zero >= 2 else "megatron"
    ep = run.get("ep") if isinstance(run.get("ep"), int) else 1
    cp = run.get("cp") if isinstance(run.get("cp"), int) else 1
    layout = Layout(tp=run["tp"], pp=run["pp"], dp=run["dp"], cp=cp, ep=ep, sp=bool(run.get("sp") is True),
                    zero=zero, recompute=recompute, pp_first_layers=run.get("pp_first_layers"),
                    pp_last_layers=run.get("pp_last_layers"))
    workload = Workload(task="pretrain", batch=run["micro_batch"], seq=run["seq"], global_batch=run["global_batch"],
                        framework=framework)  # type: ignore[arg-type]
    network = run.get("network") if run.get("network") in _networks() else "ib-hdr-200x8"
    return arch, workload, layout, resolve_gpu(run["gpu"]), network


def _networks() -> dict[str, Any]:
    from rigsize.speed.training import networks

    return networks()


# Whole runs publish GPU-hours but not their layouts: rigsize predicts them with its own
# least-model-parallel Megatron layout on this many GPUs, a 4M-token batch (Llama 2 paper,
# Table 1) and 4096-token sequences where the source does not say.
WHOLE_RUN_GPUS, WHOLE_RUN_BATCH_TOKENS, WHOLE_RUN_SEQ = 1024, 4 * 2**20, 4096


def whole_run_rows() -> list[Row]:
    from rigsize.planning.estimate import estimate

    rows = []
    for run in training_runs():
        if run.get("class") != "whole_run" or not run.get("preset") or not isinstance(run.get("gpu_hours"), float):
            continue
        seq = run["seq"] if isinstance(run.get("seq"), int) else WHOLE_RUN_SEQ
        gpus = run["gpus"] if isinstance(run.get("gpus"), int) else WHOLE_RUN_GPUS
        batch = max(gpus, WHOLE_RUN_BATCH_TOKENS // seq // gpus * gpus)
        r = estimate(run["preset"], task="pretrain", gpu=run["gpu"], gpus=gpus, seq=seq, global_batch=batch,
                     recompute="selective", train_tokens=run["train_tokens"])
        if r.performance is None or r.performance.gpu_hours is None:
            continue
        rows.append(Row(run["case"].split("-")[0], run["case"], "gpu_hours", "whole-run (layout unknown)",
                        float(run["gpu_hours"]), r.performance.gpu_hours))
    return rows


def _megatron_bridge_row(run: dict[str, Any], eff: Any = None) -> Row:
    """A Megatron-Bridge table row, compared on the tokens/s/GPU it prints, not its "model
    TFLOP/s/GPU": that figure's FLOPs are Megatron-Bridge's own count (flop_utils.py), and
    comparing it with rigsize's count over rigsize's step time mixes two conventions.  The
    row goes through the same filling rules as training_runs_more.toml's Megatron-Bridge rows
    (``training_more._fill``); ``fsdp = true`` is Megatron-FSDP, so the framework stays megatron."""
    from rigsize.validation import training_more

    case = training_more.training_case({**run, "framework": "megatron-bridge (megatron-core)", "task": "pretrain",
                                        "split": "reserved"})
    assert not isinstance(case, str), f"{run['case']}: {case}"
    return Row(run["case"].split("-")[0], case.case, training_more.METRIC, case.split, case.measured_tokens_per_gpu,
               training_more.predicted_tokens_per_gpu(case, eff), case.cls)


def training_rows(eff: Any = None) -> list[Row]:
    from rigsize.speed.training import training_speed

    rows = []
    for run in training_runs():
        if run.get("flops_convention") == "megatron-bridge-model":
            rows.append(_megatron_bridge_row(run, eff))
            continue
        case = training_case(run)
        if case is None:
            continue
        arch, workload, layout, gpu, network = case
        vpp = run.get("vpp") if isinstance(run.get("vpp"), int) else 1
        precision = "fp8" if str(run.get("precision", "")).startswith("fp8") else "bf16"
        speed = training_speed(arch, workload, layout, gpu, gpus_per_node=int(run.get("gpus_per_node", 8)),
                               network=network, vpp=vpp, eff=eff, precision=precision)
        split = "fit" if run["case"].startswith(TRAINING_FIT_PREFIX) else "reserved"
        src = run["case"].split("-")[0]
        cls = class_key(workload.framework, gpu.architecture, arch.num_experts > 0)
        if isinstance(run.get("step_seconds"), (int, float)):
            rows.append(Row(src, run["case"], "step_s", split, float(run["step_seconds"]), speed.step_seconds, cls))
        elif isinstance(run.get("tflops_per_gpu"), (int, float)) and "eq3" in str(run.get("flops_convention", "")):
            predicted = _eq3_flops(run, arch) / (speed.step_seconds * layout.gpus) / 1e12
            rows.append(Row(src, run["case"], "tflops_per_gpu", split, float(run["tflops_per_gpu"]), predicted, cls))
        elif isinstance(run.get("mfu"), (int, float)):
            rows.append(Row(src, run["case"], "mfu", split, float(run["mfu"]), speed.mfu, cls))
        elif isinstance(run.get("tflops_per_gpu"), (int, float)):
            predicted = speed.model_flops_per_step / (speed.step_seconds * layout.gpus) / 1e12
            rows.append(Row(src, run["case"], "tflops_per_gpu", split, float(run["tflops_per_gpu"]), predicted, cls))
    return rows
