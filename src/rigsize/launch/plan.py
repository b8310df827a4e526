"""The plan a launch starts from: one recommendation of ``rigsize plan --json`` (a task's plan, or the
scenario overview), read into the fields the emitters need.  Nothing here recomputes a number: every
value is the plan's own (``choices``, ``parallel``, ``hardware``, ``memory``, ``inputs``, ``assumptions``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rigsize.errors import InputError


@dataclass(frozen=True)
class PlannedRun:
    model: str              # the name as planned (preset, Hub id, path)
    hub_id: str | None      # what an engine loads (a preset's Hugging Face id, a Hub id as given, or None)
    task: str
    gpu: str
    gpus: int
    nodes: int
    gpus_per_node: int
    tp: int
    pp: int
    dp: int
    ep: int
    cp: int
    sp: bool
    zero: int
    offload: str
    recompute: str
    micro_batch: int | None
    global_batch: int | None
    vpp: int
    weights: str
    kv_dtype: str
    engine: str | None
    framework: str | None
    seq: int
    batch: int
    lora_rank: int
    lora_targets: str | None
    max_model_len: int | None
    max_num_seqs: int | None
    max_num_batched_tokens: int | None
    gpu_memory_utilization: float | None
    memory_visible_bytes: int
    per_gpu: dict[str, int]          # the plan's busiest-GPU breakdown (weights, kv_cache, activations, ...)
    kv_bytes_per_sequence: int
    num_hidden_layers: int
    record: dict[str, Any]           # the recommendation itself (written to rigsize-plan.json)
    speculative_tokens: int = 0      # --speculative mtp: draft tokens per step (0: no speculative decoding)
    mem_fraction_static: float | None = None   # SGLang plans: the budget share the plan was sized with
    kv_free_fraction: float | None = None      # TensorRT-LLM plans: the free-memory share the plan was sized with


def read_plan_file(path: str) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError("input.conflict", what=f"--plan-file {path}: no such file") from None
    except IsADirectoryError:
        raise InputError("input.conflict", what=f"--plan-file {path}: a directory; give the JSON file that "
                         "rigsize plan --json wrote") from None
    except OSError as err:
        raise InputError("input.conflict", what=f"--plan-file {path}: cannot be read ({err.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError("input.conflict", what=f"--plan-file {path}: not valid JSON ({err})") from None


def select(plan: dict[str, Any], rank: int = 1, scenario: str | None = None) -> dict[str, Any]:
    """The recommendation ``rank`` (1 = best) of a plan, or of the overview's ``scenario``."""
    if not isinstance(plan, dict):
        raise InputError("input.conflict", what="not a rigsize plan: the file must hold the JSON object "
                         "rigsize plan --json prints")
    _check_version(plan)
    if "scenarios" in plan:
        keys = ", ".join(plan["scenarios"])
        if not scenario:
            raise InputError("input.conflict", what=f"this plan file is an overview; add --scenario KEY ({keys})")
        if scenario not in plan["scenarios"]:
            raise InputError("input.conflict", what=f"--scenario {scenario}: not in this plan file ({keys})")
        plan = plan["scenarios"][scenario]
        if "error" in plan:
            raise InputError("input.conflict", what=f"scenario {scenario} has no plan: {plan['error']}")
    elif scenario:
        raise InputError("input.conflict", what="--scenario needs an overview plan file (rigsize plan MODEL --json "
                         "without --task)")
    recs = plan.get("recommendations")
    if not isinstance(recs, list):
        raise InputError("input.conflict", what="not a rigsize plan: no 'recommendations' (save one with "
                         "rigsize plan MODEL --task T --json)")
    if not recs:
        rejected = ", ".join(f"{k} {v}" for k, v in (plan.get("rejected") or {}).items() if v) or "-"
        raise InputError("input.conflict", what=f"the plan has no recommendation (nothing met the goals; rejected: "
                         f"{rejected}); relax them and plan again"
                         + (", e.g. a shorter --max-model-len" if (plan.get("rejected") or {}).get("context_too_long")
                            else ""))
    if not 1 <= rank <= len(recs):
        raise InputError("input.conflict", what=f"--rank {rank}: the plan has ranks 1 to {len(recs)}")
    return recs[rank - 1]


def _hub_id(model: dict[str, Any]) -> str | None:
    if model["source"] == "hub":
        return model["name"]
    if model["source"] == "preset":
        from rigsize.model.inputs import presets

        row = presets().get(model["name"])
        return row.hub_id if row else None
    if model["source"] in ("config", "folder"):
        return model["name"]
    return None


SCHEMA_VERSION = 1       # the schema_version rigsize plan --json writes (planning.search)
_SECTIONS = ("model", "task", "choices", "parallel", "hardware", "memory")
_POSITIVE = {"parallel": ("tp", "pp", "dp", "ep", "cp"), "choices": ("gpus",),
             "hardware": ("gpus", "nodes", "gpus_per_node")}


def _check_record(rec: Any) -> None:
    """Refuse a recommendation that ``rigsize plan --json`` could not have written (a file
    edited by hand or by another tool): its schema version, its sections, its layout sizes
    (whole numbers >= 1) and its GPU (one the catalogs know, unless it came from --gpu-spec)."""
    bad = "input.conflict"
    if not isinstance(rec, dict):
        raise InputError(bad, what="not a rigsize plan: a recommendation must be a JSON object")
    _check_version(rec)
    lacking = [k for k in _SECTIONS if not isinstance(rec.get(k), str if k == "task" else dict)]
    if lacking:
        raise InputError(bad, what=f"not a rigsize plan: the recommendation lacks {', '.join(lacking)} (save one "
                         "with rigsize plan MODEL --task T --json)")
    for section, keys in _POSITIVE.items():
        for key in keys:
            value = rec[section].get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(bad, what=f"the plan's {section}.{key} = {json.dumps(value)} must be a whole "
                                 "number >= 1; plan again rather than edit the file")
    spec_given = bool((rec.get("inputs") or {}).get("gpu_spec"))
    for section in ("choices", "hardware"):
        gpu = rec[section].get("gpu")
        if not isinstance(gpu, str) or (not spec_given and not _known_device(gpu)):
            raise InputError(bad, what=f"the plan's {section}.gpu {json.dumps(gpu)} is not in the GPU or CPU catalog "
                             "('rigsize gpus' lists it); plan again rather than edit the file")
    if rec["choices"]["gpu"] != rec["hardware"]["gpu"]:
        raise InputError(bad, what=f"the plan's choices.gpu {json.dumps(rec['choices']['gpu'])} and hardware.gpu "
                         f"{json.dumps(rec['hardware']['gpu'])} differ; plan again rather than edit the file")


def _check_version(body: dict[str, Any]) -> None:
    if body.get("schema_version", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise InputError("input.conflict", what=f"the plan file has schema_version "
                         f"{json.dumps(body['schema_version'])}; this rigsize reads {SCHEMA_VERSION}: plan again "
                         "with this version (rigsize plan MODEL --task T --json)")


def _known_device(name: str) -> bool:
    from rigsize.errors import HardwareError
    from rigsize.hardware.cpus import resolve_cpu
    from rigsize.hardware.gpus import resolve_gpu

    for resolve in (resolve_gpu, resolve_cpu):
        try:
            resolve(name)
            return True
        except HardwareError:
            pass
    return False


def planned_run(rec: dict[str, Any]) -> PlannedRun:
    _check_record(rec)
    try:
        return _planned_run(rec)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise InputError("input.conflict", what=f"not a rigsize plan: a recommendation field is missing or malformed "
                         f"({type(err).__name__}: {err}); plan again with rigsize plan MODEL --task T --json") from None


def _planned_run(rec: dict[str, Any]) -> PlannedRun:
    ch, par, hw, mem = rec["choices"], rec["parallel"], rec["hardware"], rec["memory"]
    inp, asm = rec.get("inputs", {}), rec.get("assumptions", {})

    def get(key: str, default: Any = None) -> Any:
        return inp.get(key, asm.get(key, default))

    return PlannedRun(
        model=rec["model"]["name"], hub_id=_hub_id(rec["model"]), task=rec["task"], gpu=ch["gpu"],
        gpus=ch["gpus"], nodes=hw["nodes"], gpus_per_node=hw["gpus_per_node"], tp=par["tp"], pp=par["pp"],
        dp=par["dp"], ep=par["ep"], cp=par["cp"], sp=par["sp"], zero=par["zero"], offload=par["offload"],
        recompute=par["recompute"], micro_batch=par["micro_batch"], global_batch=par["global_batch"],
        vpp=int(get("vpp", 1)), weights=ch["weights"], kv_dtype=ch.get("kv_dtype") or rec["model"]["kv_dtype"],
        engine=ch.get("engine"), framework=ch.get("framework"), seq=int(get("seq", 0)), batch=int(get("batch", 1)),
        lora_rank=int(get("lora_rank", 16)), lora_targets=get("lora_targets"),
        max_model_len=mem.get("max_model_len"), max_num_seqs=asm.get("max_num_seqs"),
        max_num_batched_tokens=asm.get("max_num_batched_tokens"),
        gpu_memory_utilization=asm.get("gpu_memory_utilization"),
        memory_visible_bytes=hw["gpu_memory_bytes_visible"], per_gpu=dict(mem["per_gpu"]),
        kv_bytes_per_sequence=mem["kv_bytes_per_sequence"], num_hidden_layers=rec["model"]["num_hidden_layers"],
        record=rec, speculative_tokens=int(get("speculative_tokens", 1)) if get("speculative") else 0,
        mem_fraction_static=get("mem_fraction_static"),
        kv_free_fraction=get("kv_cache_free_gpu_memory_fraction"))


def model_id(run: PlannedRun) -> str:
    from rigsize.launch.bundle import LaunchError

    if run.hub_id:
        return run.hub_id
    raise LaunchError(f"model '{run.model}' has no checkpoint to load (a bare size is a sizing stand-in); plan a "
                      "preset, a Hub id or a config.json, e.g. rigsize launch qwen2.5-72b ...")


def check_servable(run: PlannedRun, tool: str, version: str, kv_dtypes: dict[str, str],
                   weights: tuple[str, ...] | set[str], kv_hint: str) -> None:
    """What every serving engine's emitter checks first: an inference plan, a KV dtype the
    engine names (``kv_dtypes``: rigsize name -> the engine's) and weights it loads;
    each refusal names the nearest plan the engine can run."""
    from rigsize.launch.bundle import LaunchError

    if run.task != "inference":
        raise LaunchError(f"{tool} serves models; this is a {run.task} plan. Nearest plan {tool} can run: "
                          f"rigsize launch {run.model} --task inference --engine {tool}")
    if run.kv_dtype not in kv_dtypes:
        raise LaunchError(f"{tool} {version} has no {run.kv_dtype} KV cache (it takes "
                          f"{', '.join(kv_dtypes.values())}). Nearest plan {tool} can run: the same with {kv_hint}")
    if run.weights not in weights:
        raise LaunchError(f"{tool} {version} does not load {run.weights} weights in rigsize's list. Nearest plan "
                          f"{tool} can run: the same with --weights fp8 or awq-int4")
