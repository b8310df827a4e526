"""The KV pool's longest-context figures (``max_context_single``, ``max_context_at_concurrency``)
are read off in closed form when no layer has a sliding window (``per_gpu._longest`` with
``per_block``): the same lengths the binary search over ``kv_bytes_per_sequence`` finds, for
dense, GQA, MLA and pipeline-split jobs (a sliding-window model keeps the search), and, on the
function itself, context-parallel splits."""

from __future__ import annotations

import math

import pytest

import rigsize
from rigsize.memory import per_gpu

JOBS = [
    ("qwen2.5-7b", dict(gpu="H100-SXM-80GB", gpus=1, batch=8, seq=8192)),
    ("gemma-2-9b", dict(gpu="A100-SXM-80GB", gpus=1, batch=4, seq=8192)),     # sliding windows: the search
    ("qwen2-72b", dict(gpu="H100-SXM-80GB", gpus=4, tp=4, batch=32, seq=8192)),
    ("qwen2-72b", dict(gpu="A100-SXM-80GB", gpus=4, tp=2, pp=2, batch=3, seq=32768)),
    ("llama-3.1-8b", dict(gpu="L4", gpus=1, batch=1, seq=4096, weights="fp8", kv_dtype="fp8")),
    ("deepseek-v3", dict(gpu="H200-SXM-141GB", gpus=8, tp=8, batch=16, seq=16384, weights="fp8")),
    ("qwen3-30b-a3b", dict(gpu="H100-SXM-80GB", gpus=2, tp=2, batch=64, seq=2048)),
]


_LONGEST = per_gpu._longest


def _search_only(bytes_at, budget, hi, per_block=0, block=1, cp=1):
    """``per_gpu._longest`` without its closed form: the binary search alone."""
    return _LONGEST(bytes_at, budget, hi)


@pytest.mark.parametrize("model, opts", JOBS, ids=[f"{m}-{i}" for i, (m, _) in enumerate(JOBS)])
def test_closed_form_equals_the_search(model: str, opts: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = rigsize.estimate(model, task="inference", **opts).memory
    monkeypatch.setattr(per_gpu, "_longest", _search_only)
    slow = rigsize.estimate(model, task="inference", **opts).memory
    assert fast.max_context_single > 0 and fast.max_context_at_concurrency > 0
    assert (fast.max_context_single, fast.max_context_at_concurrency) == (slow.max_context_single,
                                                                          slow.max_context_at_concurrency)
    assert fast.model_dump() == slow.model_dump()


@pytest.mark.parametrize("budget, per_block, block, cp", [(10**9, 131072, 16, 1), (10**9 + 5, 131072, 16, 2),
                                                          (131071, 131072, 16, 1), (7 * 10**6, 3000, 64, 4)])
def test_closed_form_is_the_largest_length_that_fits(budget: int, per_block: int, block: int, cp: int) -> None:
    def bytes_at(n: int) -> int:        # kv_bytes_per_sequence's shape without windows
        return per_block * math.ceil(math.ceil(n / cp) / block)

    hi = 10**7
    got = per_gpu._longest(bytes_at, budget, hi, per_block, block, cp)
    assert got == _search_only(bytes_at, budget, hi)
    assert bytes_at(got) <= budget and (got == hi or bytes_at(got + 1) > budget)
