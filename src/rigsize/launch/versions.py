"""Which engine version a launch targets (``--engine-version``), and that it is the version the plan sized.

Each inference emitter pins the versions whose parser it was checked against: ``VERSIONS`` (newest first)
where several are pinned, else its one ``VERSION``; the default is ``VERSION``, the newest on PyPI when
the emitter was written.  The version comes from ``--engine-version``, else from the plan (a plan made with
``--engine-version`` records it in ``inputs``: its memory was sized by that version's rules,
memory/runtime.py), else the default.  vLLM's and SGLang's memory budgets depend on their version, so a
launch of another version than the one sized (or, for a plan sized by the newest rules, of a version whose
rules differ) is refused; TensorRT-LLM is sized by vLLM's newest rules whatever its version, so its version
picks the flags only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from types import SimpleNamespace
from typing import Any

from rigsize.launch.bundle import LaunchError
from rigsize.launch.plan import PlannedRun

# engines whose plan memory does not depend on their version (memory/runtime.py _check_engine_options)
SIZED_WITHOUT_VERSION = ("trtllm",)


@dataclass(frozen=True)
class Chosen:
    version: str
    source: str          # "default" | "--engine-version" | "plan" (the version the plan was sized for)


def pinned(module: Any) -> tuple[str, ...]:
    return tuple(getattr(module, "VERSIONS", (module.VERSION,)))


def plan_options(options: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """(the options to plan with, the asked engine version): for an engine sized without its version
    (TensorRT-LLM) the version is the launch's alone and does not reach the planner."""
    asked = options.get("engine_version")
    if options.get("engine") in SIZED_WITHOUT_VERSION:
        options = {k: v for k, v in options.items() if k != "engine_version"}
    return options, asked


def _normal(text: str | None) -> str | None:
    if text is None or text.strip().lower() in ("", "latest"):
        return None
    return text.strip().removeprefix("v")


def choose(run: PlannedRun, tool: str, module: Any, asked: str | None) -> Chosen:
    """The version to write for, checked against what is pinned and what the plan was sized for."""
    asked = _normal(asked)
    if run.task != "inference":
        if asked:
            raise LaunchError(f"--engine-version picks an inference engine's version; {run.task} launches write "
                              f"{tool} {module.VERSION}")
        return Chosen(module.VERSION, "default")
    # the version the memory was sized by (a vLLM version when the plan's engine is sized by vLLM's rules)
    sized = None if tool in SIZED_WITHOUT_VERSION else _normal(run.record.get("inputs", {}).get("engine_version"))
    if asked and sized and asked != sized:
        raise LaunchError(f"this plan was sized for {tool} {sized}, not {asked} (its memory budget depends on the "
                          f"version). Nearest plan {tool} {asked} can run: rigsize launch {run.model} --task inference "
                          f"--engine {tool} --engine-version {asked}")
    chosen = Chosen(asked, "--engine-version") if asked else Chosen(sized, "plan") if sized else \
        Chosen(module.VERSION, "default")
    if chosen.version not in pinned(module):
        raise LaunchError(f"{tool} {chosen.version} has no pinned flag list; rigsize launch writes {tool} "
                          f"{', '.join(pinned(module))} (--engine-version)")
    if tool in ("vllm", "sglang") and not sized and chosen.version != module.VERSION:
        from rigsize.memory.runtime import sglang_era, vllm_era

        era = vllm_era if tool == "vllm" else sglang_era
        newest = era(None)
        if era(chosen.version)[0] != newest[0]:
            raise LaunchError(f"this plan was sized by {tool} >= {newest[1]['since']}'s memory rules, not "
                              f"{chosen.version}'s. Nearest plan {tool} {chosen.version} can run: rigsize launch "
                              f"{run.model} --task inference --engine {tool} --engine-version {chosen.version}")
    return chosen


def bind(module: Any, chosen: Chosen) -> Any:
    """The emitter with its version bound (modules that pin several); others as they are."""
    if len(pinned(module)) < 2:
        return module
    return SimpleNamespace(emit=partial(module.emit, version=chosen.version), VERSION=chosen.version,
                           **{k: getattr(module, k) for k in ("LAUNCHERS",) if hasattr(module, k)})


def note(tool: str, module: Any, chosen: Chosen) -> str | None:
    """The line that says a launch targets another version than the default (None for the default)."""
    if chosen.version == module.VERSION:
        return None
    how = "--engine-version" if chosen.source == "--engine-version" else "the version the plan was sized for"
    return f"written for {tool} {chosen.version} ({how}; the default is {module.VERSION})"
