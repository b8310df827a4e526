"""The question's own article, side by side (issue 17): "跑720亿参数的大模型需要什么服务器?"
("What server does a 72-billion-parameter model need?").  Its claims, as the issue quotes
them, against rigsize on ``qwen2-72b`` (the exact architecture).  Each test prints
rigsize's figure beside the claim; the README explains where and why they differ.
Run with -s to see the table."""

from __future__ import annotations

import pytest

import rigsize
from rigsize.errors import PlanError
from rigsize.planning.search import search

MODEL = "qwen2-72b"


def _say(claim: str, ours: str) -> None:
    print(f"\n  article: {claim}\n  rigsize: {ours}")


def test_int8_or_gptq_weights() -> None:
    """Article: INT8/GPTQ weights take 150-200 GB.  rigsize: 1 byte (int8) or ~0.5 byte
    (4-bit GPTQ) per weight plus scales, so ~75 GB and ~40 GB: the article's figure is the
    bf16 checkpoint's (2 bytes per weight, ~145 GB) or more."""
    int8 = rigsize.estimate(MODEL, weights="int8", gpu="A100-80GB", gpus=8, tp=4, dp=2).model.weight_bytes
    gptq = rigsize.estimate(MODEL, weights="gptq-int4", gpu="A100-80GB", gpus=1).model.weight_bytes
    bf16 = rigsize.estimate(MODEL, gpu="A100-80GB", gpus=8).model.weight_bytes
    _say("INT8/GPTQ weights 150-200 GB", f"int8 {int8 / 1e9:.0f} GB, gptq-int4 {gptq / 1e9:.0f} GB, "
         f"bf16 {bf16 / 1e9:.0f} GB")
    assert 72e9 < int8 < 80e9 and 36e9 < gptq < 45e9 and 144e9 < bf16 < 147e9


def test_six_h100_is_not_a_layout() -> None:
    """Article: 6 x H100 minimum for inference.  rigsize: no tensor-parallel layout of 64
    attention heads and 8 KV heads admits 6 (tp 6 or 3 splits neither); 4 x H100 hold the
    bf16 model with room for 16 users at 8K."""
    with pytest.raises(PlanError, match="tp=6 does not divide 64 attention heads"):
        rigsize.estimate(MODEL, gpu="H100", gpus=6, tp=6)
    best = search(MODEL, task="inference", gpu="H100", objective="fewest-gpus", users=16, seq=8192)
    n = best["recommendations"][0]["choices"]["gpus"]
    _say("6 x H100 minimum", f"tp 6 refused; {n} x H100 for 16 users at 8K (bf16)")
    assert n == 4


def test_eight_a100_for_inference_and_lora() -> None:
    """Article: 8 x A100 80GB minimum for inference, and 8 x A100 for LoRA.  rigsize: 4 for
    bf16 inference at 16 users x 8K; LoRA on 4 with ZeRO-3 and recomputation."""
    inf = search(MODEL, task="inference", gpu="A100-80GB", objective="fewest-gpus", users=16, seq=8192)
    lora = search(MODEL, task="lora", gpu="A100-80GB", objective="fewest-gpus", train_tokens=1e9, seq=4096)
    a, b = inf["recommendations"][0], lora["recommendations"][0]
    _say("8 x A100 80GB for inference; 8 x A100 for LoRA",
         f"inference {a['choices']['gpus']} x A100 80GB; LoRA {b['choices']['gpus']} x A100 80GB "
         f"({b['choices']['framework']}, ZeRO-{b['parallel']['zero']}, recompute {b['parallel']['recompute']})")
    assert a["choices"]["gpus"] == 4 and b["choices"]["gpus"] <= 8


def test_consumer_gpus() -> None:
    """Article: consumer GPUs are unsuitable.  rigsize: in bf16 the 145 GB of weights need all 8
    RTX 4090s (8 x 24 GB; fewer do not hold them) and leave room for less than the model's
    131,072-token context (the plan sets --max-model-len); quantized to 4 bits, at most 4 of them
    serve one user."""
    # vLLM: --max-model-len is its setting (TensorRT-LLM's own budget, 0.9 of the memory the rest leaves, holds
    # the whole context once on the same 8 cards: 133,984 tokens)
    bf16 = search(MODEL, task="inference", gpu="RTX-4090", objective="fewest-gpus", users=1, max_gpus=8,
                  engine="vllm")
    quant = search(MODEL, task="inference", gpu="RTX-4090", objective="fewest-gpus", users=1, max_gpus=8,
                   allow_quant=True)
    b, q = bf16["recommendations"][0], quant["recommendations"][0]
    _say("consumer GPUs unsuitable", f"bf16: {b['choices']['gpus']} x RTX 4090 at --max-model-len "
         f"{b['inputs']['max_model_len']:,}; 4-bit: {q['choices']['gpus']} x RTX 4090 ({q['choices']['weights']}), "
         f"TPOT {q['performance']['tpot_seconds'] * 1e3:.0f} ms")
    assert b["choices"]["gpus"] == 8 and b["inputs"]["max_model_len"] < 131072
    assert q["choices"]["gpus"] <= 4


def test_server_ram_and_nvme() -> None:
    """Article: 1 TB RAM and 10 TB NVMe per server.  rigsize: the reference server's RAM per
    GPU memory (DGX A100: 1 TB for 640 GB) and its data-cache NVMe, or more where loading or
    checkpoints need it."""
    lora = search(MODEL, task="lora", gpu="A100-80GB", objective="fewest-gpus", train_tokens=1e9, seq=4096)
    srv = lora["recommendations"][0]["server"]
    _say("1 TB RAM, 10 TB NVMe per server", f"{srv['ram_bytes'] / 1e12:.1f} TB RAM, {srv['nvme_bytes'] / 1e12:.1f} TB "
         "NVMe per node")
    assert srv["ram_bytes"] >= 0.4e12 and srv["nvme_bytes"] >= 5e12
