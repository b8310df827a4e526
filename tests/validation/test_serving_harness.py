"""The serving rows are predicted under the settings their benchmark ran with.

InferenceX (InferenceMAX) draws request lengths from ``int(0.8 L) .. L`` (``--random-range-ratio 0.8``)
and its launch scripts fix the KV-cache dtype and the scheduler's token budget; the expected values
below are read from those scripts and that client (see data/validation/SERVING-README.md), not from
rigsize.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from importlib import resources

import pytest

from rigsize.validation.serving import mean_length, predict_serving, serving_cases


def _csv_rows() -> list[dict[str, str]]:
    text = resources.files("rigsize.data").joinpath("validation", "serving_silicon_sample.csv").read_text()
    return list(csv.DictReader(text.splitlines()))


def test_mean_length_of_a_range_ratio_draw() -> None:
    # randint(int(1024 * 0.8), 1024 + 1): 819 .. 1024, mean 921.5
    assert mean_length(1024, 0.8) in (921, 922)
    # 6553 .. 8192, mean 7372.5
    assert mean_length(8192, 0.8) in (7372, 7373)
    assert mean_length(1024, 0.0) == 1024


def test_every_inferencex_row_carries_its_client_ratio() -> None:
    rows = _csv_rows()
    for r in rows:
        if r["source_kind"].startswith("inferencex"):
            assert r["random_range_ratio"] == "0.8", r["aic_id"]
        else:
            assert r["random_range_ratio"] == "", r["aic_id"]


def test_llama_70b_inferencex_rows_ran_an_fp8_kv_cache() -> None:
    rows = [r for r in _csv_rows() if r["preset"] == "llama-3.1-70b" and r["source_kind"].startswith("inferencex")]
    assert len(rows) == 441
    for r in rows:
        assert r["kv_dtype"] == "fp8"
        assert r["backend_version"] == {"vllm": "0.10.2", "trtllm": "1.1.0rc2.post2"}[r["backend"]]
        assert r["max_num_tokens"] == {"vllm": "8192", "trtllm": "16384"}[r["backend"]]


def test_deepseek_trtllm_budget_is_the_scripts_formula() -> None:
    # dsr1_*_trt_slurm.sh: MAX_NUM_TOKENS=$(( ($CONC+$ISL+64+63)/64*64 )); c4 at 1024: 1155 // 64 * 64
    rows = [r for r in _csv_rows() if r["preset"] == "deepseek-r1" and r["backend"] == "trtllm"
            and r["measured"] == "2025-12-15" and r["concurrency"] == "4" and r["isl"] == "1024"]
    assert rows and {r["max_num_tokens"] for r in rows} == {"1152"}


def _one(cls: str, **match: object):
    match.setdefault("split", "fit")
    return next(c for c in serving_cases() if c.cls == cls and all(getattr(c, k) == v for k, v in match.items()))


def test_a_row_is_predicted_at_its_mean_lengths() -> None:
    c = _one("vllm|hopper|dense", preset="llama-3.1-70b", isl=8192, osl=1024, concurrency=8)
    assert c.range_ratio == 0.8
    fixed = replace(c, isl=c.mean_isl, osl=c.mean_osl, range_ratio=0.0)
    assert predict_serving(c).ttft_seconds == pytest.approx(predict_serving(fixed).ttft_seconds)
    # and not at the nominal ones: a 7,372-token mean prompt prefills faster than 8,192 tokens
    nominal = replace(c, range_ratio=0.0)
    assert predict_serving(c).ttft_seconds < 0.95 * predict_serving(nominal).ttft_seconds


def test_the_scripts_token_budget_is_the_schedulers(monkeypatch: pytest.MonkeyPatch) -> None:
    import rigsize.validation.serving as module

    seen = []
    real = module.serve

    def spy(*args, **kwargs):
        seen.append(args[6].max_num_batched_tokens)        # serve(arch, layout, gpu, fmt, kv, eff, engine, ...)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "serve", spy)
    c = _one("trtllm|hopper|moe", preset="deepseek-r1", isl=1024, osl=1024, concurrency=16, max_num_tokens=1152,
             split="fit")
    predict_serving(c)
    predict_serving(replace(c, max_num_tokens=None))
    assert seen == [1152, 8192]       # the script's budget, else vLLM's OpenAI-server default on a >= 70 GiB GPU


def test_sglang_inferencex_rows_carry_the_scripts_memory_share() -> None:
    # dsr1_fp8_b200.sh (12ba0ae07): MEM_FRAC_STATIC=0.95 at TP=4, 0.82 at TP=8; dsr1_fp4_b200*.sh: 0.85;
    # dsr1_fp8_h200.sh: 0.82
    rows = [r for r in _csv_rows() if r["backend"] == "sglang" and r["source_kind"].startswith("inferencex")]
    assert len(rows) == 139
    for r in rows:
        expected = ("0.85" if r["weights"] == "nvfp4" else
                    "0.95" if (r["gpu"], r["tp"]) == ("B200-180GB", "4") else "0.82")
        assert r["mem_fraction"] == expected, r["aic_id"]


def test_the_scripts_memory_share_sizes_the_kv_cache() -> None:
    from rigsize.validation.serving import _capacity

    # DeepSeek-R1 fp8 on 4 B200 at --mem-fraction-static 0.95 served 8 clients at 8k prompts; at SGLang's
    # default share its weights alone (about 157.5 GiB a GPU) pass the budget and nothing is left for KV
    c = _one("sglang|blackwell|moe", preset="deepseek-r1", tp=4, weights="fp8-block", concurrency=8)
    assert c.mem_fraction == 0.95
    assert _capacity(c) >= c.concurrency
    assert _capacity(replace(c, mem_fraction=None)) == 0


def test_sglang_b200_rows_carry_the_scripts_recv_interval() -> None:
    # every B200 DeepSeek-R1 SGLang script: SCHEDULER_RECV_INTERVAL=30 if CONC >= 16 else 10 (the 2026-03-25
    # fp8 TP=4 branch: 10); dsr1_fp8_h200.sh sets none (SGLang's default, 1)
    rows = [r for r in _csv_rows() if r["backend"] == "sglang" and r["source_kind"].startswith("inferencex")]
    for r in rows:
        if r["gpu"] == "H200-SXM-141GB":
            expected = ""
        elif r["tp"] == "4" and r["weights"] == "fp8-block":
            expected = "10"
        else:
            expected = "30" if int(r["concurrency"]) >= 16 else "10"
        assert r["recv_interval"] == expected, r["aic_id"]
    assert all(r["recv_interval"] == "" for r in _csv_rows() if r["backend"] != "sglang")


def test_tensorrt_llm_rows_carry_the_scripts_admission_holds() -> None:
    # 70b_*_trt_slurm.sh (9596d23d7): batch_wait_max_tokens_ratio 0.9, batch_wait_timeout_iters 20 at 1024 x 1024
    # and tp < 8; dsr1_fp8_b200_trt.sh (ec7bafaae, 2026-01-29): 40 / 0.8 at 1024 x 1024 and CONC >= 64; every
    # DeepSeek-R1 TensorRT-LLM script's attention-DP branch: attention_dp_config enable_balance, timeout_iters 60
    rows = [r for r in _csv_rows() if r["backend"] == "trtllm" and r["source_kind"].startswith("inferencex")]
    for r in rows:
        one_k = r["isl"] == r["osl"] == "1024"
        if r["preset"] == "llama-3.1-70b":
            expected = ("20", "0.9", "") if one_k and int(r["tp"]) < 8 else ("", "", "")
        elif int(r["dp"]) > 1:
            expected = ("", "", "60")
        elif r["measured"] == "2026-01-29" and r["weights"] == "fp8-block" and one_k and int(r["concurrency"]) >= 64:
            expected = ("40", "0.8", "")
        else:
            expected = ("", "", "")
        assert (r["batch_wait_iters"], r["batch_wait_ratio"], r["adp_balance_iters"]) == expected, r["aic_id"]
    assert sum(r["batch_wait_iters"] == "20" for r in rows) == 54


def test_sglang_2025_11_nvfp4_rows_ran_expert_parallel() -> None:
    # e06929c70 / 79abd6cb4: benchmarks/dsr1_fp4_b200_docker.sh l.24 --enable-ep-moe (SGLang: ep_size = tp_size);
    # 7daaa8bb3 l.24 --ep-size $EP_SIZE with ep 4 / 8 = tp in the config
    rows = [r for r in _csv_rows() if r["backend"] == "sglang" and r["weights"] == "nvfp4"
            and r["measured"] in ("2025-11-02", "2025-11-10")]
    assert len(rows) == 36
    assert all(r["ep"] == r["tp"] and r["moe_tp"] == "1" for r in rows)


def test_tensorrt_llm_2025_11_02_rows_ran_the_scripts_layout() -> None:
    # e06929c70: dsr1_fp8_{b200,h200}_trt_slurm.sh set EP_SIZE=$TP; dsr1_fp4_b200_trt_slurm.sh at TP 8 above 8 clients
    # (1k x 1k); attention DP (tp 1 x dp TP) on H200 at 8k x 1k above 32 clients and on B200 nvfp4 at 256 clients
    # or at 8k x 1k above 32
    rows = {(r["gpu"], r["weights"], r["isl"], r["osl"], r["concurrency"], r["gpus"]): r for r in _csv_rows()
            if r["backend"] == "trtllm" and r["measured"] == "2025-11-02" and r["preset"] == "deepseek-r1"}
    assert len(rows) == 40 and all(int(r["ep"]) == int(r["gpus"]) for r in rows.values())
    h200 = rows[("H200-SXM-141GB", "fp8-block", "8192", "1024", "64", "8")]
    assert (h200["tp"], h200["dp"], h200["adp_balance_iters"]) == ("1", "8", "60")
    b200 = rows[("B200-180GB", "nvfp4", "1024", "1024", "16", "8")]
    assert (b200["tp"], b200["dp"], b200["ep"]) == ("8", "1", "8")
    assert sum(r["dp"] != "1" for r in rows.values()) == 11
