"""Fit the inference efficiency assumptions on the `fit` split of the serving data.

Run: .venv/bin/python bench/fit_inference.py [--rows N]
Fits, per engine (vllm, sglang, trtllm) and GPU family (hopper, blackwell), by
coordinate search: first the achievable fractions of peak compute and bandwidth, the per-call
collective latency and per-step/per-layer overheads (the collectives' bandwidth fraction is
NCCL's published ring figure, ``NCCL_RING_LINK``, not fitted) on the median absolute log error of TPOT;
then the prefill attention efficiency, prefill GEMM efficiency and per-request TTFT
overhead on the sum of both errors (prefill chunks ride in decode steps); on the `fit`
split of that engine and family only (bench/split_serving.py).  Prints the fitted rows
for data/efficiency.toml and their errors on the fit split.  It never reads reserved
rows: their errors are printed by `rigsize validate` alone.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from dataclasses import replace

from rigsize.hardware.gpus import resolve_gpu
from rigsize.speed.roofline import efficiency
from rigsize.validation import log_error, predict_serving, serving_cases
from rigsize.validation.serving_more import MoreCase, more_cases, predict_more

PARAMS = {  # name: (lower, upper)
    "compute": (0.2, 0.95), "memory": (0.3, 0.98), "attention_compute": (0.1, 0.9),
    "step_overhead_s": (0.0, 0.02), "ttft_overhead_s": (0.0, 0.5), "collective_latency_s": (0.0, 1e-4),
    "layer_overhead_s": (0.0, 0.0005), "moe_layer_overhead_s": (0.0, 0.001), "prefill_compute": (0.2, 0.95),
    "nvfp4_memory": (0.2, 0.98), "roofline_p": (1.0, 16.0),
}


def score(cases, eff) -> tuple[float, float]:
    """(TTFT, decode) median |log error| on ``cases``: AIConfigurator rows (TTFT, TPOT) or
    serving_more rows, whose decode-side figure is TPOT where printed, else throughput
    or batch latency (both decode-dominated in those runs); TTFT 0 where none is printed."""
    tt, dec = [], []
    for c in cases:
        if isinstance(c, MoreCase):
            p = predict_more(c, eff)
            got = {"ttft_s": p.ttft_seconds, "tpot_s": p.tpot_seconds, "output_tokens_per_s": p.output_tokens_per_second,
                   "latency_s": p.e2e_seconds}
            if "ttft_s" in c.measured:
                tt.append(log_error(got["ttft_s"], c.measured["ttft_s"]))
            metric = next(m for m in ("tpot_s", "output_tokens_per_s", "latency_s") if m in c.measured)
            dec.append(log_error(got[metric], c.measured[metric]))
        else:
            p = predict_serving(c, eff)
            tt.append(log_error(p.ttft_seconds, c.ttft_s))
            dec.append(log_error(p.tpot_seconds, c.tpot_s))
    return (statistics.median(tt) if tt else 0.0), statistics.median(dec)


# Two stages, so that queueing in measured TTFTs cannot drag the hardware efficiencies
# to unphysical values: decode-side parameters on TPOT alone, then the prefill-side
# ones on TTFT with the former fixed.
DECODE = ("compute", "memory", "step_overhead_s", "collective_latency_s", "layer_overhead_s", "moe_layer_overhead_s",
          "nvfp4_memory", "roofline_p")

# The bandwidth side of a collective is not fitted: large all-reduces reach NCCL's ring bus bandwidth,
# 370 GB/s of NVLink 4's 450 GB/s line rate per direction ("with the protocol overhead (~20%) NCCL can get
# an effective NVLink bandwidth of 370GB/s", S. Jeaugey, NVIDIA, nccl-tests issue #212, 2024-05-06).  Decode's
# all-reduces are a few kB, where the per-call latency dominates: that latency is what TPOT fits.  (Fitting the
# bandwidth fraction on TPOT alone gave 0.21-0.34, which then made long prompts' all-reduces at tp 8 cost as
# much as their GEMMs.)
# The figure is NVLink 4's ring bandwidth (NCCL's default 8-GPU all-reduce uses NVLink SHARP instead, busbw about
# 480 GB/s per the same comment: not modelled).  NVLink 3 and 5 take their own published ring figures: A100 "should
# reach 230 GB/s" of 12 links x 25 GB/s = 300 GB/s (S. Jeaugey, nccl-tests issue #149, 2023-07-05); 8x B300 busbw
# 695 GB/s with NVLS off, of NVLink 5's 900 GB/s (a user's measurement, NVIDIA/nccl issue #2140, 2026-04-28, NCCL
# 2.30.4, open and unanswered; B200 and
# GB200 share NVLink 5's 900 GB/s).  AMD's Infinity Fabric (cdna3) keeps its row's link value.
NCCL_RING_LINK = {"ampere": round(230 / 300, 4), "hopper": round(370 / 450, 4), "blackwell": round(695 / 900, 4)}
PREFILL = ("prefill_compute", "attention_compute", "ttft_overhead_s")


def fit(cases, eff, rounds: int = 3, stages: tuple[str, ...] = ("decode", "prefill")):
    if eff.prefill_compute == 0:   # start prefill GEMMs at a typical large-GEMM fraction
        eff = replace(eff, prefill_compute=0.6)
    decode = DECODE
    if "decode" in stages:
        if eff.roofline_p == 0:     # start the p-norm between the sum (1) and the maximum (16)
            eff = replace(eff, roofline_p=4.0)
        if any(c.weights == "nvfp4" for c in cases):
            if eff.nvfp4_memory == 0:   # start NVFP4 weight streaming at the common fraction
                eff = replace(eff, nvfp4_memory=eff.memory)
        else:                       # no NVFP4 rows: nothing to fit it on, and it stays 0 (the common fraction)
            decode = tuple(n for n in DECODE if n != "nvfp4_memory")
        eff, best = _fit(cases, eff, decode, lambda s: s[1], rounds)
        # the hard maximum (p = 0) is a model of its own, outside the search's range: kept where it scores better
        hard = replace(eff, roofline_p=0.0)
        if score(cases, hard)[1] < best:
            eff = hard
    if not any(isinstance(c, MoreCase) and "ttft_s" in c.measured or not isinstance(c, MoreCase) for c in cases):
        return eff, score(cases, eff)[1]       # no TTFT printed: the prefill side stays as it started
    # prefill tokens ride in decode steps too, so the second stage watches both metrics
    return _fit(cases, eff, PREFILL, lambda s: s[0] + s[1], rounds)


def _fit(cases, eff, names, pick, rounds):
    best = pick(score(cases, eff))
    for _ in range(rounds):
        for name in names:
            lo, hi = PARAMS[name]
            for factor in (0.5, 0.7, 0.85, 0.93, 1.07, 1.15, 1.4, 2.0):
                value = getattr(eff, name) * factor if getattr(eff, name) else (hi - lo) * 0.1 * factor
                value = min(hi, max(lo, value))
                trial = replace(eff, **{name: value})
                s = pick(score(cases, trial))
                if s < best:
                    best, eff = s, trial
    return eff, best


def fit_split(cases, engine: str, family: str) -> list:
    """The rows a fit of ``engine`` on ``family`` may read: its class's ``fit`` split only."""
    return [c for c in cases if c.split == "fit" and c.cls.split("|")[:2] == [engine, family]]


FAMILY_GPU = {"hopper": "H100", "blackwell": "B200", "ampere": "A100-SXM-80GB", "ada": "L40S", "cdna3": "MI300X"}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100, help="fit rows sampled per engine and family (speed)")
    ap.add_argument("--engine", action="append", help="engines to fit (default: all three)")
    ap.add_argument("--family", action="append", help="GPU families to fit (default: hopper, blackwell)")
    ap.add_argument("--prefill-only", action="store_true", help="keep the decode-side values of efficiency.toml")
    ap.add_argument("--start", default=None, help="family whose current row is the starting point (default: its own)")
    args = ap.parse_args()
    cases = serving_cases() + more_cases()
    for family in args.family or ("hopper", "blackwell"):
        for engine in args.engine or ("vllm", "sglang", "trtllm"):
            random.seed(0)
            fit_rows = fit_split(cases, engine, family)
            if not fit_rows:
                print(f"# {engine} on {family}: no fit rows")
                continue
            sample = random.sample(fit_rows, min(args.rows, len(fit_rows)))
            eff, _ = efficiency("inference", resolve_gpu(FAMILY_GPU[args.start or family]), engine=engine)
            if family in NCCL_RING_LINK:
                eff = replace(eff, link=NCCL_RING_LINK[family])
            eff, _ = fit(sample, eff, stages=("prefill",) if args.prefill_only else ("decode", "prefill"))
            fit_err = score(fit_rows, eff)      # fit rows only: reserved rows are for `rigsize validate`
            gpus = sorted({c.gpu for c in fit_rows})
            files = sorted({"serving_more.csv" if isinstance(c, MoreCase) else "serving_silicon_sample.csv"
                            for c in fit_rows})
            print(f"[inference.{family}.{engine}]")
            for name in PARAMS:
                if name != "nvfp4_memory" or eff.nvfp4_memory:
                    print(f"{name} = {getattr(eff, name):.4g}")
            print(f"link = {eff.link:.4g}")
            print(f'source = "fitted by bench/fit_inference.py on the fit split of {" and ".join(files)}: '
                  f'{len(fit_rows)} {engine} rows on {", ".join(gpus)} (sampled {len(sample)}); fit median |log err| '
                  f'TTFT {fit_err[0]:.3f}, decode {fit_err[1]:.3f}"')
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
