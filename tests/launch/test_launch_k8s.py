"""--target k8s (issue 18): LeaderWorkerSet and JobSet manifests validate against the CRD schemas vendored
from the lws v0.10.0 and jobset v0.12.0 tags, with unknown fields rejected as kubectl's strict field
validation does; GPU requests x pods = the plan's GPUs; the engine command inside is the pinned emitter's.

Regenerate the goldens after a deliberate change: RIGSIZE_UPDATE_GOLDENS=1 pytest tests/launch.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources

import pytest
from _golden import assert_golden, planned

from rigsize.errors import RigsizeError
from rigsize.launch import k8s, launch, megatron, sglang, trl, vllm
from rigsize.launch.bundle import flags_of, known_flags
from rigsize.launch.plan import planned_run, select
from rigsize.planning.search import search

yaml = pytest.importorskip("yaml")
jsonschema = pytest.importorskip("jsonschema")

CASES = {
    "k8s-vllm-0.33.0-1node": ("qwen2-7b", dict(task="inference", gpu="H100-SXM-80GB", engine="vllm", batch=8)),
    "k8s-vllm-0.33.0-2replicas": ("qwen2.5-72b", dict(task="inference", gpu="H100-SXM-80GB", gpus=16, tp=8,
                                  engine="vllm", batch=32)),
    "k8s-vllm-0.33.0-tp8pp2": ("llama-3.1-405b", dict(task="inference", gpu="H100-SXM-80GB", gpus=16, tp=8, pp=2,
                               engine="vllm")),
    "k8s-sglang-0.5.23-tp8pp2": ("llama-3.1-405b", dict(task="inference", gpu="H100-SXM-80GB", gpus=16, tp=8, pp=2,
                                 engine="sglang")),
    "k8s-trl-1.16.0-deepspeed-2node": ("qwen2-7b", dict(task="finetune", gpu="H100-SXM-80GB", gpus=16,
                                       framework="deepspeed", zero="3", global_batch=64)),
    "k8s-trl-1.16.0-lora-1node": ("qwen2-7b", dict(task="lora", gpu="H100-SXM-80GB", gpus=1, framework="hf")),
    "k8s-megatron-core_v0.19.0-2node": ("qwen2-7b", dict(task="pretrain", gpu="H100-SXM-80GB", gpus=16,
                                        framework="megatron")),
}


def rec(case: str) -> dict:
    model, opts = CASES[case][:2]
    return planned(model, **opts)


def bundle(case: str):
    return launch(rec(case), target="k8s")


def docs(case: str) -> list[dict]:
    text = next(f.text for f in bundle(case).files if f.name == "k8s.yaml")
    return [d for d in yaml.safe_load_all(text) if d]


def strict(schema):
    """The schema with unknown fields rejected wherever it lists properties and does not keep unknown
    fields: what the API server's strict field validation (kubectl apply's default) does on a CRD."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out and \
                not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


@lru_cache(maxsize=None)
def _schema(name: str) -> str:
    schema = json.loads(resources.files("rigsize.data").joinpath("launch", name).read_text())
    schema.pop("$comment")
    return json.dumps(strict(schema))


def schema(kind: str) -> dict:
    return json.loads(_schema(k8s.LWS_SCHEMA_FILE if kind == "LeaderWorkerSet" else k8s.JOBSET_SCHEMA_FILE))


def workload(case: str) -> dict:
    return next(d for d in docs(case) if d["kind"] in ("LeaderWorkerSet", "JobSet"))


def pods(case: str) -> list[tuple[dict, int]]:
    """(pod spec, number of pods made from it) for every template in the workload."""
    w = workload(case)
    if w["kind"] == "LeaderWorkerSet":
        t, replicas = w["spec"]["leaderWorkerTemplate"], w["spec"]["replicas"]
        if "leaderTemplate" in t:
            return [(t["leaderTemplate"]["spec"], replicas), (t["workerTemplate"]["spec"], replicas * (t["size"] - 1))]
        return [(t["workerTemplate"]["spec"], replicas * t["size"])]
    out = []
    for rj in w["spec"]["replicatedJobs"]:
        job = rj["template"]["spec"]
        out.append((job["template"]["spec"], rj["replicas"] * job["parallelism"]))
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_golden(case: str) -> None:
    assert_golden(case, bundle(case))


def test_vendored_schemas_say_where_they_come_from() -> None:
    for name, tag, group in ((k8s.LWS_SCHEMA_FILE, "v0.10.0", "leaderworkerset.x-k8s.io/v1"),
                             (k8s.JOBSET_SCHEMA_FILE, "v0.12.0", "jobset.x-k8s.io/v1alpha2")):
        comment = json.loads(resources.files("rigsize.data").joinpath("launch", name).read_text())["$comment"]
        assert f"tag {tag}" in comment and group in comment and "source" in comment


@pytest.mark.parametrize("case", list(CASES))
def test_manifests_pass_the_vendored_crd_schemas(case: str) -> None:
    w = workload(case)
    assert w["apiVersion"] == (k8s.LWS_API if w["kind"] == "LeaderWorkerSet" else k8s.JOBSET_API)
    jsonschema.validate(w, schema(w["kind"]))


def test_the_strict_schema_can_fail() -> None:
    w = workload("k8s-vllm-0.33.0-tp8pp2")
    bad = json.loads(json.dumps(w))
    bad["spec"]["leaderWorkerTemplate"]["sise"] = 2            # a typo'd field
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema("LeaderWorkerSet"))
    bad = json.loads(json.dumps(w))
    bad["spec"]["leaderWorkerTemplate"]["restartPolicy"] = "Always"    # not in the CRD's enum
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema("LeaderWorkerSet"))
    bad = json.loads(json.dumps(w))
    bad["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["imagee"] = "x"   # deep in the pod
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema("LeaderWorkerSet"))
    js = json.loads(json.dumps(workload("k8s-megatron-core_v0.19.0-2node")))
    js["spec"]["replicatedJobs"][0]["template"]["spec"]["parallelizm"] = 2       # a typo in the Job spec
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(js, schema("JobSet"))
    bad = json.loads(json.dumps(w))
    del bad["spec"]["leaderWorkerTemplate"]["workerTemplate"]      # required
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema("LeaderWorkerSet"))


@pytest.mark.parametrize("case", list(CASES))
def test_gpu_requests_times_pods_is_the_plans_gpus(case: str) -> None:
    run = planned_run(rec(case))
    total = 0
    for spec, count in pods(case):
        (c,) = spec["containers"]
        assert c["resources"]["requests"]["nvidia.com/gpu"] == c["resources"]["limits"]["nvidia.com/gpu"]
        total += int(c["resources"]["requests"]["nvidia.com/gpu"]) * count
        assert int(c["resources"]["requests"]["nvidia.com/gpu"]) == run.gpus_per_node
    assert total == run.gpus


@pytest.mark.parametrize("case", list(CASES))
def test_shared_memory_and_multi_node_network(case: str) -> None:
    run = planned_run(rec(case))
    for spec, _ in pods(case):
        (c,) = spec["containers"]
        vols = {v["name"]: v for v in spec["volumes"]}
        shm = next(m for m in c["volumeMounts"] if m["mountPath"] == "/dev/shm")
        assert vols[shm["name"]]["emptyDir"]["medium"] == "Memory"
        env = {e["name"] for e in c["env"]}
        pod_nodes = pods(case)
        spans = run.nodes > 1 and not (workload(case)["kind"] == "LeaderWorkerSet"
                                       and workload(case)["spec"]["leaderWorkerTemplate"]["size"] == 1)
        assert ("NCCL_SOCKET_IFNAME" in env) == spans, (case, pod_nodes)
        assert ("securityContext" in c) == spans


@pytest.mark.parametrize("case", list(CASES))
def test_engine_command_flags_are_pinned_and_sizes_multiply(case: str) -> None:
    b, run = bundle(case), planned_run(rec(case))
    allowed = {"vllm": known_flags(vllm.FLAGS_FILE), "sglang": known_flags(sglang.FLAGS_FILE),
               "trl": known_flags(trl.FLAGS_FILE) | known_flags(trl.ACCELERATE_FLAGS_FILE),
               "megatron": known_flags(megatron.FLAGS_FILE) | known_flags(megatron.TORCHRUN_FLAGS_FILE)}[b.launch.tool]
    (argv,) = b.launch.argv
    assert set(flags_of(argv)) <= allowed, set(flags_of(argv)) - allowed
    script = pods(case)[0][0]["containers"][0]["command"][2]
    assert b.launch.commands[0] in script
    if b.launch.tool == "vllm":
        t = workload(case)["spec"]["leaderWorkerTemplate"]
        val = {f: int(argv[argv.index(f) + 1]) for f in ("--tensor-parallel-size", "--pipeline-parallel-size",
                                                          "--data-parallel-size")}
        per_group = val["--tensor-parallel-size"] * val["--pipeline-parallel-size"] * val["--data-parallel-size"]
        assert per_group == t["size"] * run.gpus_per_node
        assert per_group * workload(case)["spec"]["replicas"] == run.gpus
        if t["size"] > 1:
            assert argv[argv.index("--node-rank") + 1] == "$LWS_WORKER_INDEX"
            assert argv[argv.index("--nnodes") + 1] == str(t["size"])
    if b.launch.tool == "sglang":
        t = workload(case)["spec"]["leaderWorkerTemplate"]
        val = {f: int(argv[argv.index(f) + 1]) for f in ("--tp-size", "--pp-size", "--dp-size")}
        assert val["--tp-size"] * val["--pp-size"] * val["--dp-size"] * workload(case)["spec"]["replicas"] == run.gpus
        assert argv[argv.index("--node-rank") + 1] == "$LWS_WORKER_INDEX"
        assert argv[argv.index("--dist-init-addr") + 1] == "$LWS_LEADER_ADDRESS:5000"


def test_jobset_head_is_pod_zero_of_the_indexed_job() -> None:
    w = workload("k8s-megatron-core_v0.19.0-2node")
    name, (rj,) = w["metadata"]["name"], w["spec"]["replicatedJobs"]
    job = rj["template"]["spec"]
    assert job["completionMode"] == "Indexed" and job["parallelism"] == job["completions"] == 2
    env = {e["name"]: e.get("value") for e in job["template"]["spec"]["containers"][0]["env"]}
    # jobset v0.12.0 pkg/controllers/jobset_controller.go: "%s-%s-%d-%d.%s" (jobset, replicatedJob, job, pod, subdomain)
    assert env["HEAD_ADDR"] == f"{name}-{rj['name']}-0-0.{name}"
    assert "DATA_ARGS" in env
    assert w["spec"]["network"]["enableDNSHostnames"] is True
    assert len(f"{name}-{rj['name']}-0-0") <= 63


def test_files_travel_in_a_config_map() -> None:
    cm = next(d for d in docs("k8s-trl-1.16.0-deepspeed-2node") if d["kind"] == "ConfigMap")
    ds = next(f.text for f in bundle("k8s-trl-1.16.0-deepspeed-2node").files if f.name == "ds_config.json")
    assert cm["data"]["ds_config.json"] == ds
    script = pods("k8s-trl-1.16.0-deepspeed-2node")[0][0]["containers"][0]["command"][2]
    assert f"cp {k8s.CONFIG_DIR}/* ." in script and "--deepspeed ds_config.json" in script


def test_service_selects_the_leaders() -> None:
    svc = next(d for d in docs("k8s-vllm-0.33.0-tp8pp2") if d["kind"] == "Service")
    w = workload("k8s-vllm-0.33.0-tp8pp2")
    assert svc["spec"]["selector"] == {"leaderworkerset.sigs.k8s.io/name": w["metadata"]["name"],
                                       "leaderworkerset.sigs.k8s.io/worker-index": "0"}
    assert svc["spec"]["ports"][0]["port"] == vllm.PORT


def test_yaml_writer_reads_back() -> None:
    tricky = {"a": "yes", "b": "8", "c": "x: y", "d": [], "e": {}, "f": [["n", 1.5], {"g": None}], "h": "on",
              "k.io/x": "v0.33.0", "m": "a\nb \"q\""}
    assert yaml.safe_load(k8s.to_yaml([tricky])) == tricky


def test_names_are_dns_labels() -> None:
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", k8s.k8s_name("rigsize-inference-Org/Model_v2.5--"))
    assert len(k8s.k8s_name("x" * 200)) <= 40


def test_refusals_name_the_nearest_plan() -> None:
    r = select(search("qwen2-7b", task="inference", gpu="H100-SXM-80GB", engine="trtllm", top=1))
    with pytest.raises(RigsizeError, match="Nearest plan it can run: rigsize launch qwen2-7b --task inference "
                                           "--engine vllm --target k8s"):
        launch(r, target="k8s")
    with pytest.raises(RigsizeError, match="--target"):
        launch(rec("k8s-vllm-0.33.0-1node"), target="kube")
