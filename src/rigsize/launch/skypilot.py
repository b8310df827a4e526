"""A SkyPilot task YAML around an engine's launch: ``resources.accelerators: NAME:COUNT`` with the GPU
catalog's ``skypilot_name`` and the plan's GPUs per node, ``num_nodes``, setup and run.

Keys: SkyPilot 0.14.1's task schema (sky.utils.schemas.get_task_schema), vendored in
data/launch/skypilot-0.14.1-task.schema.json; tests validate every task against it.  Each node's rank and
the head's address come from SkyPilot's SKYPILOT_NODE_RANK and SKYPILOT_NODE_IPS (first line = head).
"""

from __future__ import annotations

import json

from rigsize.launch.bundle import Launch, LaunchError
from rigsize.launch.plan import PlannedRun

VERSION = "0.14.1"
SCHEMA_FILE = f"skypilot-{VERSION}-task.schema.json"
NODE_RANK, HEAD_ADDR = "$SKYPILOT_NODE_RANK", "$HEAD_ADDR"
HEAD_LINE = 'HEAD_ADDR=$(echo "$SKYPILOT_NODE_IPS" | head -n1)'


def accelerator(run: PlannedRun) -> str:
    from rigsize.hardware.gpus import resolve_gpu

    name = resolve_gpu(run.gpu).skypilot_name
    if not name:
        raise LaunchError(f"{run.gpu} has no SkyPilot accelerator name in the GPU catalog (skypilot_name). Nearest "
                          "plan SkyPilot can run: the same on --gpu H100-SXM-80GB or another GPU 'rigsize gpus' lists "
                          "with one, or --target slurm")
    return f"{name}:{run.gpus_per_node}"


def _block(text: str, indent: str = "  ") -> str:
    return "|\n" + "".join(indent + line + "\n" for line in text.splitlines())


def task_yaml(run: PlannedRun, engine: Launch, name: str) -> str:
    """The YAML text (written by hand: a fixed shape, no YAML library needed at run time)."""
    files = "".join(f"  cat > {f.name} <<'RIGSIZE_EOF'\n" + "".join(f"  {x}\n" for x in f.text.splitlines())
                    + "  RIGSIZE_EOF\n" for f in engine.files if not f.executable)   # scripts repeat the run command
    run_lines = ([HEAD_LINE] if run.nodes > 1 else []) + list(engine.commands)
    out = [f"# rigsize launch: {run.model} on {run.gpus} x {run.gpu}, {engine.tool} {engine.version}; "
           f"SkyPilot {VERSION} task (sky launch this.yaml)",
           f"name: {name}", "resources:", f"  accelerators: {json.dumps(accelerator(run))}"]
    if run.task == "inference":
        port = {"vllm": 8000, "sglang": 30000}.get(engine.tool)
        if port:
            out.append(f"  ports: {port}")
    out.append(f"num_nodes: {run.nodes}")
    out.append("setup: " + _block(engine.setup).rstrip("\n"))
    out.append("run: " + _block("\n".join(run_lines)).rstrip("\n"))
    text = "\n".join(out) + "\n"
    if files:
        text = text.replace("run: |\n", "run: |\n" + files, 1)
    return text
