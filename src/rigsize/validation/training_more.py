"""Training speed against the published runs of ``data/validation/training_runs_more.toml``
(NeMo 24.07 H100 FP8, torchtitan H100/H200, Megatron-Bridge Blackwell, llm-foundry and
fms-fsdp FSDP on A100/H100, torchtune): each run as a rigsize case, its class and split.

The metric is each source's tokens per second per GPU, the one figure every source prints
in the same units and that needs no FLOP convention (NeMo 24.07's model-FLOPs formula was
not read, Megatron-Bridge halves causal attention, llm-foundry counts full non-causal
attention): rigsize's prediction is converted to it (``global_batch x seq / step / GPUs``),
the measurement never is.  A step-time error ``e`` is a throughput error ``1/(1+e) - 1``.

Split: the file's own pre-chosen ``split`` (alternating fit / reserved per class, fixed
before any prediction).  ``reserved-too-few`` rows are reported, never fitted nor banded.

Class: ``error_bands.class_key(framework, GPU family, MoE?)``, with the sources' stacks
mapped onto rigsize's ``--framework`` values (``FRAMEWORKS``).

Inputs the sources do not print are filled by the rules in ``_fill`` (each named in a
comment); rows that still miss one are skipped, with the reason (``skipped_runs``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from rigsize.speed.error_bands import class_key
from rigsize.validation import Row as _Row


@dataclass(frozen=True)
class Row(_Row):
    """validation.Row with its class key (``error_bands.class_key``)."""

    cls: str = ""

# The sources' training stacks as rigsize --framework values (data/frameworks.toml):
# Composer's FSDP (llm-foundry) and IBM's fms-fsdp are PyTorch FSDP -> fsdp; NeMo and
# Megatron-Bridge run Megatron-Core -> megatron; torchtitan and torchtune are themselves.
FRAMEWORKS = {
    "composer-fsdp (llm-foundry)": "fsdp",
    "pytorch-fsdp (fms-fsdp)": "fsdp",
    "nemo (megatron-core)": "megatron",
    "megatron-bridge (megatron-core)": "megatron",
    "torchtitan": "torchtitan",
    "torchtune": "torchtune",
    # batch 2: NeMo Automodel runs HF models under PyTorch FSDP2; TRL's SFTTrainer here runs on DeepSpeed ZeRO-3
    "nemo-automodel (fsdp2)": "fsdp",
    "trl-sfttrainer (deepspeed zero-3)": "deepspeed",
}

# Llama 3.2 3B (torchtune's A100 rows; no rigsize preset): the fields of
# https://huggingface.co/meta-llama/Llama-3.2-3B/blob/main/config.json
LLAMA_32_3B = {"model_type": "llama", "hidden_size": 3072, "intermediate_size": 8192, "num_hidden_layers": 28,
               "num_attention_heads": 24, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 128256,
               "max_position_embeddings": 131072, "tie_word_embeddings": True, "rms_norm_eps": 1e-5,
               "rope_theta": 500000.0, "hidden_act": "silu"}

TASKS = {"pretrain": "pretrain", "sft": "finetune", "full_finetune": "finetune", "lora": "lora", "qlora": "qlora"}

# Networks the sources name, as rigsize's [network.*] rows (per-GPU rate across nodes):
# "rdma-400x8" = 400 Gb/s per GPU (torchtitan, Trainy) = ib-ndr-400's 50 GB/s; llm-foundry's
# "1600 Gbps node-node (RoCE)" over 8 GPUs = 200 Gb/s per GPU = ib-hdr-200x8's 25 GB/s.
# Unprinted fabrics: NVIDIA's DGX H100 / B200 / GB200 clusters and other H100 clusters get
# ib-ndr-400 (DGX H100 / B200: 8 x 400 Gb/s ConnectX-7), A100 clusters ib-hdr-200x8.
NETWORKS = {"rdma-400x8": "ib-ndr-400", "roce-1600-per-node": "ib-hdr-200x8"}

# torchtitan's H100 rows ran on 96 GB HBM2e H100s at 500 W: "the actual peak TFLOPs number is
# between SXM and NVL" (benchmark footnote).  Their peak is taken as the midpoint of the
# catalog's H100-SXM-80GB and H100-NVL-94GB dense peaks (so within +-8.4% of either end) and
# their bandwidth as printed (2.4 TB/s); the error of this class carries that uncertainty.
H100_96GB_BANDWIDTH = 2.4e12


@dataclass(frozen=True)
class TrainingCase:
    case: str
    source: str
    arch: Any
    workload: Any
    layout: Any
    gpu: Any
    gpus_per_node: int
    network: str
    vpp: int
    precision: str
    cls: str
    split: str
    measured_tokens_per_gpu: float


@cache
def more_runs() -> tuple[dict[str, Any], ...]:
    text = resources.files("rigsize.data").joinpath("validation", "training_runs_more.toml").read_text()
    return tuple(tomllib.loads(text)["run"])


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _torchtitan_h100(gpu: Any) -> Any:
    from rigsize.hardware.gpus import resolve_gpu

    nvl = resolve_gpu("H100-NVL-94GB")
    flops = {k: (v + nvl.dense_flops[k]) / 2 if isinstance(v, (int, float)) and isinstance(
        nvl.dense_flops.get(k), (int, float)) else v for k, v in gpu.dense_flops.items()}
    return gpu.model_copy(update={"name": "H100-SXM-96GB-500W (torchtitan)", "dense_flops": flops,
                                  "hbm_bytes_per_second": H100_96GB_BANDWIDTH})


def _arch(run: dict[str, Any]) -> Any | None:
    from rigsize.model.families import build_architecture
    from rigsize.model.inputs import preset_config, presets

    if "config" in run:
        cfg = dict(run["config"])
    elif run.get("preset") in presets():
        cfg = preset_config(run["preset"])
    elif run.get("model") == "Llama 3.2 3B":
        cfg = dict(LLAMA_32_3B)
    else:
        return None
    seq = _int(run.get("seq")) or 0
    if cfg.get("n_positions", seq) < seq:
        cfg["n_positions"] = seq
    if cfg.get("max_position_embeddings", seq) < seq:      # long-context runs extend RoPE
        cfg["max_position_embeddings"] = seq
    return build_architecture(cfg)


def _fill(run: dict[str, Any], framework: str) -> dict[str, Any] | str:
    """The run's layout with unprinted fields filled; a string says why it cannot be."""
    r = dict(run)
    if framework == "megatron":
        # NeMo's fine-tuning table has no CP/VP columns; its notes: "if CP = 1, dp = GPUs/(TP*PP)".
        if _int(r.get("cp")) is None:
            r["cp"] = 1
        if _int(r.get("vpp")) is None:
            r["vpp"] = 1
        if _int(r.get("dp")) is None and _int(r.get("tp")) and _int(r.get("pp")):
            r["dp"] = r["gpus"] // (r["tp"] * r["pp"] * r["cp"])
        # Recompute and SP live in the perf recipes, not read: selective recompute (the
        # attention core; Korthikanti et al. 2022's recommendation) and SP wherever tp > 1.
        if r.get("recompute") == "unknown":
            r["recompute"] = "selective"
        if r.get("sp") == "unknown":
            r["sp"] = _int(r.get("tp")) is not None and r["tp"] > 1
    if framework == "torchtune" and _int(r.get("gpus")) == 1 and r.get("global_batch") == "unknown":
        r["global_batch"] = r.get("micro_batch")       # one GPU: tokens/s do not depend on accumulation
    if framework == "fsdp" and r.get("recompute") == "unknown":
        r["recompute"] = "full"      # fms-fsdp "activation checkpointing True", fraction not printed: the bound
    if r.get("class") != "known_layout":
        return "a whole run, not a step measurement"
    if "unpacked" in r.get("notes", "") or r["case"].endswith("-a100-baseline"):
        return "unpacked sequences (tokens per sequence unknown)"
    for k in ("tp", "pp", "dp", "micro_batch", "global_batch", "seq"):
        if _int(r.get(k)) is None:
            return f"{k} not printed"
    if not isinstance(r.get("tokens_per_second_per_gpu"), (int, float)):
        return "no per-GPU throughput printed"
    return r


def training_case(run: dict[str, Any]) -> TrainingCase | str:
    """A run as a rigsize case, or the reason it is skipped."""
    from rigsize.hardware.gpus import resolve_gpu
    from rigsize.planning.layout import Layout, Workload

    framework = FRAMEWORKS[run["framework"]]
    r = _fill(run, framework)
    if isinstance(r, str):
        return r
    arch = _arch(r)
    if arch is None:
        return "no architecture (no rigsize preset, none in the row)"
    if arch.num_experts and _int(r.get("ep")) is None:
        return "ep not printed (an MoE run's expert parallelism sets its communication)"
    gpu = resolve_gpu(r["gpu"])
    if framework == "torchtitan" and "96GB HBM2e" in r.get("gpu_catalog_mismatch", ""):
        gpu = _torchtitan_h100(gpu)
    zero = _int(r.get("zero")) or 0
    recompute = r["recompute"] if r.get("recompute") in ("none", "selective", "full") else "full"
    layout = Layout(tp=r["tp"], pp=r["pp"], dp=r["dp"], cp=_int(r.get("cp")) or 1, ep=_int(r.get("ep")) or 1,
                    sp=r.get("sp") is True, zero=zero, recompute=recompute)
    if "sharding HSDP" in r.get("notes", "") and layout.dp > 8:
        # HSDP shards within a node and replicates across nodes: one 8-GPU shard group is
        # predicted (the cross-node gradient all-reduce overlaps backward; not costed).
        from dataclasses import replace

        layout = replace(layout, dp=8)
        r = {**r, "global_batch": r["micro_batch"] * 8}
    workload = Workload(task=TASKS[r["task"]], batch=r["micro_batch"], seq=r["seq"],  # type: ignore[arg-type]
                        global_batch=r["global_batch"], framework=framework)  # type: ignore[arg-type]
    per_node = _int(r.get("gpus_per_node")) or 8     # GB200: the catalog's nvlink_domain (72) spans trays
    network = NETWORKS.get(r.get("network", ""), "ib-hdr-200x8" if gpu.architecture == "ampere" else "ib-ndr-400")
    cls = class_key(framework, gpu.architecture, arch.num_experts > 0)
    return TrainingCase(r["case"], run["source"], arch, workload, layout, gpu, per_node, network,
                        _int(r.get("vpp")) or 1, "fp8" if r.get("precision") == "fp8" else "bf16", cls,
                        r["split"], float(r["tokens_per_second_per_gpu"]))


@cache
def training_cases() -> tuple[TrainingCase, ...]:
    return tuple(c for c in (training_case(r) for r in more_runs()) if not isinstance(c, str))


def skipped_runs() -> list[tuple[str, str]]:
    """(case, why) for each run that is not predicted."""
    return [(r["case"], c) for r in more_runs() if isinstance(c := training_case(r), str)]


def source_name(case: str) -> str:
    return case.split("-")[0]


def predict(c: TrainingCase, eff: Any = None) -> Any:
    """rigsize's TrainingSpeed for a case, with the efficiency of its class (or ``eff``)."""
    from rigsize.speed.training import training_efficiency, training_speed

    if eff is None:
        eff, _ = training_efficiency(c.gpu.architecture, c.workload.framework)
    return training_speed(c.arch, c.workload, c.layout, c.gpu, gpus_per_node=c.gpus_per_node, network=c.network,
                          vpp=c.vpp, eff=eff, precision=c.precision)


def predicted_tokens_per_gpu(c: TrainingCase, eff: Any = None) -> float:
    return c.workload.global_batch * c.workload.seq / (predict(c, eff).step_seconds * c.layout.gpus)


METRIC = "tokens_per_s_per_gpu"


def more_training_rows(cases: tuple[TrainingCase, ...] | None = None, eff: Any = None) -> list[Row]:
    return [Row(source_name(c.case), c.case, METRIC, c.split, c.measured_tokens_per_gpu,
                predicted_tokens_per_gpu(c, eff), c.cls) for c in (cases or training_cases())]


def step_error(row: _Row) -> float:
    """The row's error as a step-time error (predicted / measured step - 1)."""
    if row.metric in ("step_s", "gpu_hours"):
        return row.error
    return 1 / (1 + row.error) - 1       # throughput, TFLOP/s and MFU scale as 1 / step


def throughput_error(row: _Row) -> float:
    """The row's error as a throughput (tokens/s, MFU) error."""
    if row.metric in ("step_s", "gpu_hours"):
        return 1 / (1 + row.error) - 1
    return row.error


def band_errors(rows: list[_Row] | None = None) -> dict[tuple[str, str], list[float]]:
    """(class, performance field) -> errors of the RESERVED rows of every training source
    with a class (training_runs.toml's known layouts and this file's runs): step_seconds as
    step-time errors, mfu and tokens_per_second as throughput errors (both scale as 1 / step)."""
    from rigsize.validation import training_rows

    out: dict[tuple[str, str], list[float]] = {}
    for r in rows if rows is not None else training_rows() + more_training_rows():
        if r.split != "reserved" or not getattr(r, "cls", ""):
            continue
        out.setdefault((r.cls, "step_seconds"), []).append(step_error(r))
        out.setdefault((r.cls, "mfu"), []).append(throughput_error(r))
        out.setdefault((r.cls, "tokens_per_second"), []).append(throughput_error(r))
    return out
