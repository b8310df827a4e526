"""``vllm serve`` for an inference plan, for one of the vLLM versions whose parser is pinned.

Flags: each version's own parser, pinned in data/launch/vllm-<version>-flags.txt (vllm/engine/arg_utils.py,
EngineArgs.add_cli_args, and the OpenAI server's cli_args.py, from the released wheel); the emitter writes
only flags in the chosen version's list, and a plan the version cannot express (a flag it lacks) is
refused, naming the nearest pinned version that can.  Expert parallelism is vLLM's switch, not a size:
with --enable-expert-parallel the MoE layers are split over EP = TP x DP ranks (vLLM docs, "Expert Parallel
Deployment").  Several nodes: one ``vllm serve`` per node with --nnodes / --node-rank / --master-addr
(multiprocessing backend; arg_utils.py checks that --nnodes divides DP x PP x TP); versions without
--nnodes span nodes through a Ray cluster (``_ray_line``).
"""

from __future__ import annotations

import json
import re

from rigsize.launch.architectures import check_architecture
from rigsize.launch.bundle import Launch, LaunchError, command_line, flags_of, known_flags
from rigsize.launch.plan import PlannedRun, check_servable, model_id

VERSION = "0.33.0"           # the default: the newest on PyPI when written (2026-12-01)
# every version with a pinned flag list, newest first
VERSIONS = ("0.33.0", "0.11.2", "0.10.2", "0.8.5.post1", "0.6.6.post1")
FLAGS_FILE = f"vllm-{VERSION}-flags.txt"
PORT = 8000          # vLLM's default --port (FrontendArgs.port)
RAY_PORT = 6379      # ray start --head's default --port (the GCS server; Ray CLI reference, "ray start")
# rigsize weight format -> vLLM --quantization for formats vLLM quantizes online from a bf16/fp16 checkpoint
# (QuantizationMethods in vllm/model_executor/layers/quantization/__init__.py, 0.33.0); pre-quantized
# checkpoints (gptq/awq/fp8-block/nvfp4/int8) carry quantization_config, which vLLM reads by itself.
ONLINE_QUANT = {"fp8": "fp8"}
PREQUANTIZED = ("fp8-block", "int8", "gptq-int4", "awq-int4", "nvfp4")
DTYPE = {"bf16": "bfloat16", "fp16": "float16"}
# rigsize KV format -> --kv-cache-dtype (CacheDType in vllm/config/cache.py, 0.33.0)
KV_DTYPE = {"bf16": "bfloat16", "fp16": "float16", "fp8": "fp8"}
# the 16-bit --kv-cache-dtype names each version has (CacheDType: vllm/config/cache.py in 0.33.0, 0.11.2
# ("bfloat16" only) and 0.10.2, vllm/config.py in 0.8.5.post1, the choices in arg_utils.py in 0.6.6.post1:
# "auto" and fp8 kinds only).  Without the name, "auto" (the model dtype) with --dtype of the KV dtype.
KV16 = {"0.33.0": {"bf16": "bfloat16", "fp16": "float16"}, "0.11.2": {"bf16": "bfloat16"}}
# vLLM builds no vision tower at a zero --limit-mm-per-prompt for every model only since
# SupportsMultiModal._mark_tower_model (vllm/model_executor/models/interfaces.py: in the 0.15.0 wheel, not
# in 0.14.0; before, some models' own code skipped it); rigsize sizes a text-only plan without the tower.
TOWER_SKIP_SINCE = (0, 15)
# --speculative-config's method for a checkpoint's own MTP layers: "mtp" (MTPModelTypes in
# vllm/config/speculative.py of the 0.11.2 and 0.33.0 wheels; 0.10.2 names it per model, deepseek_mtp or
# qwen3_next_mtp, and 0.8.5.post1 has neither): data/runtime.toml [vllm.speculative_mtp]
MTP_SINCE = (0, 11, 2)


def flags_file(version: str) -> str:
    return f"vllm-{version}-flags.txt"


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version))


def _nearest(version: str, can: set[str] | list[str]) -> str:
    """The pinned version that can, nearest above ``version`` (else nearest below)."""
    above = [v for v in can if _key(v) > _key(version)]
    return min(above, key=_key) if above else max(can, key=_key)


def _refuse(version: str, why: str, can: list[str], other: str = "") -> LaunchError:
    return LaunchError(f"vllm {version} {why}. Nearest version that can: --engine-version {_nearest(version, can)} "
                       f"(plan and launch with it){other}")


def _need(version: str, flag: str) -> None:
    if flag not in known_flags(flags_file(version)):
        raise _refuse(version, f"has no {flag}, which this plan needs",
                      [v for v in VERSIONS if flag in known_flags(flags_file(v))])


def _kv_args(run: PlannedRun, version: str, argv: list[str]) -> list[str]:
    """--kv-cache-dtype by the version's names; "auto" follows --dtype where the version lacks the name."""
    if run.kv_dtype == "fp8" or run.kv_dtype in KV16.get(version, {}):
        return ["--kv-cache-dtype", KV_DTYPE[run.kv_dtype]]
    wanted = DTYPE[run.kv_dtype]
    if "--dtype" in argv and argv[argv.index("--dtype") + 1] != wanted:
        raise _refuse(version, f"has no {wanted} KV cache beside {argv[argv.index('--dtype') + 1]} weights "
                      "(its --kv-cache-dtype auto is the model dtype)",
                      [v for v in VERSIONS if run.kv_dtype in KV16.get(v, {})])
    return ([] if "--dtype" in argv else ["--dtype", wanted]) + ["--kv-cache-dtype", "auto"]


def emit(run: PlannedRun, head_addr: str = "$HEAD_ADDR", node_rank: str = "$NODE_RANK",
         version: str = VERSION) -> Launch:
    check_servable(run, "vllm", version, KV_DTYPE, set(ONLINE_QUANT) | set(PREQUANTIZED) | set(DTYPE),
                   "--kv-dtype fp8")
    check_architecture(run, "vllm", version, VERSIONS, VERSION)
    known = known_flags(flags_file(version))
    argv = ["vllm", "serve", model_id(run),
            "--tensor-parallel-size", str(run.tp), "--pipeline-parallel-size", str(run.pp)]
    if run.dp > 1:
        _need(version, "--data-parallel-size")
    if "--data-parallel-size" in known:
        argv += ["--data-parallel-size", str(run.dp)]
    if run.ep > 1:
        _need(version, "--enable-expert-parallel")
        if run.ep != run.tp * run.dp:
            raise LaunchError(f"vllm sets EP = TP x DP = {run.tp * run.dp}, not ep={run.ep}. Nearest plan vllm can "
                              f"run: the same with --ep {run.tp * run.dp}")
        argv.append("--enable-expert-parallel")
    if run.weights in DTYPE:
        argv += ["--dtype", DTYPE[run.weights]]
    if run.weights in ONLINE_QUANT:
        argv += ["--quantization", ONLINE_QUANT[run.weights]]
    argv += _kv_args(run, version, argv)
    for flag, value in (("--max-model-len", run.max_model_len), ("--max-num-seqs", run.max_num_seqs),
                        ("--max-num-batched-tokens", run.max_num_batched_tokens),
                        ("--gpu-memory-utilization", run.gpu_memory_utilization)):
        if value is not None:
            argv += [flag, str(value)]
    if run.record.get("inputs", {}).get("images_per_request") == 0 and run.record["model"].get("params_vision"):
        # the text-only deployment the memory was sized for: vLLM then builds no vision tower
        if _key(version)[:2] < TOWER_SKIP_SINCE:
            raise _refuse(version, "may build the vision tower at --limit-mm-per-prompt 0 (the general skip is "
                          "from 0.15.0), and this plan was sized without it",
                          [v for v in VERSIONS if _key(v)[:2] >= TOWER_SKIP_SINCE],
                          "; or plan with --images-per-request 1")
        argv += ["--limit-mm-per-prompt", '{"image": 0, "video": 0}']
    if run.speculative_tokens:
        _need(version, "--speculative-config")
        if _key(version) < MTP_SINCE:
            raise _refuse(version, "has no 'mtp' speculative method, which this plan's --speculative mtp needs",
                          [v for v in VERSIONS if _key(v) >= MTP_SINCE])
        # the draft is the target checkpoint's own MTP layers: no "model" (SpeculativeConfig.__post_init__)
        config = {"method": "mtp", "num_speculative_tokens": run.speculative_tokens}
        argv += ["--speculative-config", json.dumps(config)]
    argv += ["--port", str(PORT)]
    notes = []
    if run.weights in PREQUANTIZED:
        notes.append(f"serve a {run.weights} checkpoint of {run.model}: vLLM reads its quantization_config")
    argvs = [argv]
    commands = None
    if run.nodes > 1 and "--nnodes" in known:
        multi = argv + ["--nnodes", str(run.nodes), "--node-rank", node_rank, "--master-addr", head_addr]
        argvs = [multi]
        notes.append(f"run the same command on each of the {run.nodes} nodes, node rank 0 first "
                     "(HEAD_ADDR = node 0's address)")
    elif run.nodes > 1:
        commands = (_ray_line(run, version, argv, head_addr, node_rank),)
        notes.append(f"run the same command on each of the {run.nodes} nodes (HEAD_ADDR = node 0's address): node 0 "
                     f"starts the Ray head and vllm serve, which waits for all {run.gpus} GPUs to join")
    unknown = [f for a in argvs for f in flags_of(a) if f not in known]
    if unknown:
        raise AssertionError(f"{unknown} not in data/launch/{flags_file(version)}")
    return Launch("vllm", version, commands or tuple(command_line(a) for a in argvs), notes=tuple(notes),
                  argv=tuple(tuple(a) for a in argvs), setup=f"pip install vllm=={version}")


def _ray_line(run: PlannedRun, version: str, argv: list[str], head_addr: str, node_rank: str) -> str:
    """One shell line for every node of a version without --nnodes: node 0 starts a Ray head and ``vllm serve
    --distributed-executor-backend ray`` (the Ray multi-node deployment of vLLM's docs, "Distributed inference
    and serving"), the others join it.  vLLM waits for the placement group of all TP x PP GPUs
    (vllm/executor/ray_utils.py _wait_until_pg_ready, PG_WAIT_TIMEOUT = 1800 s in 0.6.6.post1, 0.8.5 and 0.10.2;
    a short cluster only warns), and ray itself is a dependency of these wheels (Requires-Dist ray in their
    METADATA).  One replica only: data-parallel ranks across nodes need --nnodes."""
    if run.dp > 1:
        raise _refuse(version, f"has no --nnodes, and its Ray cluster serves one replica, not dp={run.dp} over "
                      "nodes", [v for v in VERSIONS if "--nnodes" in known_flags(flags_file(v))],
                      "; or plan with --dp 1")
    argv.extend(["--distributed-executor-backend", "ray"])
    return (f'if [ "{node_rank}" = 0 ]; then ray start --head --port={RAY_PORT} && {command_line(argv)}; '
            f"else ray start --address={head_addr}:{RAY_PORT} --block; fi")
