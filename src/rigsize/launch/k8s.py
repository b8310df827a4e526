"""Kubernetes manifests around an engine's launch: inference as a LeaderWorkerSet running vLLM or SGLang,
training as a JobSet running the framework's command, one pod per node.

Kinds: LeaderWorkerSet ``leaderworkerset.x-k8s.io/v1`` (kubernetes-sigs/lws v0.10.0) and JobSet
``jobset.x-k8s.io/v1alpha2`` (kubernetes-sigs/jobset v0.12.0, the base of Kubeflow Trainer v2); their CRDs'
openAPIV3Schema are vendored in data/launch/ (tools/extract_crd_schemas.py) and tests validate every
manifest against them.

- Inference: vLLM's documented LWS pattern with its multiprocessing backend (docs.vllm.ai, deployment/
  frameworks/lws): every pod of a group runs the same ``vllm serve ... --nnodes N --node-rank
  $LWS_WORKER_INDEX --master-addr $LWS_LEADER_ADDRESS``, the variables LWS sets in each container
  (api/leaderworkerset/v1/leaderworkerset_types.go); SGLang the same with --dist-init-addr.  A plan whose data-parallel ranks are whole groups of
  nodes and have no expert parallelism between them runs as LWS replicas (one engine instance per replica,
  data-parallel size 1) behind one Service; otherwise one group holds the planned command as it is.
- Training: one replicated job of ``nodes`` pods (an Indexed Job, parallelism = completions = nodes); the node
  rank is the pod's JOB_COMPLETION_INDEX and the head is pod 0, whose DNS name JobSet gives as
  ``<jobset>-<replicatedJob>-<jobIndex>-<podIndex>.<subdomain>``, subdomain = the JobSet's name
  (pkg/controllers/jobset_controller.go, v0.12.0).
- Every pod asks for ``nvidia.com/gpu`` = the plan's GPUs per node and mounts a memory-backed emptyDir on
  /dev/shm (NCCL and PyTorch's data loaders use shared memory; a container's default is 64 MiB).  A plan
  that spans nodes gets NCCL's socket interface (eth0, the pod network) and IPC_LOCK (RDMA verbs pin memory);
  the RDMA device resource and secondary network are the cluster's own, named in the notes.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from rigsize.launch.bundle import Launch, LaunchError, LaunchFile
from rigsize.launch.plan import PlannedRun

LWS_VERSION, JOBSET_VERSION = "v0.10.0", "v0.12.0"
LWS_API, JOBSET_API = "leaderworkerset.x-k8s.io/v1", "jobset.x-k8s.io/v1alpha2"
LWS_SCHEMA_FILE = f"lws-{LWS_VERSION}-crd.schema.json"
JOBSET_SCHEMA_FILE = f"jobset-{JOBSET_VERSION}-crd.schema.json"
VERSION = f"lws {LWS_VERSION}, jobset {JOBSET_VERSION}"
# vLLM publishes vllm/vllm-openai:v<version> per release (docs.vllm.ai, "Using Docker"), SGLang
# lmsysorg/sglang:v<version> (the tag deployments cite, e.g. v0.5.12, v0.5.15); training pods start from
# NVIDIA's PyTorch container (CUDA, nvcc, git; Megatron-LM's README recommends it) and run the setup line.
SERVE_IMAGES = {"vllm": "vllm/vllm-openai:v{version}", "sglang": "lmsysorg/sglang:v{version}"}
TRAIN_IMAGE = "nvcr.io/nvidia/pytorch:25.01-py3"
LWS_RANK, LWS_HEAD = "$LWS_WORKER_INDEX", "$LWS_LEADER_ADDRESS"
JOB_RANK, JOB_HEAD = "$JOB_COMPLETION_INDEX", "$HEAD_ADDR"
REPLICATED_JOB = "node"
CONFIG_DIR = "/etc/rigsize"
SERVE_PORTS = {"vllm": 8000, "sglang": 30000}      # each engine's default --port


def k8s_name(name: str) -> str:
    """A DNS-1123 label short enough that ``<name>-node-0-0`` stays within 63 characters."""
    out = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:40].strip("-")
    return out or "rigsize"


def addresses(run: PlannedRun) -> tuple[str, str]:
    """(head address, node rank) as the engine command should read them on this target."""
    return (LWS_HEAD, LWS_RANK) if run.task == "inference" else (JOB_HEAD, JOB_RANK)


def serving_run(run: PlannedRun) -> tuple[PlannedRun, int]:
    """The run one LWS group serves and the number of replicas: data-parallel ranks become replicas when
    each holds whole nodes and no expert parallelism spans them (each replica is then a whole server)."""
    if run.dp > 1 and run.ep == 1 and run.nodes % run.dp == 0 and \
            (run.nodes // run.dp) * run.gpus_per_node == run.tp * run.pp:
        nodes = run.nodes // run.dp
        return replace(run, dp=1, nodes=nodes, gpus=run.tp * run.pp), run.dp
    return run, 1


def user_variables(engine: Launch) -> list[str]:
    """The ``$VARS`` the engine's commands leave to the user (DATASET, DATA_ARGS): declared empty in the pods."""
    given = {LWS_RANK, LWS_HEAD, JOB_RANK, JOB_HEAD}
    words = {w.strip('"') for c in engine.commands for w in c.split() if w.startswith("$")}
    return sorted(w[1:] for w in words - given if re.fullmatch(r"\$[A-Z_][A-Z0-9_]*", w))


def _env(run: PlannedRun, extra: dict[str, str]) -> list[dict[str, Any]]:
    env = [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token",
                                                               "optional": True}}}]
    env += [{"name": k, "value": v} for k, v in extra.items()]
    if run.nodes > 1:      # NCCL's bootstrap interface (NCCL env docs: NCCL_SOCKET_IFNAME); INFO prints the transport
        env += [{"name": "NCCL_SOCKET_IFNAME", "value": "eth0"}, {"name": "NCCL_DEBUG", "value": "INFO"}]
    return env


def _pod(run: PlannedRun, script: str, image: str, env: dict[str, str], files: bool, name: str,
         port: int | None = None, probe: bool = False, restart: str | None = None) -> dict[str, Any]:
    gpus = str(run.gpus_per_node)
    container: dict[str, Any] = {
        "name": "main", "image": image, "command": ["bash", "-c", script], "env": _env(run, env),
        "resources": {"requests": {"nvidia.com/gpu": gpus}, "limits": {"nvidia.com/gpu": gpus}},
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}]}
    volumes: list[dict[str, Any]] = [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]
    if files:
        container["volumeMounts"].append({"name": "rigsize-files", "mountPath": CONFIG_DIR})
        volumes.append({"name": "rigsize-files", "configMap": {"name": f"{name}-files"}})
    if port:
        container["ports"] = [{"name": "http", "containerPort": port}]
    if probe and port:     # /health answers 200 once the engine is up (vLLM's api_server.py, SGLang's http_server.py)
        container["readinessProbe"] = {"httpGet": {"path": "/health", "port": port}}
    if run.nodes > 1:
        container["securityContext"] = {"capabilities": {"add": ["IPC_LOCK"]}}
    spec: dict[str, Any] = {"containers": [container], "volumes": volumes}
    if restart:
        spec["restartPolicy"] = restart
    return spec


def _shell(engine: Launch, files: bool, setup: bool) -> str:
    """One bash line: into a work folder, the ConfigMap's files copied there, the setup, the command."""
    steps = ["mkdir -p /workspace", "cd /workspace"]
    if files:
        steps.append(f"cp {CONFIG_DIR}/* .")
    if setup and engine.setup:
        steps.append(engine.setup)
    return "set -euo pipefail; " + " && ".join(steps + list(engine.commands))


def _config_map(name: str, engine: Launch) -> dict[str, Any] | None:
    data = {f.name: f.text for f in engine.files if not f.executable}
    if not data:
        return None
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{name}-files"}, "data": data}


def leader_worker_set(run: PlannedRun, engine: Launch, name: str, replicas: int) -> list[dict[str, Any]]:
    if engine.tool not in SERVE_IMAGES:
        raise LaunchError(f"--target k8s runs vLLM or SGLang for inference (a LeaderWorkerSet); this plan is for "
                          f"{engine.tool}. "
                          f"Nearest plan it can run: rigsize launch {run.model} --task inference --engine vllm "
                          "--target k8s, or --target skypilot")
    image, port = SERVE_IMAGES[engine.tool].format(version=engine.version), SERVE_PORTS[engine.tool]
    files = any(not f.executable for f in engine.files)
    script = _shell(engine, files, setup=False)
    env = dict.fromkeys(user_variables(engine), "")
    meta = {"labels": {"app": name}}
    template: dict[str, Any] = {"size": run.nodes, "restartPolicy": "RecreateGroupOnPodRestart"}
    if run.nodes > 1:
        template["leaderTemplate"] = {"metadata": {"labels": {"app": name, "role": "leader"}},
                                      "spec": _pod(run, script, image, env, files, name, port, probe=True)}
        template["workerTemplate"] = {"metadata": {"labels": {"app": name, "role": "worker"}},
                                      "spec": _pod(run, script, image, env, files, name)}
    else:
        template["workerTemplate"] = {"metadata": meta, "spec": _pod(run, script, image, env, files, name, port,
                                                                      probe=True)}
    lws = {"apiVersion": LWS_API, "kind": "LeaderWorkerSet", "metadata": {"name": name},
           "spec": {"replicas": replicas, "leaderWorkerTemplate": template}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"{name}-api"},
               "spec": {"selector": {"leaderworkerset.sigs.k8s.io/name": name,
                                     "leaderworkerset.sigs.k8s.io/worker-index": "0"},
                        "ports": [{"name": "http", "port": port, "targetPort": port}]}}
    return [d for d in (_config_map(name, engine), lws, service) if d]


def job_set(run: PlannedRun, engine: Launch, name: str) -> list[dict[str, Any]]:
    files = any(not f.executable for f in engine.files)
    script = _shell(engine, files, setup=True)
    head = f"{name}-{REPLICATED_JOB}-0-0.{name}"
    env = {"HEAD_ADDR": head, **dict.fromkeys(user_variables(engine), "")}
    pod = _pod(run, script, TRAIN_IMAGE, env, files, name, restart="Never")
    job = {"parallelism": run.nodes, "completions": run.nodes, "completionMode": "Indexed", "backoffLimit": 0,
           "template": {"metadata": {"labels": {"app": name}}, "spec": pod}}
    js = {"apiVersion": JOBSET_API, "kind": "JobSet", "metadata": {"name": name},
          "spec": {"network": {"enableDNSHostnames": True}, "failurePolicy": {"maxRestarts": 0},
                   "replicatedJobs": [{"name": REPLICATED_JOB, "replicas": 1, "template": {"spec": job}}]}}
    return [d for d in (_config_map(name, engine), js) if d]


def notes(run: PlannedRun, engine: Launch, replicas: int) -> list[str]:
    """The engine's notes less its 'run on each node' (LWS and JobSet start every node), and the target's."""
    out = [n for n in engine.notes if not n.startswith("run ")]
    if user_variables(engine):
        out.append(f"set {', '.join(user_variables(engine))} in k8s.yaml (declared empty)")
    if replicas > 1:
        out.append(f"{replicas} LWS replicas of {run.nodes} node(s) each serve one {engine.tool} instance; the Service "
                   "spreads requests over their leaders")
    if run.nodes > 1:
        out.append("RDMA: add your cluster's RDMA device resource (e.g. the NVIDIA Network Operator's "
                   "rdma/rdma_shared_device_a) and secondary-network annotation to the pods; without them NCCL "
                   "falls back to TCP sockets on eth0")
    out.append("HF_TOKEN: kubectl create secret generic hf-token --from-literal=token=... (optional)")
    return out


def _yaml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/-]*", key) else json.dumps(key)


_YAML_WORDS = {"y", "n", "yes", "no", "true", "false", "on", "off", "null", "~"}   # YAML 1.1 booleans and null


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z/][A-Za-z0-9._/:-]*", value) and \
            value.lower() not in _YAML_WORDS and not value.endswith(":"):
        return value                               # a plain scalar reads back as this string
    return json.dumps(value, ensure_ascii=False)   # JSON scalars are YAML 1.2 flow scalars


def _yaml(value: Any, pad: str) -> list[str]:
    lines: list[str] = []
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{_yaml_key(k)}:")
                lines += _yaml(v, pad + "  ")
            else:
                lines.append(f"{pad}{_yaml_key(k)}: {_yaml_scalar(v)}")
        return lines
    for item in value:
        sub = _yaml(item, pad + "  ") if isinstance(item, (dict, list)) and item else [pad + "  " + _yaml_scalar(item)]
        lines.append(pad + "- " + sub[0][len(pad) + 2:])
        lines += sub[1:]
    return lines


def to_yaml(docs: list[dict[str, Any]]) -> str:
    """YAML text of the manifests (a fixed shape; no YAML library at run time)."""
    return "---\n".join("\n".join(_yaml(d, "")) + "\n" for d in docs)


def manifests(run: PlannedRun, engine: Launch, name: str, replicas: int = 1) -> list[dict[str, Any]]:
    """The documents of k8s.yaml; ``run`` is what one group runs (``serving_run`` for inference)."""
    name = k8s_name(name)
    if run.task == "inference":
        return leader_worker_set(run, engine, name, replicas)
    return job_set(run, engine, name)


def wrap(run: PlannedRun, module: Any, name: str) -> tuple[Launch, LaunchFile]:
    """The engine's launch for one group (addresses from LWS or JobSet) and k8s.yaml around it."""
    group, replicas = serving_run(run) if run.task == "inference" else (run, 1)
    head, rank = addresses(run)
    engine = module.emit(group, head_addr=head, node_rank=rank)
    docs = manifests(group, engine, name, replicas)
    kind = f"LeaderWorkerSet (lws {LWS_VERSION})" if run.task == "inference" else f"JobSet (jobset {JOBSET_VERSION})"
    text = (f"# rigsize launch: {run.model} on {run.gpus} x {run.gpu}, {engine.tool} {engine.version}; "
            f"Kubernetes {kind}; kubectl apply -f k8s.yaml\n") + to_yaml(docs)
    engine = replace(engine, notes=tuple(notes(group, engine, replicas)))
    return engine, LaunchFile("k8s.yaml", text)
