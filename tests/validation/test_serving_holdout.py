"""The serving holdout (data/validation/serving_holdout.csv, SERVING-HOLDOUT-README.md): the table loads, every
row is sourced, pinned and typed, no row repeats one of serving_more.csv / published_throughput.csv, and the
source stays out of ``rigsize validate --source all``.

No test here calls the predictor on holdout rows (``holdout_rows`` / ``predict_more``): the protocol is that
no rigsize prediction exists for them until they are opened once, after a model change is final.  The CLI
tests replace ``holdout_rows`` and every other row source with stubs, so nothing is predicted."""

from __future__ import annotations

import csv
import re
from importlib import resources

import pytest

from rigsize.validation import serving_holdout
from rigsize.validation.serving_holdout import holdout_table, skipped

REQUIRED = ("row_id", "split", "class_key", "source_kind", "source", "source_url", "as_of", "engine", "gpu",
            "gpu_family", "gpus", "hf_model", "model_class", "dataset", "load_mode", "notes")
INTS = ("gpus", "nodes", "tp", "pp", "ep", "dp", "isl", "osl", "concurrency", "num_prompts",
        "total_input_tokens", "total_output_tokens")
METRICS = ("ttft_mean_ms", "ttft_median_ms", "ttft_p99_ms", "tpot_mean_ms", "tpot_median_ms", "tpot_p99_ms",
           "itl_mean_ms", "output_tokens_per_s", "total_tokens_per_s", "requests_per_s", "latency_s")
PINNED = (re.compile(r"^https://github\.com/[\w.-]+/[\w.-]+/blob/[0-9a-f]{40}/\S+$"),      # a file at a commit
          re.compile(r"^https://github\.com/[\w.-]+/[\w.-]+/(issues|pull)/\d+$"))          # one thread


def _csv(name: str) -> list[dict[str, str]]:
    text = resources.files("rigsize.data").joinpath("validation", name).read_text()
    return list(csv.DictReader(text.splitlines()))


def test_loads_with_serving_more_columns_and_ids_in_order() -> None:
    rows = holdout_table()
    assert len(rows) >= 40
    more = _csv("serving_more.csv")
    assert list(rows[0]) == list(more[0])                       # same columns, same order
    assert [r["row_id"] for r in rows] == [f"sh{i:04d}" for i in range(1, len(rows) + 1)]
    assert {r["split"] for r in rows} == {"holdout"}


def test_every_row_has_a_pinned_source_and_as_of() -> None:
    for r in holdout_table():
        for col in REQUIRED:
            assert r[col].strip(), (r["row_id"], col)
        assert r["as_of"] == "2026-12-01", r["row_id"]
        assert any(p.match(r["source_url"]) for p in PINNED), (r["row_id"], r["source_url"])


def test_columns_are_numeric_where_they_must_be() -> None:
    for r in holdout_table():
        for col in INTS:
            if r[col]:
                assert int(r[col]) > 0, (r["row_id"], col)
        for col in (*METRICS, "request_rate"):
            if r[col]:
                assert float(r[col]) > 0, (r["row_id"], col)
        assert any(r[c] for c in METRICS), r["row_id"]              # every row measures something
        assert r["engine"] in ("vllm", "sglang", "trtllm"), r["row_id"]
        assert r["model_class"] in ("dense", "moe"), r["row_id"]
        assert r["class_key"] == f"{r['engine']}|{r['gpu_family']}|{r['model_class']}", r["row_id"]
        if r["source_kind"] == "mlperf":                         # system throughput always printed
            assert r["output_tokens_per_s"] and r["requests_per_s"], r["row_id"]


def test_mlperf_nanoseconds_are_copied_by_moving_the_decimal_point() -> None:
    # closed/AMD/results/8xMI325X_2xEPYC_9575F_1/llama2-70b-99/Server/performance/run_1/mlperf_log_summary.txt
    # (MLPerf Inference v5.1): "Mean First Token latency (ns) : 883894465", "Mean Time to Output Token (ns) :
    # 148690311", "99.00 percentile time to output token (ns) : 198309854", "Completed tokens per second: 32027.57"
    row = next(r for r in holdout_table() if r["source_url"].endswith(
        "closed/AMD/results/8xMI325X_2xEPYC_9575F_1/llama2-70b-99/Server/performance/run_1/mlperf_log_summary.txt"))
    assert (row["ttft_mean_ms"], row["tpot_mean_ms"], row["tpot_p99_ms"], row["output_tokens_per_s"],
            row["request_rate"]) == ("883.894465", "148.690311", "198.309854", "32027.57", "109.52")
    assert row["gpu_family"] == "CDNA3" and row["engine"] == "vllm" and row["gpus"] == "8"


def _config(r: dict[str, str]) -> tuple[str, ...]:
    return (r["source_url"], r["tp"], r["ep"], r["isl"], r["osl"], r["concurrency"], r["request_rate"])


def test_no_row_repeats_serving_more_or_published_throughput() -> None:
    rows = holdout_table()
    more_urls = {r["source_url"] for r in _csv("serving_more.csv")}
    published = " ".join(r["source"] for r in _csv("published_throughput.csv"))
    published_urls = set(re.findall(r"https?://[^\s,)'\"]+", published))
    for r in rows:
        assert r["source_url"] not in more_urls, r["row_id"]
        assert r["source_url"] not in published_urls, r["row_id"]
    assert len({_config(r) for r in rows}) == len(rows)        # and no configuration twice in the holdout


def test_rows_not_replayed_say_why() -> None:
    reasons = dict(skipped())
    mlperf = {r["row_id"] for r in holdout_table() if r["source_kind"] == "mlperf"}
    assert mlperf <= set(reasons)
    assert all(reasons[i].startswith("MLPerf dataset") for i in mlperf)


def _stub_sources(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every row source of ``rigsize validate`` returns nothing; the holdout's records that it was called."""
    import rigsize.validation as validation
    from rigsize.validation import kv, local, serving_more, training_more

    for mod, names in ((validation, ("serving_rows", "published_rows", "training_rows", "whole_run_rows",
                                     "finetune_rows")),
                       (serving_more, ("more_rows",)), (training_more, ("more_training_rows",)),
                       (kv, ("vllm_startup_rows", "transformers_rows")), (local, ("local_rows",))):
        for name in names:
            monkeypatch.setattr(mod, name, lambda: [])
    calls: list[str] = []
    monkeypatch.setattr(serving_holdout, "holdout_rows", lambda: calls.append("holdout") or [])
    return calls


def test_source_all_never_opens_the_holdout(monkeypatch: pytest.MonkeyPatch) -> None:
    from rigsize.shells.cli import main

    calls = _stub_sources(monkeypatch)
    for source in ("all", "serving"):
        assert main(["validate", "--source", source, "--json"]) == 0
    assert calls == []
    assert main(["validate", "--source", "serving-holdout", "--json"]) == 0   # only by name (stubbed here)
    assert calls == ["holdout"]
