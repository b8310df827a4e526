"""Fit the training efficiencies on FIT rows only and print them as efficiency.toml rows.

- ``[training.default]`` (e_max, width_half, link): the Narayanan et al. 2021 Table 1 runs
  (A100, Megatron-LM; validation.TRAINING_FIT_PREFIX), borrowed wherever no class is fitted;
- ``[training.<family>.<framework>]`` (e_max, width_half): each class's own fit rows of
  data/validation/training_runs_more.toml (split = "fit"), nothing else;
- ``[training.fp8] gemm_ratio``: one value for every class, fitted jointly with them (the
  classes with both bf16 and fp8 fit rows pin it; elsewhere it trades with e_max);
- ``[training.moe] layer_overhead_s``: one value for every class, fitted jointly the same way
  (fit runs of one MoE model that differ in micro-batch size pin it; dense runs ignore it).

Score: median |log(predicted / measured)| of a class's fit rows; the joint fit minimizes the
sum over classes.  This script prints fit-split errors ONLY: reserved rows stay blind
(``rigsize validate --source training`` prints them).

Run: .venv/bin/python bench/fit_training.py
     .venv/bin/python bench/fit_training.py --class hopper.torchtitan   # one class alone (below)

``--class KEY``: refit one class's (e_max, width_half) with every other row as packaged, by the same
descent from a grid of starts (``CLASS_STARTS``; a class's error can have more than one basin), and
print its fit rows' predicted / measured.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import replace
from datetime import date

from rigsize.speed.training import BORROW_ORDER, training_efficiency
from rigsize.validation import log_error, training_rows
from rigsize.validation.training_more import more_training_rows, training_cases

# e_max's upper bound is a bound of the search, not a measured figure: 0.8 for the default
# row (without it the fit extrapolates single-GPU runs to >75% MFU), 0.95 per class.
DEFAULT_PARAMS = {"e_max": (0.2, 0.8), "width_half": (0.0, 20000.0), "link": (0.2, 0.95)}
CLASS_PARAMS = {"e_max": (0.2, 0.95), "width_half": (0.0, 20000.0)}
# speed.training.attention_seconds: the attention core's own fraction, fitted only for classes
# whose fit rows include LONG_RUNS runs at LONG_SEQ tokens or more (where the core is a large share
# of the step; below, it trades with e_max); its start and bounds are the search's
ATTENTION = ("attention", (0.05, 0.95))
ATTENTION_START = 0.3
LONG_SEQ = 16384
LONG_RUNS = 3
FP8_BOUNDS = (0.3, 1.0)
MOE_BOUNDS = (0.0, 0.05)      # seconds per MoE layer and micro-batch; the search's bounds
MOE_START = 1e-3
FACTORS = (0.3, 0.5, 0.7, 0.85, 0.93, 1.07, 1.15, 1.4, 2.0, 3.0)
MIN_FIT_ROWS = 3      # a class with fewer fit rows gets no row of its own (it borrows)
# --class: the starts of the one-class descent (search starts, not measured figures)
CLASS_STARTS = [(e, w) for e in (0.45, 0.55, 0.65, 0.75, 0.9) for w in (50.0, 150.0, 400.0, 1000.0)]


def _median_log(rows) -> float:
    return statistics.median(log_error(r.predicted, r.measured) for r in rows)


def _descend(eff, params, score):
    best = score(eff)
    for _ in range(6):
        for name, (lo, hi) in params.items():
            for factor in FACTORS:
                trial = replace(eff, **{name: min(hi, max(lo, getattr(eff, name) * factor))})
                s = score(trial)
                if s < best:
                    best, eff = s, trial
    return eff, best


def fit_default():
    eff, _ = training_efficiency("default")
    return _descend(eff, DEFAULT_PARAMS, lambda e: _median_log([r for r in training_rows(e) if r.split == "fit"]))


def class_rows() -> dict[str, tuple]:
    """``<family>.<framework>`` -> its fit cases (dense and MoE together)."""
    out: dict[str, list] = {}
    for c in training_cases():
        if c.split == "fit":
            out.setdefault(f"{c.gpu.architecture}.{c.workload.framework}", []).append(c)
    return {k: tuple(v) for k, v in out.items() if len(v) >= MIN_FIT_ROWS}


def _donor(key: str, params: dict) -> str | None:
    """The class whose attention fraction ``key`` borrows, as speed.training._attention does at run
    time: a PyTorch-native class without its own takes its family's first in BORROW_ORDER that has
    one; Megatron-LM never borrows."""
    family, framework = key.split(".")
    if ATTENTION[0] in params[key] or framework == "megatron":
        return None
    return next((f"{family}.{n}" for n in BORROW_ORDER if ATTENTION[0] in params.get(f"{family}.{n}", {})), None)


def fit_classes(default):
    classes = class_rows()
    effs = {k: default for k in classes}
    shared = {"fp8_ratio": 0.7, "moe_layer_s": MOE_START}
    bounds = {"fp8_ratio": FP8_BOUNDS, "moe_layer_s": MOE_BOUNDS}

    def class_score(key, eff):
        return _median_log(more_training_rows(classes[key], replace(eff, **shared)))

    params = {}
    for key, cases in classes.items():
        params[key] = dict(CLASS_PARAMS)
        if sum(c.workload.seq >= LONG_SEQ for c in cases) >= LONG_RUNS:
            params[key][ATTENTION[0]] = ATTENTION[1]
            effs[key] = replace(effs[key], attention=ATTENTION_START)
    # a class that may fit ``attention`` is also fitted without it (the rule before 2026-12-02);
    # it keeps the fraction only where that lowers its fit-split error
    plain = {k: default for k in classes if ATTENTION[0] in params[k]}
    for _ in range(4):
        # donors first: a class that keeps its own fraction, then the ones that borrow one
        for key in sorted(classes, key=lambda k: _donor(k, params) is not None):
            if key in plain:
                plain[key], without = _descend(plain[key], CLASS_PARAMS, lambda e, k=key: class_score(k, e))
            # a borrower takes its donor's current fraction; a class that fits its own keeps it; any other
            # (one whose donor gave its fraction up) has none
            donor, own = _donor(key, params), ATTENTION[0] in params[key]
            attention = effs[donor].attention if donor else (effs[key].attention if own else 0.0)
            effs[key] = replace(effs[key], attention=attention)
            effs[key], score = _descend(effs[key], params[key], lambda e, k=key: class_score(k, e))
            if key in plain and without <= score:
                effs[key] = replace(plain[key], attention=0.0)
                params[key] = dict(CLASS_PARAMS)
                del plain[key]
        for name, (lo, hi) in bounds.items():       # the values every class shares
            best = sum(class_score(k, effs[k]) for k in classes)
            for factor in FACTORS:
                old = shared[name]
                shared[name] = min(hi, max(lo, old * factor))
                s = sum(class_score(k, effs[k]) for k in classes)
                if s < best:
                    best = s
                else:
                    shared[name] = old
    donors = {k: d for k in classes if (d := _donor(k, params))}
    return effs, shared, {k: (len(classes[k]), class_score(k, effs[k])) for k in classes}, donors


def fit_one_class(key: str) -> int:
    """``--class KEY``: that class alone, from every start in CLASS_STARTS, the other rows as packaged."""
    cases = class_rows().get(key)
    if not cases:
        print(f"no class {key!r} with {MIN_FIT_ROWS}+ fit rows; classes: {', '.join(sorted(class_rows()))}",
              file=sys.stderr)
        return 2
    family, framework = key.split(".")
    base, _ = training_efficiency(family, framework)

    def score(eff):
        return _median_log(more_training_rows(cases, eff))

    fits = [_descend(replace(base, e_max=e, width_half=w), CLASS_PARAMS, score) for e, w in CLASS_STARTS]
    eff, best = min(fits, key=lambda f: f[1])
    print(f"[training.{key}]  # packaged row: median |log err| {score(base):.4f}")
    print(f"e_max = {eff.e_max:.4g}\nwidth_half = {eff.width_half:.4g}\n# fit: median |log err| {best:.4f}")
    for case, row in zip(cases, more_training_rows(cases, eff)):
        print(f"#   {case.case:60s} predicted / measured {row.predicted / row.measured:5.2f}")
    return 0


def main() -> int:
    if "--class" in sys.argv:
        at = sys.argv.index("--class") + 1
        return fit_one_class(sys.argv[at] if at < len(sys.argv) else "")
    today = date.today().isoformat()
    default, score = fit_default()
    print("[training.default]")
    for name in DEFAULT_PARAMS:
        print(f"{name} = {getattr(default, name):.4g}")
    print(f"# fit: 10 Narayanan et al. 2021 Table 1 runs, median |log err| {score:.3f}")
    effs, shared, scores, donors = fit_classes(default)
    for table, key, value in (("fp8", "gemm_ratio", shared["fp8_ratio"]),
                              ("moe", "layer_overhead_s", shared["moe_layer_s"])):
        print(f"\n[training.{table}]\n{key} = {value:.3g}")
        print(f'source = "fitted by bench/fit_training.py jointly with the [training.<family>.<framework>] rows on '
              f'their fit rows (data/validation/training_runs_more.toml, split = fit), {today}"')
        print(f'as_of = "{today}"')
    for key, eff in effs.items():
        n, s = scores[key]
        print(f"\n[training.{key}]")
        print(f"e_max = {eff.e_max:.4g}\nwidth_half = {eff.width_half:.4g}\nlink = {eff.link:.4g}\n"
              f"collective_latency_s = {eff.collective_latency_s:.4g}")
        if eff.attention and key not in donors:
            print(f"attention = {eff.attention:.4g}")
        elif key in donors:
            print(f"# attention borrowed from [training.{donors[key]}]")
        print(f'source = "fitted by bench/fit_training.py on the {n} fit rows of class {key} '
              f'(training_runs_more.toml, split = fit; link and latency from [training.default]): '
              f'median |log err| {s:.3f}, {today}"')
        print(f'as_of = "{today}"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
