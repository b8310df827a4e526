"""Whether a pinned engine version knows the planned model's architecture.

vLLM and SGLang pick the model class by the config's ``architectures`` (the first one their registry has;
none: "Model architectures [...] are not supported" at start-up), so an older ``--engine-version`` may lack a
newer model.  The names each pinned version knows are pinned in data/launch/<engine>-<version>-architectures.txt,
read from the released wheel's registry (tools/extract_architectures.py: vLLM's ``_VLLM_MODELS`` keys,
SGLang's ``EntryClass`` names).  Both can also fall back to a Transformers backend for a model outside the
registry (vLLM from 0.8, SGLang's TransformersForCausalLM); that path is not counted, as rigsize sizes the
engine's own implementation.  The architectures are the plan's (``model.architectures``, every source,
Hub ids included); for a plan saved before that field, the preset's config (data/models/), or the
config.json a config or folder plan names where it is still there.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from rigsize.launch.bundle import LaunchError, known_flags
from rigsize.launch.plan import PlannedRun


def architectures_file(tool: str, version: str) -> str:
    return f"{tool}-{version}-architectures.txt"


@cache
def known_architectures(tool: str, version: str) -> frozenset[str]:
    return known_flags(architectures_file(tool, version))


def model_architectures(run: PlannedRun) -> tuple[str, ...]:
    """The config's ``architectures`` (empty where the plan does not say and no config is at hand)."""
    model = run.record.get("model", {})
    listed = [a for a in model.get("architectures") or () if isinstance(a, str)]
    if listed:                  # the plan's own (model.architectures, any source, Hub ids included)
        return tuple(listed)
    config = None
    if model.get("source") == "preset":
        from rigsize.model.inputs import preset_config, presets

        if model.get("name") in presets():
            config = preset_config(model["name"])
    elif model.get("source") in ("config", "folder") and model.get("origin"):
        path = Path(model["origin"])
        path = path / "config.json" if model["source"] == "folder" else path
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError):
            config = None
    archs = (config or {}).get("architectures") or ()
    return tuple(a for a in archs if isinstance(a, str))


def check_architecture(run: PlannedRun, tool: str, version: str, versions: tuple[str, ...], default: str) -> None:
    """Refuse a version none of whose registry entries is the model's architecture, naming the oldest
    pinned version that has one (``versions``: newest first)."""
    archs = model_architectures(run)
    if not archs or any(a in known_architectures(tool, version) for a in archs):
        return
    having = [v for v in versions if any(a in known_architectures(tool, v) for a in archs)]
    if not having:
        raise LaunchError(f"{tool} {version} has no {archs[0]} ({run.model}'s architecture) in its model registry, "
                          f"nor has any pinned {tool} version ({', '.join(versions)}; the default is {default})")
    raise LaunchError(f"{tool} {version} has no {archs[0]} ({run.model}'s architecture) in its model registry. "
                      f"Oldest pinned version that has it: --engine-version {having[-1]} (the default is {default})")
