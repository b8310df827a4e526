"""The process launcher of a training command (``--launcher torchrun|accelerate|deepspeed|srun``): the words
that start one process per GPU on every node, each with its own rendezvous flags.

- torchrun (torch 2.13.0, torchrun-2.13.0-flags.txt): ``--nproc-per-node G --nnodes N --node-rank R
  --master-addr H --master-port P`` (static rendezvous), then ``-m MODULE`` or a script.
- accelerate (1.15.0, accelerate-1.15.0-launch-flags.txt): ``--num_processes`` (all GPUs) and, across nodes,
  ``--num_machines --machine_rank --main_process_ip --main_process_port``; ``trl sft`` is ``accelerate launch``
  of trl/scripts/sft.py and takes the same flags (trl/cli/accelerate_launcher.py, 1.16.0).
- deepspeed (0.19.8, deepspeed-0.19.8-launcher-flags.txt): ``--num_gpus G`` on one node.  Across nodes the
  runner needs a hostfile naming every node (fetch_hostfile; without one it falls back to the local GPUs and
  refuses --num_nodes > 1); with ``--no_ssh`` it runs once per node as ``--node_rank R --master_addr H``,
  the host names being only keys of the world info (deepspeed/launcher/launch.py: node_list[node_rank]).
  The runner passes ``--local_rank=N`` to the script (launch.py), which TRL's parser takes.
- srun (Slurm, slurm-sbatch-flags.txt from srun(1)): one task per GPU (``--ntasks-per-node G``), each task
  setting what torch.distributed's env:// initialisation reads (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT;
  torch.distributed docs, "Environment variable initialization") and LOCAL_RANK, which transformers' and
  Accelerate's device selection read, from SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID (srun(1), OUTPUT
  ENVIRONMENT VARIABLES).  Only under Slurm: ``--target slurm``.
"""

from __future__ import annotations

from rigsize.launch.bundle import LaunchError, LaunchFile, command_line
from rigsize.launch.plan import PlannedRun

LAUNCHERS = ("torchrun", "accelerate", "deepspeed", "srun")
FLAGS_FILES = {"torchrun": "torchrun-2.13.0-flags.txt", "accelerate": "accelerate-1.15.0-launch-flags.txt",
               "deepspeed": "deepspeed-0.19.8-launcher-flags.txt", "srun": "slurm-sbatch-flags.txt"}
PORT = 29500            # torchrun's --master-port, accelerate's --main_process_port, DeepSpeed's default
HOSTFILE = "hostfile"
SRUN_ENV = ("RANK=$SLURM_PROCID", "LOCAL_RANK=$SLURM_LOCALID", "WORLD_SIZE=$SLURM_NTASKS", "MASTER_ADDR=$HEAD_ADDR",
            f"MASTER_PORT={PORT}")


def choose(run: PlannedRun, tool: str, allowed: tuple[str, ...], asked: str | None, target: str) -> str:
    """The launcher to write: ``asked`` if ``tool`` runs under it (the first of ``allowed`` is its default)."""
    if asked is None:
        return allowed[0]
    if asked not in LAUNCHERS:
        raise LaunchError(f"--launcher {asked}: one of {', '.join(LAUNCHERS)}")
    if asked not in allowed:
        raise LaunchError(f"{tool} does not run under {asked} in rigsize's launches (it runs under "
                          f"{' or '.join(allowed)}). Nearest: the same with --launcher {allowed[0]}")
    if asked == "srun" and target != "slurm":
        raise LaunchError(f"srun starts processes inside a Slurm allocation; this launch targets {target}. "
                          f"Nearest: the same with --target slurm, or --launcher {allowed[0]}")
    return asked


def torchrun(run: PlannedRun, head_addr: str, node_rank: str) -> list[str]:
    return ["torchrun", "--nproc-per-node", str(run.gpus_per_node), "--nnodes", str(run.nodes),
            "--node-rank", node_rank if run.nodes > 1 else "0", "--master-addr",
            head_addr if run.nodes > 1 else "localhost", "--master-port", str(PORT)]


def accelerate_flags(run: PlannedRun, head_addr: str, node_rank: str) -> list[str]:
    """``accelerate launch``'s process flags (also what ``trl sft`` passes on)."""
    out = ["--num_processes", str(run.gpus)] if run.gpus > 1 else []
    if run.nodes > 1:
        out += ["--num_machines", str(run.nodes), "--machine_rank", node_rank, "--main_process_ip", head_addr,
                "--main_process_port", str(PORT)]
    return out


def deepspeed(run: PlannedRun, head_addr: str, node_rank: str) -> list[str]:
    out = ["deepspeed", "--num_gpus", str(run.gpus_per_node)]
    if run.nodes > 1:
        out += ["--num_nodes", str(run.nodes), "--hostfile", HOSTFILE, "--no_ssh", "--node_rank", node_rank,
                "--master_addr", head_addr, "--master_port", str(PORT)]
    return out


def hostfile(run: PlannedRun) -> tuple[LaunchFile, ...]:
    """The DeepSpeed hostfile of a multi-node run: ``node-i slots=G`` per node (names are keys under --no_ssh)."""
    if run.nodes == 1:
        return ()
    lines = ["# DeepSpeed hostfile (MPI style): with --no_ssh the names only count the nodes and their GPUs"]
    return (LaunchFile(HOSTFILE, "\n".join(lines + [f"node-{i} slots={run.gpus_per_node}"
                                                    for i in range(run.nodes)]) + "\n"),)


def srun(run: PlannedRun) -> list[str]:
    return ["srun", f"--nodes={run.nodes}", f"--ntasks-per-node={run.gpus_per_node}"]


def program_argv(launcher: str, run: PlannedRun, head_addr: str, node_rank: str, module: str = "",
                 script: str = "") -> tuple[list[str], int]:
    """The launcher's words, then ``python -m MODULE`` (or ``python SCRIPT``) as that launcher spells it (the
    program's arguments follow), and how many leading words are the launcher's (checked against its own list)."""
    if launcher == "srun":
        return srun(run) + ["python", *(["-m", module] if module else [script])], len(srun(run))
    if launcher == "torchrun":
        head = torchrun(run, head_addr, node_rank) + (["-m"] if module else [])
    elif launcher == "deepspeed":
        head = deepspeed(run, head_addr, node_rank) + (["--module"] if module else [])
    else:
        head = ["accelerate", "launch", *accelerate_flags(run, head_addr, node_rank)] + (["--module"] if module else [])
    return head + [module or script], len(head)


def line(launcher: str, argv: list[str], launcher_words: int) -> str:
    """The shell line of ``argv``; under srun each task runs the program in ``bash -c`` with its rank variables
    (single quotes: SLURM_PROCID expands in each task, not in the batch script)."""
    if launcher != "srun":
        return command_line(argv)
    inner = " ".join([*SRUN_ENV, command_line(argv[launcher_words:])]).replace("'", "'\"'\"'")
    return command_line(argv[:launcher_words]) + f" bash -c '{inner}'"
