"""rigsize plan --engine llamacpp --have ... against what public reports say ran on that hardware
(data/validation/local_reports.toml: model, format, context, tokens/s; nobody here measured them)."""

import statistics

from rigsize.validation.local import planned_tg, report_checks


def test_every_reported_setup_is_planned_to_fit():
    checks = report_checks()
    assert checks
    missing = [rep["id"] for rep, rec in checks if rec is None]
    assert not missing, missing


def test_planned_generation_speed_against_the_reports():
    errors = []
    for rep, rec in report_checks():
        if rec is not None and isinstance(rep.get("tg_tokens_per_s"), (int, float)):
            tg = planned_tg(rep, rec)
            if tg is not None:
                errors.append(abs(tg / rep["tg_tokens_per_s"] - 1))
    assert len(errors) >= 8
    assert statistics.median(errors) <= 0.15      # issue 19's generation target


def test_mixed_gpus_are_planned_as_one_layer_split():
    from rigsize.planning.search import search

    plan = search("llama-3-70b", task="inference", engine="llamacpp", have="1x RTX-4090, 1x RTX-3090",
                  weights="q4_k_m", max_model_len=8192)
    rec = plan["recommendations"][0]
    d = rec["memory"]["details"]
    assert d["gpu0/weights"] > 0 and d["gpu1/weights"] > 0       # layers on both cards
    assert rec["inputs"]["gpu"] == "RTX-4090,RTX-3090"
