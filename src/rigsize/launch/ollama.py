"""An Ollama Modelfile for a local inference plan, with ``ollama create`` / ``ollama run``.

Instructions, PARAMETER names and ``ollama create`` flags: Ollama v0.32.15's parser, api/types.go
Options/Runner and cmd/cmd.go (data/launch/ollama-0.32.15-flags.txt).  ``num_ctx`` is the context
rigsize sized, ``num_gpu`` the layers on the GPU; flash attention and the KV cache type are server
settings (OLLAMA_FLASH_ATTENTION, OLLAMA_KV_CACHE_TYPE, envconfig/config.go).
"""

from __future__ import annotations

from rigsize.launch.bundle import Launch, LaunchError, LaunchFile, command_line, known_flags
from rigsize.launch.llamacpp import CACHE_TYPE, check_flags, gguf_name, gguf_steps, local_run
from rigsize.launch.plan import PlannedRun

VERSION = "0.32.15"
FLAGS_FILE = f"ollama-{VERSION}-flags.txt"


def emit(run: PlannedRun, head_addr: str = "", node_rank: str = "") -> Launch:
    lr = local_run(run, "ollama")
    if lr.kv not in ("fp16", "q8_0", "q4_0"):
        raise LaunchError(f"Ollama's KV cache types are f16, q8_0, q4_0, not {lr.kv}. Nearest plan Ollama can run: "
                          "the same with --kv-dtype q8_0")
    steps, notes = gguf_steps(run)
    params = {"num_ctx": lr.n_ctx}
    if lr.gpu_layers is not None and lr.gpu_layers <= lr.n_layer:
        params["num_gpu"] = lr.gpu_layers
    known = known_flags(FLAGS_FILE)
    for key in params:
        if key not in known:
            raise AssertionError(f"PARAMETER {key} not in data/launch/{FLAGS_FILE}")
    lines = [f"FROM ./{gguf_name(run)}"] + [f"PARAMETER {k} {v}" for k, v in params.items()]
    name = run.model.replace("/", "-").lower()
    create = ["ollama", "create", name, "--file", "Modelfile"]
    check_flags(create[3:], FLAGS_FILE)
    env = []
    if lr.flash_attn or lr.kv in ("q8_0", "q4_0"):
        env.append("OLLAMA_FLASH_ATTENTION=1")
    if lr.kv != "fp16":
        env.append(f"OLLAMA_KV_CACHE_TYPE={CACHE_TYPE[lr.kv]}")
    serve = " ".join(env + ["ollama", "serve"])
    commands = (*steps, serve, command_line(create), command_line(["ollama", "run", name]))
    notes.append("ollama serve runs in its own terminal (or as the system service, with the same environment)")
    return Launch("ollama", VERSION, commands, files=(LaunchFile("Modelfile", "\n".join(lines) + "\n"),),
                  notes=tuple(notes), argv=(tuple(create),), setup=f"install Ollama {VERSION} (ollama.com/download)")
