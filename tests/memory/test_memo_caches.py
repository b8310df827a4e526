"""The planner's memo caches (issue 16: the search asks for the same stages, shards and
steps thousands of times) never change an answer: every estimate made after a search has
filled them equals the same estimate made with every cache emptied first.  A cache key
that misses a field the value depends on (a layout size, a recipe setting, a format)
makes the warm answer the answer of some other job, and fails here."""

from __future__ import annotations

import pytest

import rigsize
from rigsize.memory import per_gpu
from rigsize.model.inputs import resolve_model
from rigsize.planning import job as planning_job
from rigsize.speed import serving

# (model, options): training layouts that differ only in what some caches ignore (dp, ZeRO,
# micro-batch, recompute, framework), pipeline splits whose stages share layer counts, MoE
# (experts split over ep), serving in several formats and engines
JOBS = [
    ("qwen2.5-7b", dict(task="pretrain", gpu="H100-SXM-80GB", gpus=16, tp=2, pp=4, global_batch=256, seq=4096)),
    ("qwen2.5-7b", dict(task="pretrain", gpu="H100-SXM-80GB", gpus=32, tp=2, pp=4, global_batch=256, seq=4096)),
    ("qwen2.5-7b", dict(task="pretrain", gpu="H100-SXM-80GB", gpus=16, tp=2, pp=4, global_batch=64, seq=4096,
                        recompute="full", micro_batch=2)),
    ("qwen2.5-7b", dict(task="pretrain", gpu="H100-SXM-80GB", gpus=16, tp=2, pp=4, global_batch=256, seq=4096,
                        recompute="full")),
    ("qwen2.5-7b", dict(task="pretrain", gpu="H100-SXM-80GB", gpus=16, tp=2, pp=4, global_batch=256, seq=4096,
                        sp=False)),
    ("qwen2.5-7b", dict(task="finetune", gpu="H100-SXM-80GB", gpus=8, framework="deepspeed", zero="3", seq=4096)),
    ("qwen2.5-7b", dict(task="finetune", gpu="H100-SXM-80GB", gpus=8, framework="deepspeed", zero="1", seq=4096)),
    ("qwen2.5-7b", dict(task="lora", gpu="A100-SXM-80GB", gpus=2, framework="hf", seq=2048)),
    ("qwen2.5-7b", dict(task="qlora", gpu="A100-SXM-80GB", gpus=1, framework="hf", seq=2048)),
    ("qwen3-30b-a3b", dict(task="pretrain", gpu="H100-SXM-80GB", gpus=16, tp=2, pp=2, ep=4, global_batch=128,
                           seq=4096)),
    ("qwen3-30b-a3b", dict(task="pretrain", gpu="H100-SXM-80GB", gpus=16, tp=2, pp=2, ep=2, global_batch=128,
                           seq=4096)),
    ("gpt-3-175b", dict(task="pretrain", gpu="H100-SXM-80GB", gpus=64, tp=8, pp=8, global_batch=1536, seq=2048)),
    ("gpt-3-175b", dict(task="pretrain", gpu="H100-SXM-80GB", gpus=128, tp=8, pp=8, global_batch=1536, seq=2048)),
    ("qwen2-72b", dict(task="inference", gpu="H100-SXM-80GB", gpus=4, tp=4, batch=32, seq=8192)),
    ("qwen2-72b", dict(task="inference", gpu="H100-SXM-80GB", gpus=2, tp=2, batch=32, seq=8192, weights="fp8",
                       kv_dtype="fp8")),
    ("qwen2-72b", dict(task="inference", gpu="H100-SXM-80GB", gpus=4, tp=2, pp=2, batch=16, seq=8192,
                       engine="sglang")),
    ("qwen3-30b-a3b", dict(task="inference", gpu="H100-SXM-80GB", gpus=2, tp=2, ep=2, batch=64, seq=4096)),
]

CACHES = [per_gpu._STAGE_TENSORS, per_gpu._RANK_BYTES, per_gpu._RANK_PARAMS, per_gpu._LARGEST_SHARD,
          per_gpu._TENSOR_BITS, per_gpu._SHARD_FACTORS, per_gpu._SPLIT, per_gpu._ACTIVATIONS,
          planning_job._GROUP_PROBLEMS, serving._STAGE_COSTS]


def _cold(model: str, opts: dict) -> dict:
    """The estimate on a model resolved afresh (a new architecture object), caches emptied."""
    for cache in CACHES:
        cache.clear()
    serving._ctx_sum.cache_clear()
    return rigsize.estimate(resolve_model(model), **opts).model_dump(mode="json")


@pytest.fixture(scope="module")
def warm() -> list[dict]:
    """Every job estimated one after another on one resolved model per name (the caches key
    on the architecture object, as a search shares one), with the caches kept."""
    specs = {name: resolve_model(name) for name in {m for m, _ in JOBS}}
    rigsize.plan(specs["qwen2.5-7b"], task="pretrain", max_gpus=64, seq=4096, global_batch=256, train_tokens="10B")
    return [rigsize.estimate(specs[model], **opts).model_dump(mode="json") for model, opts in JOBS]


@pytest.mark.parametrize("i", range(len(JOBS)))
def test_a_warm_estimate_equals_a_cold_one(warm: list[dict], i: int) -> None:
    model, opts = JOBS[i]
    assert warm[i] == _cold(model, opts)


def test_the_jobs_differ() -> None:
    """The cases are not one job under several names: pairs that differ only in what some
    caches ignore (recompute, sp and micro-batch: the states; ZeRO and ep: the activations) still differ in the part those caches hold, so a key merging them shows."""
    parts = {i: _cold(*JOBS[i])["memory"]["per_gpu"] for i in (0, 2, 3, 4, 5, 6, 9, 10)}
    assert parts[0]["activations"] != parts[2]["activations"]
    assert parts[0]["activations"] != parts[3]["activations"]      # recompute alone
    assert parts[0]["activations"] != parts[4]["activations"]      # sequence parallelism alone
    assert parts[5]["gradients"] != parts[6]["gradients"]          # ZeRO alone
    assert parts[9]["optimizer"] != parts[10]["optimizer"]         # ep alone
