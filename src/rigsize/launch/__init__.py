"""Launch configurations: a plan turned into the commands and files of the engine and platform that run it.

One emitter per engine or framework (vllm, sglang, trtllm, llama.cpp/ollama/mlx; trl with PEFT and DeepSpeed's
ds_config, fsdp, megatron, torchtitan, llamafactory, torchtune) and per platform (skypilot, slurm, k8s; local =
the bare commands), each pinned to the version whose flags it was checked against (``VERSION`` in each module;
the flag lists in data/launch/).  A training emitter names the process launchers it runs under (``LAUNCHERS``,
its default first; launchers.py writes torchrun, accelerate, deepspeed and srun).  The input is a
recommendation of ``rigsize plan --json``; every value written is the plan's own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import partial
from types import SimpleNamespace
from typing import Any

from rigsize.launch import (
    fsdp,
    k8s,
    launchers,
    llamacpp,
    llamafactory,
    megatron,
    mlx,
    ollama,
    sglang,
    skypilot,
    slurm,
    torchtitan,
    torchtune,
    trl,
    trtllm,
    versions,
    vllm,
)
from rigsize.launch.bundle import Launch, LaunchError, LaunchFile
from rigsize.launch.plan import PlannedRun, planned_run, read_plan_file, select

ENGINES = {"vllm": vllm, "sglang": sglang, "trtllm": trtllm, "llamacpp": llamacpp, "ollama": ollama, "mlx": mlx}
FRAMEWORKS = {"megatron": megatron, "deepspeed": trl, "hf": trl, "trl": trl, "llamafactory": llamafactory,
              "torchtitan": torchtitan, "fsdp": fsdp, "torchtune": torchtune}
TARGETS = ("local", "skypilot", "slurm", "k8s")
VERSIONS = {"vllm": vllm.VERSION, "sglang": sglang.VERSION, "trl": trl.VERSION, "megatron": megatron.VERSION,
            "deepspeed": trl.deepspeed.VERSION, "skypilot": skypilot.VERSION, "llamacpp": llamacpp.VERSION,
            "ollama": ollama.VERSION, "mlx": mlx.VERSION, "trtllm": trtllm.VERSION, "k8s": k8s.VERSION,
            "llamafactory": llamafactory.VERSION, "torchtitan": torchtitan.VERSION, "fsdp": fsdp.VERSION,
            "torchtune": torchtune.VERSION}

__all__ = ["Bundle", "Launch", "LaunchError", "LaunchFile", "PlannedRun", "launch", "planned_run", "read_plan_file",
           "select", "ENGINES", "FRAMEWORKS", "TARGETS", "VERSIONS"]


@dataclass(frozen=True)
class Bundle:
    """What ``rigsize launch`` prints and writes: the engine's launch, wrapped for the target."""

    target: str
    launch: Launch
    files: tuple[LaunchFile, ...]      # everything to write into --out-dir, rigsize-plan.json included
    commands: tuple[str, ...]          # what to type (the platform's submit line, or the engine commands)
    version_from: str = "default"      # "default" | "--engine-version" | "plan" (versions.py)
    gpus: int = 0                      # the hardware the launch was sized for
    gpu: str = ""


def _emitter(run: PlannedRun, engine: str | None, framework: str | None) -> Any:
    if run.task == "inference":
        name = engine or run.engine or "vllm"
        if name not in ENGINES:
            raise LaunchError(f"no launch emitter for engine {name} yet ({', '.join(ENGINES)}). Nearest: rigsize "
                              f"launch {run.model} --task inference --engine vllm")
        if run.engine and name != run.engine:
            raise LaunchError(f"this plan was sized for {run.engine}, not {name} (memory budgets and speed differ). "
                              f"Nearest plan {name} can run: rigsize launch {run.model} --task inference --engine {name}")
        return ENGINES[name]
    if engine:
        raise LaunchError(f"--engine is for inference; this is a {run.task} plan. Nearest: rigsize launch {run.model} "
                          f"--task {run.task} --framework {run.framework or 'deepspeed'}")
    name = framework or run.framework or ""
    if run.framework and name != run.framework:
        raise LaunchError(f"this plan was sized for {run.framework}, not {name}. Nearest plan {name} can run: "
                          f"rigsize launch {run.model} --task {run.task} --framework {name}")
    if name not in FRAMEWORKS:
        raise LaunchError(f"no launch emitter for framework {name or 'default'} yet ({', '.join(FRAMEWORKS)}). "
                          f"Nearest: rigsize launch {run.model} --task {run.task} --framework "
                          f"{'megatron' if run.task == 'pretrain' else 'deepspeed'}")
    return FRAMEWORKS[name]


def _check_whole_nodes(run: PlannedRun) -> None:
    """Every launcher, scheduler and cluster manager rigsize writes for starts the same number of GPUs on
    each node (torchrun --nproc-per-node, tune run, the deepspeed hostfile's slots, srun --ntasks-per-node,
    sbatch --gpus-per-node, SkyPilot's NAME:COUNT per node, a JobSet's or LeaderWorkerSet's per-pod GPUs):
    a plan whose GPUs do not fill its nodes evenly would start more processes than were sized."""
    if run.nodes > 1 and run.gpus != run.nodes * run.gpus_per_node:
        low, high = run.gpus // run.gpus_per_node * run.gpus_per_node, run.nodes * run.gpus_per_node
        raise LaunchError(f"the plan's {run.gpus} GPUs do not fill its {run.nodes} nodes of {run.gpus_per_node}; "
                          f"launchers start the same GPUs on every node. Nearest plan it can run: the same on "
                          f"--gpus {low} or --gpus {high}")


def _with_launcher(run: PlannedRun, module: Any, launcher: str | None, target: str) -> Any:
    """The emitter with its launcher bound (training; ``LAUNCHERS`` in each module, its default first)."""
    allowed = getattr(module, "LAUNCHERS", ())
    if not allowed:
        if launcher:
            raise LaunchError(f"--launcher is for training commands; {run.task} plans are served by their engine. "
                              f"Nearest: rigsize launch {run.model} --task {run.task} without --launcher")
        return module
    chosen = launchers.choose(run, run.framework or "", allowed, launcher, target)
    return SimpleNamespace(emit=partial(module.emit, launcher=chosen), VERSION=module.VERSION)


def launch(rec: dict[str, Any], engine: str | None = None, framework: str | None = None, target: str = "local",
           source: dict[str, Any] | None = None, launcher: str | None = None,
           engine_version: str | None = None) -> Bundle:
    """The launch of one recommendation (``select(plan, rank, scenario)``) on ``target``.  ``source`` is
    recorded in rigsize-plan.json (where the plan came from: a file, or the plan options); ``launcher``
    (torchrun, accelerate, deepspeed, srun) starts a training command, default the framework's own;
    ``engine_version`` picks one of the engine's pinned versions (versions.py; default the plan's or the newest)."""
    if target not in TARGETS:
        raise LaunchError(f"--target {target}: one of {', '.join(TARGETS)}")
    run = planned_run(rec)
    _check_whole_nodes(run)
    base = _emitter(run, engine, framework)
    tool = next(k for k, m in (*ENGINES.items(), *FRAMEWORKS.items()) if m is base)
    chosen = versions.choose(run, tool, base, engine_version)
    module = _with_launcher(run, versions.bind(base, chosen), launcher, target)
    name = f"rigsize-{run.task}-{run.model.replace('/', '-').replace('.', '-')}".lower()[:60]
    if target == "skypilot":
        out = module.emit(run, head_addr=skypilot.HEAD_ADDR, node_rank=skypilot.NODE_RANK)
        wrapper = LaunchFile("task.yaml", skypilot.task_yaml(run, out, name))
        files, commands = (*out.files, wrapper), ("sky launch -c " + name + " task.yaml",)
    elif target == "slurm":
        out = module.emit(run, head_addr=slurm.HEAD_ADDR, node_rank=slurm.NODE_RANK)
        wrapper = LaunchFile("job.sbatch", slurm.sbatch_script(run, out, name), True)
        files, commands = (*out.files, wrapper), ("sbatch job.sbatch",)
    elif target == "k8s":
        out, wrapper = k8s.wrap(run, module, name)
        files, commands = (*out.files, wrapper), ("kubectl apply -f k8s.yaml",)
    else:
        out = module.emit(run)
        files, commands = out.files, out.commands
    said = versions.note(tool, base, chosen)
    out = replace(out, notes=(*out.notes, said)) if said else out
    record = {"schema_version": 1, "tool": out.tool, "version": out.version, "version_from": chosen.source,
              "target": target,
              **({"launcher": out.launcher} if out.launcher else {}),
              "skypilot_version": skypilot.VERSION if target == "skypilot" else None,
              "k8s_versions": k8s.VERSION if target == "k8s" else None,
              "source": source or {}, "commands": list(out.commands), "notes": list(out.notes),
              "recommendation": rec}
    plan_file = LaunchFile("rigsize-plan.json", json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return Bundle(target, replace(out), (*files, plan_file), commands, chosen.source, run.gpus, run.gpu)
