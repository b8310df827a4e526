"""An ``sbatch`` script around an engine's launch: one task per node (``srun``), each running the engine
command with its node rank (SLURM_NODEID) and the head node's address (the first host of the job).

Options: data/launch/slurm-sbatch-flags.txt (sbatch(1), srun(1)).
"""

from __future__ import annotations

from rigsize.launch.bundle import Launch
from rigsize.launch.plan import PlannedRun

FLAGS_FILE = "slurm-sbatch-flags.txt"
NODE_RANK, HEAD_ADDR = "$SLURM_NODEID", "$HEAD_ADDR"


def sbatch_script(run: PlannedRun, engine: Launch, name: str) -> str:
    """Under ``--launcher srun`` the engine's command is itself the srun line, one task per GPU."""
    tasks = run.gpus_per_node if engine.launcher == "srun" else 1
    lines = ["#!/bin/bash",
             f"# rigsize launch: {run.model} on {run.gpus} x {run.gpu}, {engine.tool} {engine.version}",
             f"#SBATCH --job-name={name}", f"#SBATCH --nodes={run.nodes}", f"#SBATCH --ntasks-per-node={tasks}",
             f"#SBATCH --gpus-per-node={run.gpus_per_node}", "#SBATCH --output=%x-%j.out", "set -euo pipefail",
             f"# setup, once: {engine.setup}",
             'export HEAD_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)']
    for cmd in engine.commands:    # single quotes: SLURM_NODEID expands on each node, not here
        if engine.launcher == "srun":
            lines.append(cmd)
            continue
        quoted = cmd.replace("'", "'\"'\"'")
        lines.append(f"srun --nodes={run.nodes} --ntasks-per-node=1 bash -c '{quoted}'")
    return "\n".join(lines) + "\n"
