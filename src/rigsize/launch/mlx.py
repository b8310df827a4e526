"""``mlx_lm.server`` (with ``mlx_lm.convert`` for a quantized format) for a local inference plan on Apple silicon.

Flags: mlx-lm v0.31.3's mlx_lm/server.py and mlx_lm/convert.py parsers (data/launch/mlx-lm-0.31.3-flags.txt).
mlx-4bit / mlx-8bit are convert's affine quantization with --q-group-size 64 and --q-bits 4 / 8.
"""

from __future__ import annotations

from rigsize.launch.bundle import Launch, LaunchError, command_line
from rigsize.launch.llamacpp import check_flags, local_run
from rigsize.launch.plan import PlannedRun, model_id

VERSION = "0.31.3"
FLAGS_FILE = f"mlx-lm-{VERSION}-flags.txt"
PORT = 8080          # mlx_lm.server's default --port
BITS = {"mlx-4bit": 4, "mlx-8bit": 8}
DTYPE = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def emit(run: PlannedRun, head_addr: str = "", node_rank: str = "") -> Launch:
    local_run(run, "mlx")
    hub = model_id(run)
    notes = []
    if run.weights in BITS:
        path = f"./{run.model.replace('/', '-')}-{run.weights}"
        convert = ["mlx_lm.convert", "--hf-path", hub, "--mlx-path", path, "-q", "--q-bits", str(BITS[run.weights]),
                   "--q-group-size", "64"]
        steps = [convert]
        model = path
    elif run.weights in DTYPE:
        steps, model = [], hub
    else:
        raise LaunchError(f"mlx-lm loads MLX formats; {run.weights} is not one. Nearest plan mlx can run: the same "
                          "with --weights mlx-4bit")
    serve = ["mlx_lm.server", "--model", model, "--port", str(PORT)]
    for argv in (*steps, serve):
        check_flags(argv[1:], FLAGS_FILE)
    notes.append("mlx-lm grows its KV cache with each request (no context is reserved): the plan's memory is "
                 "for its prompt + output tokens")
    return Launch("mlx-lm", VERSION, tuple(command_line(a) for a in (*steps, serve)), notes=tuple(notes),
                  argv=tuple(tuple(a) for a in (*steps, serve)), setup=f"pip install mlx-lm=={VERSION}")
