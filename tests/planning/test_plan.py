"""The planner (issue 16): known answers, properties, and the pruned search against the
exhaustive one.  Known answers are the issue's, each a statement about real hardware
(heads, memory) checked through the plan, not numbers computed here."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import rigsize.planning.search as search_mod
from rigsize.planning.estimate import estimate
from rigsize.planning.search import REASONS, parse_have, search
from rigsize.shells.cli import cli

QWEN72_16_USERS = dict(task="inference", users=16, seq=8192)


def _first(result: dict) -> dict:
    assert result["recommendations"], result["rejected"]
    return result["recommendations"][0]


def test_qwen2_72b_bf16_needs_four_80gb_gpus_or_two_h200() -> None:
    h100 = search("qwen2-72b", gpu="H100", objective="fewest-gpus", **QWEN72_16_USERS)
    h200 = search("qwen2-72b", gpu="H200", objective="fewest-gpus", **QWEN72_16_USERS)
    assert _first(h100)["choices"]["gpus"] == 4          # 2 leave no room for the KV cache
    assert _first(h200)["choices"]["gpus"] == 2
    assert h100["rejected"]["out_of_memory"] > 0


def test_qwen2_72b_awq_fits_one_80gb_gpu_with_fp8_kv_and_needs_two_with_bf16_kv() -> None:
    fp8 = search("qwen2-72b", gpu="H100", weights="awq-int4", kv_dtype="fp8", objective="fewest-gpus",
                 **QWEN72_16_USERS)
    bf16 = search("qwen2-72b", gpu="H100", weights="awq-int4", kv_dtype="bf16", objective="fewest-gpus",
                  **QWEN72_16_USERS)
    assert _first(fp8)["choices"]["gpus"] == 1 and _first(bf16)["choices"]["gpus"] == 2


def test_llama_405b_bf16_needs_more_than_one_80gb_node_and_fits_eight_h200() -> None:
    h100 = search("llama-3.1-405b", gpu="H100", objective="fewest-gpus", task="inference", engine="vllm")
    h200 = search("llama-3.1-405b", gpu="H200", objective="fewest-gpus", task="inference", engine="vllm")
    assert _first(h100)["choices"]["gpus"] > 8
    assert _first(h200)["choices"]["gpus"] == 8


def test_a_7b_qlora_fits_a_24gb_geforce_card() -> None:
    r = search("llama-2-7b", task="qlora", gpu="RTX-4090", objective="fewest-gpus")
    assert _first(r)["choices"]["gpus"] == 1 and _first(r)["memory"]["fits"]


def test_no_recommended_tp_breaks_the_heads() -> None:
    """Qwen2-72B: 64 heads, 8 KV heads; a 6-GPU layout (tp 6 or 3) is never admitted."""
    r = search("qwen2-72b", gpu="H100", any_count=True, max_gpus=8, top=20, objective="fastest", engine="vllm",
               **QWEN72_16_USERS)
    for rec in r["recommendations"]:
        tp = rec["parallel"]["tp"]
        assert 64 % tp == 0 and (8 % tp == 0 or tp % 8 == 0)
    assert r["rejected"]["heads_not_divisible"] + r["rejected"]["kv_heads_not_divisible"] > 0


def test_every_recommendation_meets_its_goals() -> None:
    r = search("llama-3.1-8b", task="inference", users=8, gpu="H100,A100-80GB,L40S", tpot="20ms", ttft="300ms",
               top=10)
    for rec in r["recommendations"]:
        assert rec["performance"]["tpot_seconds"] <= 0.020 and rec["performance"]["ttft_seconds"] <= 0.300


def test_a_recommendation_is_what_estimate_says_for_its_choices() -> None:
    rec = _first(search("llama-3.1-8b", task="inference", users=8, gpu="H100,L40S"))
    c, lay = rec["choices"], rec["parallel"]
    again = estimate("llama-3.1-8b", task="inference", batch=8, gpu=c["gpu"], gpus=c["gpus"], tp=lay["tp"],
                     pp=lay["pp"], dp=lay["dp"], weights=c["weights"], kv_dtype=c["kv_dtype"], engine=c["engine"])
    assert again.performance.tpot_seconds == pytest.approx(rec["performance"]["tpot_seconds"])
    assert again.cost.usd_per_hour == pytest.approx(rec["cost"]["usd_per_hour"])


@pytest.mark.parametrize("objective", ["cheapest", "fewest-gpus", "cheapest-per-token", "fastest"])
def test_pruning_never_drops_the_exhaustive_winner(monkeypatch: pytest.MonkeyPatch, objective: str) -> None:
    args = dict(task="inference", users=8, gpu="H100,A100-80GB,L40S,A10G", allow_quant=True, objective=objective,
                max_gpus=8, top=1)
    pruned = _first(search("llama-3.1-8b", **args))
    monkeypatch.setattr(search_mod, "_first_key", lambda s: None)
    full = search("llama-3.1-8b", **args)
    best = _first(full)
    key = {"cheapest": lambda r: r["cost"]["usd_per_hour"] or float("inf"),
           "fewest-gpus": lambda r: r["choices"]["gpus"],
           "cheapest-per-token": lambda r: r["cost"]["usd_per_million_output_tokens"] or float("inf"),
           "fastest": lambda r: -r["performance"]["output_tokens_per_second"]}[objective]
    assert key(pruned) == pytest.approx(key(best)) and full["pruned"] == 0


@pytest.mark.parametrize("objective", ["fastest", "cheapest-per-token"])
def test_the_ceiling_counts_fp4_gemms_at_high_batch(monkeypatch: pytest.MonkeyPatch, objective: str) -> None:
    """At 2,048 users of short requests a Blackwell runs compute-bound, NVFP4 GEMMs at its FP4
    peak (about 4x bf16): a ceiling at the bf16 peak pruned the winner (GB200 nvfp4 on TensorRT-LLM,
    200k tokens/s, lost to a 167k one)."""
    args = dict(task="inference", users=2048, prompt=32, output=64, max_model_len=128, allow_quant=True,
                gpu="B200,GB200,MI300X", max_gpus=1, top=1, objective=objective)
    pruned = _first(search("llama-3.1-8b", **args))
    monkeypatch.setattr(search_mod, "_first_key", lambda s: None)
    best = _first(search("llama-3.1-8b", **args))
    key = (lambda r: r["performance"]["output_tokens_per_second"]) if objective == "fastest" else (
        lambda r: r["cost"]["usd_per_million_output_tokens"])
    assert key(pruned) == pytest.approx(key(best), rel=1e-6)


@pytest.mark.parametrize("preset", ["mixtral-8x7b", "qwen3-30b-a3b"])
def test_the_tokens_per_second_ceiling_holds_for_moe_at_batch_one(preset: str) -> None:
    """A decode step of one sequence reads only its top-k experts (Mixtral 8x7B: 2 of 8), so its
    tokens/s may exceed bandwidth / all the weights: on one H200 (4.8 TB/s) Mixtral in bf16 runs
    above 4.8e12 / 93.4e9 = 51 tokens/s.  The per-token and fastest objectives prune with the
    ceiling, which must hold for every plan the search evaluates."""
    s = _search_state(preset, task="inference", users=1, gpu="H200,H100,A100-80GB", max_gpus=8,
                      objective="fastest", top=50)
    ceiling = search_mod._tokens_per_second_ceiling(s)
    recs = search(preset, task="inference", users=1, gpu="H200,H100,A100-80GB", max_gpus=8, objective="fastest",
                  top=50)["recommendations"]
    assert len(recs) >= 10
    candidates = {(c.gpu, c.gpus, c.tp, c.pp, c.weights, c.engine): c for c in s.candidates()}
    for r in recs:
        c = candidates[(r["choices"]["gpu"], r["choices"]["gpus"], r["parallel"]["tp"], r["parallel"]["pp"],
                        r["choices"]["weights"], r["choices"]["engine"])]
        assert r["performance"]["output_tokens_per_second"] <= ceiling(c), r["choices"]


def test_owned_pruning_never_drops_the_exhaustive_winner(monkeypatch: pytest.MonkeyPatch) -> None:
    """--pricing on-prem ranks by the owned servers' $/h (price, power at the GPUs' TDP, ...),
    not by rent: the A30 has no rented instance in the catalog, so a search ordered by rent
    reached it last and stopped before it, recommending 2 x L4 at $0.80/h over 1 x A30 at
    $0.70/h (the exhaustive answer, and what one A30 in an owned server costs).  At the model's
    full 131,072-token context, given explicitly (else the plan shortens it and one L4 serves), under vLLM,
    which refuses to start where one such request does not fit (SGLang starts and caps a request's length at
    its pool: one L4 serves under SGLang)."""
    args = dict(task="inference", engine="vllm", users=4, gpu="H100,L4,A30", objective="cheapest", max_gpus=4, top=1,
                pricing="on-prem", server_price=20000, max_model_len=131072)
    pruned = search("qwen2.5-7b", **args)
    monkeypatch.setattr(search_mod, "_first_key", lambda s: None)
    full = search("qwen2.5-7b", **args)
    assert _first(full)["choices"]["gpu"] == "A30"        # no rented A30: the case the rent order missed
    assert _first(pruned)["choices"] == _first(full)["choices"]
    assert _first(pruned)["cost"]["usd_per_hour"] == pytest.approx(_first(full)["cost"]["usd_per_hour"])
    assert pruned["pruned"] > 0 and full["pruned"] == 0


def test_owned_training_pruning_gives_the_exhaustive_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run-cost bounds (cheap key, block floors, layout and trial floors) hold for owned
    servers too: each is built on the same owned $/h the run is ranked by."""
    args = dict(task="pretrain", gpu="H100,A100-80GB,A30", train_tokens=2e10, max_gpus=16, top=1,
                pricing="on-prem", server_price=150000)
    pruned = search("llama-3.1-8b", **args)
    monkeypatch.setattr(search_mod, "_first_key", lambda s: None)
    full = search("llama-3.1-8b", **args)
    assert _first(pruned)["choices"] == _first(full)["choices"]
    assert _first(pruned)["cost"]["usd_total"] == pytest.approx(_first(full)["cost"]["usd_total"])
    assert pruned["pruned"] > 0 and full["pruned"] == 0


def test_more_formats_gpus_or_budget_never_make_the_best_plan_worse() -> None:
    base = dict(task="inference", users=16, seq=4096, gpu="H100,A100-80GB,L40S")
    plain = _first(search("qwen2.5-32b", **base))["cost"]["usd_per_hour"]
    quant = _first(search("qwen2.5-32b", allow_quant=True, **base))["cost"]["usd_per_hour"]
    assert quant <= plain
    few = search("qwen2.5-32b", max_gpus=2, objective="fastest", **base)
    many = search("qwen2.5-32b", max_gpus=8, objective="fastest", **base)
    assert _first(many)["performance"]["output_tokens_per_second"] >= \
        _first(few)["performance"]["output_tokens_per_second"]


def test_a_budget_rejects_what_costs_more() -> None:
    r = search("llama-3.1-8b", task="inference", gpu="H100", budget_per_hour=10, top=5, objective="fastest")
    assert all(rec["cost"]["usd_per_hour"] <= 10 for rec in r["recommendations"])
    assert r["rejected"]["over_budget"] > 0


def test_dry_run_counts_without_evaluating() -> None:
    r = search("llama-3.1-8b", task="inference", gpu="H100", dry_run=True)
    assert r["candidates_considered"] > 0 and r["recommendations"] == []
    assert set(r["rejected"]) == set(REASONS)


def test_have_grammar() -> None:
    assert parse_have("4x RTX-4090") == [("RTX-4090", 4, None)]
    assert parse_have("2x8 H100, 4x A100-80GB") == [("H100-SXM-80GB", 16, 8), ("A100-SXM-80GB", 4, None)]
    r = search("llama-3.1-70b", task="inference", have="2x8 H100", objective="fastest")
    assert all(rec["choices"]["gpu"] == "H100-SXM-80GB" and rec["choices"]["gpus"] <= 16
               for rec in r["recommendations"])


def test_training_plan_meets_a_deadline() -> None:
    r = search("llama-3.1-8b", task="pretrain", gpu="H100", train_tokens=2e11, deadline_days=10, max_gpus=256)
    assert _first(r)["cost"]["days_with_allowance"] <= 10
    few = search("llama-3.1-8b", task="pretrain", gpu="H100", train_tokens=2e11, deadline_days=10, max_gpus=4)
    assert few["recommendations"] == [] and few["rejected"]["misses_deadline"] > 0


def test_plan_json_matches_its_schema() -> None:
    import jsonschema

    from rigsize.report import schema

    out = CliRunner().invoke(cli, ["plan", "llama-3.1-8b", "--task", "inference", "--gpu", "H100", "--json"])
    assert out.exit_code == 0, out.output
    jsonschema.validate(json.loads(out.output), schema("plan"))


# ---- the scenario overview and whole servers (issue 17) ---------------------------

@pytest.fixture(scope="module")
def overview() -> dict:
    return search("qwen2-72b")


def test_overview_answers_every_scenario(overview: dict) -> None:
    assert list(overview["scenarios"]) == ["low_latency", "high_throughput", "finetune", "lora", "qlora", "pretrain",
                                        "workstation"]
    low, high = overview["scenarios"]["low_latency"], overview["scenarios"]["high_throughput"]
    assert _first(low)["inputs"]["batch"] == 1 and _first(low)["inputs"]["output"] == 512
    assert _first(high)["inputs"]["batch"] == 64 and _first(high)["inputs"]["prompt"] == 2048
    pretrain = _first(overview["scenarios"]["pretrain"])
    assert pretrain["inputs"]["train_tokens"] == pytest.approx(20 * pretrain["model"]["params"])   # Chinchilla
    assert pretrain["cost"]["days_with_allowance"] <= 30
    for key in ("finetune", "lora", "qlora"):
        assert _first(overview["scenarios"][key])["cost"]["days_with_allowance"] <= 3


def test_the_low_latency_plan_is_the_lowest_latency_among_those_evaluated() -> None:
    """Best-first by a roofline lower bound never drops the exhaustive winner."""
    args = dict(task="inference", batch=1, prompt=1024, output=512, gpu="H100,A100-80GB,L40S",
                objective="lowest-latency", max_gpus=8, top=1, engine="vllm")
    best = _first(search("llama-3.1-8b", **args))
    perf = best["performance"]
    import rigsize.planning.search as mod

    saved = mod._first_key
    try:
        mod._first_key = lambda s: None
        exhaustive = _first(search("llama-3.1-8b", **args))
    finally:
        mod._first_key = saved
    other = exhaustive["performance"]
    assert perf["ttft_seconds"] + perf["tpot_seconds"] == pytest.approx(other["ttft_seconds"] + other["tpot_seconds"])


def test_a_recommendation_is_a_whole_server(overview: dict) -> None:
    rec = _first(overview["scenarios"]["pretrain"])
    srv = rec["server"]
    assert set(srv) >= {"cpu_cores", "cpu_class", "ram_bytes", "nvme_bytes", "nvme_write_bytes_per_second",
                        "shared_storage", "network", "inter_node_bytes_per_second_per_gpu", "power_watts_per_node",
                        "rules"}
    assert all({"rule", "source"} <= set(r) for r in srv["rules"].values())
    # the power per node is the cost block's own figure, split over the nodes
    nodes = rec["hardware"]["nodes"]
    assert srv["power_watts_per_node"] == pytest.approx(rec["cost"]["on_prem"]["power_watts"] / nodes)
    assert "parallel file system" in srv["shared_storage"].lower() or "lustre" in srv["shared_storage"].lower()
    assert any(x["name"] == "CUDA" for x in rec["software"])


def test_the_overview_prints_one_table() -> None:
    out = CliRunner(env={"COLUMNS": "200"}).invoke(cli, ["plan", "qwen2-72b"])
    assert out.exit_code == 0, out.output
    for label in ("low latency", "high throughput", "full fine-tuning", "LoRA", "QLoRA", "pre-training"):
        assert label in out.output


def test_progress_is_reported_while_candidates_are_evaluated() -> None:
    calls: list[tuple[int, int]] = []
    search("llama-3.1-8b", task="inference", gpu="H100,L40S", objective="fastest", progress=lambda d, t: calls.append((d, t)))
    assert calls and all(0 <= d < t for d, t in calls) and calls[0][0] == 0


def test_training_pruning_never_drops_the_exhaustive_winner(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run-cost bound (e_max ceiling of the speed model) is a true lower bound."""
    args = dict(task="pretrain", gpu="H100,A100-80GB", train_tokens=2e10, max_gpus=16, top=1)
    pruned = search("llama-3.1-8b", **args)
    monkeypatch.setattr(search_mod, "_first_key", lambda s: None)
    full = search("llama-3.1-8b", **args)
    assert _first(pruned)["cost"]["usd_total"] == pytest.approx(_first(full)["cost"]["usd_total"])
    assert pruned["pruned"] > 0 and full["pruned"] == 0


def test_training_fastest_pruning_never_drops_the_exhaustive_winner(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fastest key's ceiling (GPUs x peak x e_max / model FLOPs per token) is a true bound."""
    args = dict(task="pretrain", gpu="H100,A100-80GB", max_gpus=16, top=2, objective="fastest")
    pruned = search("llama-3.1-8b", **args)
    monkeypatch.setattr(search_mod, "_first_key", lambda s: None)
    full = search("llama-3.1-8b", **args)
    assert [r["performance"]["tokens_per_second"] for r in pruned["recommendations"]] == pytest.approx(
        [r["performance"]["tokens_per_second"] for r in full["recommendations"]])
    assert pruned["pruned"] > 0 and full["pruned"] == 0


# ---- the search's speed: best-first order and every lower bound, against the plain search ----

def _search_state(model: str, **options):
    from collections import Counter

    from rigsize.model.inputs import resolve_model
    from rigsize.planning.options import parse_options

    opts = parse_options(options, command="plan")
    if "users" in opts:
        opts["batch"] = opts["users"]
    task = opts["task"]
    return search_mod._Search(resolve_model(model), opts, task, search_mod._goals(opts, task),
                              opts.get("objective", "cheapest"), Counter())


@pytest.mark.parametrize("objective", ["cheapest", "fewest-gpus", "cheapest-per-token", "lowest-latency", "fastest"])
def test_best_first_order_is_the_sorted_candidate_list(objective: str) -> None:
    """The lazy best-first queue yields exactly ``sorted(candidates, key=_first_key)``
    (stable), and the places it reports are those of that list."""
    s = _search_state("llama-3.1-8b", task="inference", users=8, gpu="H100,A100-80GB,L40S", allow_quant=True,
                      max_gpus=16, objective=objective)
    key = search_mod._first_key(s)
    listed = list(s.candidates())
    expected = sorted(range(len(listed)), key=lambda i: key(listed[i]))
    got = list(search_mod._best_first(s, s.runs(), key, lambda: None))
    assert [c for c, _, _ in got] == [listed[i] for i in expected]
    assert [order[1] for _, order, _ in got] == expected
    assert len(got) == sum(sum(r.sizes) for r in s.runs()) == len(listed)


def test_training_best_first_order_is_the_sorted_candidate_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_mod, "_refine_key", lambda s: None)
    s = _search_state("llama-3.1-8b", task="pretrain", gpu="H100,A100-80GB", train_tokens=2e10, max_gpus=64)
    key = search_mod._first_key(s)
    listed = list(s.candidates())
    got = [c for c, _, _ in search_mod._best_first(s, s.runs(), key, lambda: None)]
    assert got == sorted(listed, key=key)


@pytest.mark.parametrize("objective", ["cheapest", "fewest-gpus"])
def test_the_block_floor_is_below_every_key_of_its_block(objective: str) -> None:
    """And the GPU floor below every block floor of that GPU."""
    for task, extra in (("inference", dict(users=8, allow_quant=True)), ("pretrain", dict(train_tokens=2e10))):
        s = _search_state("llama-3.1-8b", task=task, gpu="H100,A100-80GB,L40S", max_gpus=32, objective=objective,
                          **extra)
        key, (floor, gpu_floor) = search_mod._first_key(s), search_mod._block_floor(s)
        for run in s.runs():
            blocks = [run.block(j) for j in range(len(run.counts))]
            for b in blocks:
                assert all(floor(b) <= key(b.member(i)) for i in range(len(b))), b
            assert gpu_floor(run) <= min(floor(b) for b in blocks if len(b)), run.gpu


@pytest.fixture(scope="module")
def training_scored() -> tuple:
    """Every candidate of a small pre-training space, evaluated (no pruning), with the
    search state that scored them: the ground truth for the training bounds."""
    args = dict(task="pretrain", gpu="H100,A100-80GB,L40S", train_tokens=2e10, max_gpus=64, global_batch=96)
    s = _search_state("llama-3.1-8b", **args)
    scored = [(c, search_mod._evaluate(s, c)) for c in s.candidates()]
    return s, [(c, x) for c, x in scored if not isinstance(x, str)], [c for c, x in scored if isinstance(x, str)]


def test_the_training_floors_are_below_the_evaluated_cost(training_scored: tuple) -> None:
    """``_layout_floor`` and ``_trial_floor`` never exceed the run cost ``estimate``'s own
    evaluation gives the candidate; a candidate they rule out (inf) has no plan."""
    s, scored, failed = training_scored
    key = search_mod._first_key(s)
    layout_floor, trial_floor = search_mod._refine_key(s)
    assert scored and failed
    for c, x in scored:
        cheap = key(c)
        assert cheap <= x.usd_total * (1 + 1e-12)
        assert layout_floor(c, cheap, None) <= x.usd_total * (1 + 1e-12), c
        assert trial_floor(c, cheap, None) <= x.usd_total * (1 + 1e-12), c
    ruled_out = [c for c in failed if layout_floor(c, key(c), None) == float("inf")]
    assert ruled_out, "the global batch of 96 leaves counts no dp can split"


@pytest.mark.parametrize("top", [1, 3])
def test_refined_training_search_gives_the_exhaustive_answer(monkeypatch: pytest.MonkeyPatch, top: int) -> None:
    """The refined bounds (block floor, layout floor, trial floor) change which candidates
    are evaluated, never the recommendations: identical to the unrefined best-first search
    and to the exhaustive one, in order."""
    args = dict(task="pretrain", gpu="H100,A100-80GB,L40S", train_tokens=2e10, max_gpus=64, global_batch=96, top=top)
    refined = search("llama-3.1-8b", **args)
    with monkeypatch.context() as m:
        m.setattr(search_mod, "_refine_key", lambda s: None)
        m.setattr(search_mod, "_block_floor", lambda s: None)
        plain = search("llama-3.1-8b", **args)
        m.setattr(search_mod, "_first_key", lambda s: None)
        full = search("llama-3.1-8b", **args)
    assert refined["recommendations"] == plain["recommendations"] == full["recommendations"]
    assert refined["candidates_considered"] == full["candidates_considered"]
    assert refined["pruned"] >= plain["pruned"] > 0 == full["pruned"]


def test_inference_search_without_the_block_floor_gives_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    args = dict(task="inference", users=8, gpu="H100,A100-80GB,L40S,A10G", allow_quant=True, max_gpus=16, top=3)
    fast = search("llama-3.1-8b", **args)
    monkeypatch.setattr(search_mod, "_block_floor", lambda s: None)
    assert search("llama-3.1-8b", **args) == fast


@pytest.mark.parametrize("model, users, seq", [("llama-3.1-8b", 64, 8192), ("qwen2-72b", 32, 8192)])
def test_the_memory_floor_rejects_only_what_does_not_fit(model: str, users: int, seq: int) -> None:
    """A candidate the weights-and-KV floor (per replica, over tp x pp) calls out of memory
    is one ``estimate``'s evaluation says does not fit; and the floor does reject some."""
    s = _search_state(model, task="inference", users=users, seq=seq, gpu="H100,L40S,A10G,RTX-4090",
                      allow_quant=True, max_gpus=8, engine="vllm")
    gpus = {g.name: g for g, _, _ in s.gpus()}
    rejected = [c for c in s.candidates() if search_mod._lower_bound_reason(s, c, gpus[c.gpu]) == "out_of_memory"]
    assert rejected and any(c.dp > 1 for c in rejected)

    def floor(c: search_mod.Candidate) -> float:      # as _lower_bound_reason computes it, over usable memory
        sequences = -(-users // c.dp)
        need = search_mod.total_state_bytes(s, c.weights) + sequences * search_mod.kv_floor_bytes(s, c.kv_dtype)
        return need / (c.tp * c.pp) / gpus[c.gpu].usable_memory_bytes

    for c in sorted(rejected, key=floor)[:60]:        # the closest calls
        assert isinstance(search_mod._evaluate(s, c), str), c


@pytest.mark.parametrize("task", ["lora", "qlora"])
def test_adapter_training_pruning_gives_the_exhaustive_answer(monkeypatch: pytest.MonkeyPatch, task: str) -> None:
    """The run-cost bound counts LoRA's 4 N FLOPs per token (frozen weights: no weight
    gradients), not 6 N: with 6 N it exceeded the cost of a plan that tied the third, and
    the 8-GPU H100 run was pruned in favour of the slower 1-GPU run at the same price."""
    args = dict(task=task, train_tokens=1e9, seq=4096, top=3, gpu="H100,B200,L40S,A100-80GB", max_gpus=8)
    pruned = search("llama-3.1-8b", **args)
    monkeypatch.setattr(search_mod, "_first_key", lambda s: None)
    assert pruned["recommendations"] == search("llama-3.1-8b", **args)["recommendations"]


def test_workstation_scenario_names_the_smallest_setup_that_holds_the_model() -> None:
    """A public report runs Llama 3 70B Q4_K_M on 2 x RTX 3090 at 16.57 tokens/s
    (data/validation/local_reports.toml): the overview's workstation answer for a 70B-class
    model is that setup, every layer on the GPUs (one 24 or 32 GB card holds too little)."""
    from rigsize.model.inputs import resolve_model
    from rigsize.planning.search import workstation

    w = workstation(resolve_model("llama-3.1-70b"), {})
    rec = w["recommendations"][0]
    assert rec["choices"]["gpu"] == "RTX-3090" and rec["choices"]["gpus"] == 2
    assert rec["inputs"].get("gpu_layers") is None
    assert rec["performance"]["output_tokens_per_second"] == pytest.approx(16.57, rel=0.25)
    small = workstation(resolve_model("llama-3.1-8b"), {})["recommendations"][0]
    assert small["choices"]["gpus"] == 1 and small["choices"]["gpu"] == "RTX-4090"
    # GPT-2's 1,024-token context cannot hold the scenario's 1,024 + 512: said, as other scenarios do
    assert "max_position_embeddings" in workstation(resolve_model("gpt2"), {})["error"]


def test_have_without_model_lists_what_fits() -> None:
    """`rigsize plan --have "2x RTX-3090"`: a public report runs Llama 3 70B Q4_K_M there at
    16.57 tokens/s (data/validation/local_reports.toml); Llama 3.1 405B (about 230 GB even at
    Q4) fits in no format on 48 GB."""
    from rigsize.planning.search import what_fits_on

    r = what_fits_on(have="2x RTX-3090")
    rows = {row["model"]: row for row in r["models"]}
    assert rows["llama-3-70b"]["weights"] == "q4_k_m"
    assert rows["llama-3-70b"]["output_tokens_per_second"] == pytest.approx(16.57, rel=0.25)
    assert "llama-3.1-405b" in r["does_not_fit"]
    assert [row["params"] for row in r["models"]] == sorted((row["params"] for row in r["models"]), reverse=True)
    from rigsize.errors import RigsizeError

    with pytest.raises(RigsizeError, match="--have"):
        what_fits_on()


def test_have_without_model_finds_a_layout_the_heads_admit() -> None:
    """8 x H100 under vLLM: Qwen2-7B's 28 heads admit no tp=8, but one replica per GPU fits
    (a wrong tp is not "does not fit"); a zero count is refused in one line."""
    from rigsize.errors import RigsizeError
    from rigsize.planning.search import what_fits_on

    r = what_fits_on(have="8x H100", engine="vllm")
    assert "qwen2-7b" in {row["model"] for row in r["models"]} and not r["does_not_fit"]
    with pytest.raises(RigsizeError, match="counts start at 1"):
        what_fits_on(have="0x RTX-4090")
    with pytest.raises(RigsizeError, match="not a GGUF type"):
        what_fits_on(have="1x RTX-4090", weights="fp8")


def test_an_engine_version_pins_vllm() -> None:
    """--engine-version names a vLLM version (memory.runtime sizes by it; SGLang and TensorRT-LLM
    refuse one), so a plan given one and no --engine searches vLLM only, instead of ranking an
    SGLang plan first and then failing on the version."""
    r = search("qwen2.5-7b", task="inference", gpu="H100,L40S", engine_version="0.10.2", top=3)
    assert r["recommendations"] and {x["choices"]["engine"] for x in r["recommendations"]} == {"vllm"}
    assert all(x["assumptions"].get("engine_version", x["inputs"].get("engine_version")) == "0.10.2"
               for x in r["recommendations"])


def test_given_pp_and_dp_pin_the_serving_layout() -> None:
    """--pp and --dp pin an inference plan's layout as --tp does (only tp was filtered: --dp 2 on 2 GPUs
    also returned tp=2 and pp=2 plans, which launch then wrote); all three given may ask for a mixed one."""
    for given, shape in ((dict(dp=2), (1, 1, 2)), (dict(pp=2), (1, 2, 1)), (dict(tp=2), (2, 1, 1))):
        r = search("qwen2.5-7b", task="inference", engine="vllm", gpu="H100", gpus=2, top=3, **given)
        assert r["recommendations"]
        assert {(x["parallel"]["tp"], x["parallel"]["pp"], x["parallel"]["dp"]) for x in r["recommendations"]} == {shape}
    mixed = search("qwen2.5-72b", task="inference", engine="vllm", gpu="H100", gpus=8, tp=2, pp=2, dp=2, top=3)
    assert [(x["parallel"]["tp"], x["parallel"]["pp"], x["parallel"]["dp"]) for x in mixed["recommendations"]] == \
        [(2, 2, 2)] * len(mixed["recommendations"]) and mixed["recommendations"]


def test_no_engine_is_recommended_that_cannot_start_the_model() -> None:
    """SGLang's registry (every pinned version, data/launch/sglang-*-architectures.txt, read from the wheels)
    has no JambaForCausalLM, so SGLang is not searched for Jamba, and the plan's first recommendation
    launches; Qwen2 stays open to every engine."""
    from rigsize.launch import launch
    from rigsize.launch.plan import select

    jamba = search("jamba-1.5-mini", task="inference", gpu="H100", top=5)
    assert jamba["recommendations"] and "sglang" not in {r["choices"]["engine"] for r in jamba["recommendations"]}
    assert launch(select(jamba)).commands
    qwen = search("qwen2-7b", task="inference", gpu="H100", top=10)
    assert {"vllm", "sglang"} <= {r["choices"]["engine"] for r in qwen["recommendations"]}


def test_the_planners_registry_is_each_engines_default_launch_version() -> None:
    """The planner reads the newest pinned architecture list without importing the launch package; that list
    must be the one the launch emitters' default version checks against."""
    from rigsize.launch import sglang, vllm
    from rigsize.launch.architectures import known_architectures

    for engine, module in (("vllm", vllm), ("sglang", sglang)):
        assert search_mod._newest_registry(engine) == known_architectures(engine, module.VERSION)
        assert len(search_mod._newest_registry(engine)) > 100


# ---- training ranks by what its tokens cost, with or without a run (review) ----------

LORA_70B = dict(task="lora", gpu="A100-SXM-80GB,H100-NVL-94GB", top=3)


def _per_million_by_hand(rec: dict) -> float:
    """$ per million trained tokens from the plan's printed $/h and tokens/s."""
    return rec["cost"]["usd_per_hour"] / (rec["performance"]["tokens_per_second"] * 3600 / 1e6)


def test_training_without_train_tokens_ranks_by_cost_per_trained_token() -> None:
    """The review's case: ranked by $/h, 4 x A100-SXM ($11.78/h, 2,045 tokens/s: 11.78 /
    (2,045 x 3600 / 1e6) = $1.60 per million tokens) came first, ahead of 2 x H100-NVL
    ($13.96/h, 2,738 tokens/s: $1.42), which trains the same tokens ~11% cheaper.  Those
    speeds were the review's; the test checks the order against each plan's own figures."""
    recs = search("llama-3.1-70b", **LORA_70B)["recommendations"]
    assert len(recs) == 3
    by_hand = [_per_million_by_hand(r) for r in recs]
    assert all(a <= b * (1 + 1e-9) for a, b in zip(by_hand, by_hand[1:]))     # equal to rounding: a tie
    for r, v in zip(recs, by_hand):
        assert r["cost"]["usd_per_million_train_tokens"] == pytest.approx(v, rel=1e-9)
        assert f"${v:,.2f} per million trained tokens" in r["why"]
    hourly = [r["cost"]["usd_per_hour"] for r in recs]
    assert hourly != sorted(hourly), "no longer the review's case: $/h and $/token no longer disagree here"


def test_tied_costs_rank_by_speed_whatever_the_cost_objective() -> None:
    """LoRA 70B scales linearly over 8-64 A100s (data-parallel rings at the node's NICs), so every
    count costs the same per token to rounding: the tie goes to the faster plan under both cost
    objectives, with or without --train-tokens, never to 1e-16 float noise."""
    runs = [search("llama-3.1-70b", **LORA_70B, objective=o, **extra)["recommendations"]
            for o in ("cheapest", "cheapest-per-token") for extra in ({}, {"train_tokens": 1e9})]
    speeds = [[r["performance"]["tokens_per_second"] for r in recs] for recs in runs]
    assert all(s == sorted(s, reverse=True) for s in speeds), speeds
    assert all([r["choices"] for r in recs] == [r["choices"] for r in runs[0]] for recs in runs)


def test_training_with_train_tokens_ranks_alike_and_totals_follow_the_per_token_cost() -> None:
    """With --train-tokens the run's $ ranks the plans: $ per million tokens x 1,000 million
    tokens / 0.90 (Llama 3's >90% effective training time, data/ownership.toml), so the
    order is the per-token order of the search without a run."""
    per_token = search("llama-3.1-70b", **LORA_70B)["recommendations"]
    run = search("llama-3.1-70b", **LORA_70B, train_tokens=1e9)["recommendations"]
    assert [r["choices"] for r in run] == [r["choices"] for r in per_token]
    for r in run:
        assert r["cost"]["usd_total"] == pytest.approx(_per_million_by_hand(r) * 1e3 / 0.90, rel=1e-9)


def test_training_plan_table_prints_the_per_token_cost() -> None:
    """The cost column says what training is ranked by: $/h and $ per million trained tokens."""
    from rich.console import Console

    from rigsize.shells.render import print_plan

    result = search("llama-3.1-70b", task="lora", gpu="H100-NVL-94GB", top=1)
    rec = result["recommendations"][0]
    console = Console(record=True, width=250)
    print_plan(result, "en", console)
    text = console.export_text()
    assert f"${rec['cost']['usd_per_hour']:,.2f}/h, ${_per_million_by_hand(rec):,.2f}/M train tok" in text


def test_overview_fine_tuning_scenarios_cost_the_run_at_the_per_token_basis(overview: dict) -> None:
    """The overview's fine-tuning scenarios train 1B tokens (SCENARIOS), so they rank by the
    run's $, which is the per-token cost x tokens / allowance: the basis plan uses without a run."""
    for key in ("finetune", "lora", "qlora"):
        rec = _first(overview["scenarios"][key])
        if rec["cost"]["usd_per_hour"] is not None:
            assert rec["cost"]["usd_total"] == pytest.approx(_per_million_by_hand(rec) * 1e3 / 0.90, rel=1e-9)


def test_a_plan_refused_for_context_says_so_and_launch_names_it() -> None:
    # Qwen2-72B in bf16 on 2 x H100 (80 GB): the 145 GB of weights fit over tp 2, but one request of
    # its full 131,072-token context needs 131,072 x 327,680 B = 40 GiB of KV, more than is left
    import rigsize
    from rigsize.errors import InputError
    from rigsize.launch.plan import select

    # asked for the full context explicitly: the plan keeps it, and says why nothing fits
    p = rigsize.plan("qwen2-72b", task="inference", gpus=2, gpu="H100-SXM-80GB", max_model_len=131072)
    assert p["recommendations"] == [] and p["rejected"]["context_too_long"] > 0
    with pytest.raises(InputError, match="context_too_long .*shorter --max-model-len"):
        select(p)
    # not asked: the plan sets --max-model-len to the longest one request that fits, as a deployment
    # must (vLLM refuses to start otherwise), and says so; estimate with the plan's inputs fits
    capped = rigsize.plan("qwen2-72b", task="inference", gpus=2, gpu="H100-SXM-80GB")
    rec = capped["recommendations"][0]
    mml = rec["inputs"]["max_model_len"]
    assert 1024 + 512 <= mml < 131072 and rec["memory"]["max_context_single"] == mml
    assert "set by the plan" in rec["why"]
    assert rigsize.estimate("qwen2-72b", **{k: v for k, v in rec["inputs"].items() if k != "model"}).memory.fits


def test_launch_header_names_the_planned_gpu(tmp_path) -> None:
    from click.testing import CliRunner

    from rigsize.shells.cli import cli

    out = CliRunner().invoke(cli, ["launch", "qwen2-72b", "--task", "inference", "--gpus", "2", "--engine", "vllm",
                                   "--gpu", "H200-SXM-141GB", "--out-dir", str(tmp_path / "l")])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0].startswith("# vllm ") and " on 2 x H200-SXM-141GB," in out.output.splitlines()[0]


def test_the_have_examples_resolve() -> None:
    """The examples parse_have documents are names the catalog resolves ('A100' alone is ambiguous)."""
    from rigsize.planning.search import parse_have

    assert parse_have("2x H100, 4x A100-80GB") == [("H100-SXM-80GB", 2, None), ("A100-SXM-80GB", 4, None)]
    assert parse_have("2x8 H100") == [("H100-SXM-80GB", 16, 8)]
