"""Fit the local-inference efficiencies (data/efficiency.toml [local.*]) on the FIT rows only.

    python tools/fit_local_efficiency.py            # print the rows
    python tools/fit_local_efficiency.py --write    # and replace the [local.*] section

For every device family (rigsize.speed.local.device_family) with fit rows in
data/validation/llamacpp_bench.toml (``split = "fit"``; reserved rows are never read here):

* ``memory`` and ``layer_overhead_s``: the time per generated token is t_bw / memory + n_layer x
  layer_overhead_s (t_bw: the bytes read at 100% of the device's bandwidth); both are chosen on a grid
  to minimise the mean |log error| of the fit runs' measured tg time per token;
* ``compute`` = the same for pp tokens/s against the dense fp16 peak (for the CPU family, ``cpu``: the
  catalog CPU's FP32 peak; its row's cpu_memory / cpu_compute are then its own fitted fractions);
  for Vulkan also per GPU vendor with 3+ fit runs (``[local.vulkan.<vendor>]``, the median of that vendor's
  runs; rigsize.speed.local.VENDOR_ROWS).

Families without fit rows take ``[local.default]`` (the median of the GPU families' values; the CPU
family is left out of it).
"""

from __future__ import annotations

import argparse
import datetime
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EFFICIENCY = ROOT / "src" / "rigsize" / "data" / "efficiency.toml"
BEGIN, END = "# --- local inference (tools/fit_local_efficiency.py) ---", "# --- end local inference ---"


def fit_runs() -> list[dict]:
    """The fit rows and nothing else."""
    from rigsize.validation.local import bench_runs

    return [r for r in bench_runs() if r.get("split") == "fit"]


# a family's per-MoE-layer overhead is fitted only where this many of its tg fit runs are of MoE models
MIN_MOE_TG = 5


def _fit_decode(points: list[tuple[float, int, int, float]]) -> tuple[float, float, float]:
    """(memory, layer_overhead_s, moe_layer_overhead_s) minimising the mean |log error| of the time per
    token t = t_bw / memory + n_layer x layer_overhead_s + n_moe x moe_layer_overhead_s over (t_bw at 100%
    bandwidth, n_layer, n_moe MoE layers, measured t).  A grid: memory 0.30-1.00 by 0.0025, layer_overhead_s
    0-500 us by 1 us, moe_layer_overhead_s 0-300 us by 5 us where MIN_MOE_TG points are of MoE models (else
    0); with one point, the overheads are 0."""
    import numpy as np

    t_bw = np.array([p[0] for p in points])[:, None, None]
    layers = np.array([p[1] for p in points], dtype=float)[:, None, None]
    moe = np.array([p[2] for p in points], dtype=float)[:, None, None]
    measured = np.array([p[3] for p in points])[:, None, None]
    mem = np.arange(0.30, 1.0001, 0.0025)[None, :, None]
    over = (np.arange(0, 501) * 1e-6)[None, None, :] if len(points) > 1 else np.zeros((1, 1, 1))
    moe_grid = np.arange(0, 301, 5) * 1e-6 if sum(p[2] > 0 for p in points) >= MIN_MOE_TG else np.zeros(1)
    best = None
    for m in moe_grid:
        err = np.abs(np.log((t_bw / mem + layers * over + moe * m) / measured)).mean(axis=0)
        i, j = np.unravel_index(np.argmin(err), err.shape)
        if best is None or err[i, j] < best[0]:
            best = (float(err[i, j]), float(mem[0, i, 0]), float(over[0, 0, j]), float(m))
    return best[1], best[2], best[3]


def _fit_cpu_prompt(points: list[tuple[float, float, float]]) -> tuple[float, float, int]:
    """(cpu_compute, cpu_compute_vec_dot, rows that constrain the latter) minimising the mean |log error|
    of the prompt's time t = t_tiled / cpu_compute + t_rowwise / cpu_compute_vec_dot over (t_tiled,
    t_rowwise at 100% of the FP32 peak, measured t).  A grid of 0.05-1.50 by 0.0025 on both (--efficiency's cap; int8 dot
    products are not FP32 FLOPs: the fraction of the FP32 peak may pass 1).  The vec_dot fraction is
    constrained only by rows whose prompt time is mostly (> 50%) in per-row types; with none it is set
    to cpu_compute."""
    import numpy as np

    grid = np.arange(0.05, 1.5001, 0.0025)
    tiled = np.array([p[0] for p in points])[:, None, None]
    rowwise = np.array([p[1] for p in points])[:, None, None]
    measured = np.array([p[2] for p in points])[:, None, None]
    constraining = sum(1 for p in points if p[1] > p[0])
    if not constraining:
        err = np.abs(np.log((tiled[:, :, 0] / grid[None, :] + rowwise[:, :, 0] / grid[None, :]) / measured[:, :, 0]))
        a = float(grid[int(np.argmin(err.mean(axis=0)))])
        return round(a, 4), round(a, 4), 0
    err = np.abs(np.log((tiled / grid[None, :, None] + rowwise / grid[None, None, :]) / measured)).mean(axis=0)
    i, j = np.unravel_index(np.argmin(err), err.shape)
    return round(float(grid[i]), 4), round(float(grid[j]), 4), constraining


# backends whose prompt fraction is also fitted per GPU vendor (rigsize.speed.local.VENDOR_ROWS: Vulkan's
# matrix kernels differ by vendor), and the fit runs a vendor needs for a row of its own
VENDOR_FAMILIES = ("vulkan",)
MIN_VENDOR_PP = 3


def fit(runs: list[dict]) -> dict[str, dict]:
    """Per family: memory fraction and per-layer overhead (decode), compute fraction (prompt), and the
    counts they rest on."""
    from dataclasses import replace

    from rigsize.speed.local import LocalEfficiency
    from rigsize.validation.local import predict_run, run_engine, run_family, run_job

    ideal = LocalEfficiency(memory=1.0, compute=1.0, cpu_memory=1.0, cpu_compute=1.0, cpu_compute_vec_dot=1.0, pcie=1.0)
    data: dict[str, dict[str, list]] = {}
    for run in runs:
        if run.get("split") != "fit":
            continue                       # never fitted on reserved rows, whoever calls this
        if run_engine(run) != "llamacpp":
            continue                       # mlx-lm rows check the Metal row; no MLX row is fitted
        family = run_family(run)
        pred = predict_run(run, ideal)
        if family is None or not pred:
            continue
        slot = data.setdefault(family, {"tg": [], "pp": [], "pp_cpu": []})
        if "tg_tokens_per_s" in pred:
            arch = run_job(run).spec.arch
            slot["tg"].append((1.0 / pred["tg_tokens_per_s"], arch.num_hidden_layers, len(arch.moe_layers),
                               1.0 / float(run["tg_tokens_per_s"])))
        if "pp_tokens_per_s" in pred:
            slot["pp"].append(float(run["pp_tokens_per_s"]) / pred["pp_tokens_per_s"])
            if family == "cpu":       # the prompt's seconds in tiled and in per-row-dot-product types
                tiled = predict_run(run, replace(ideal, cpu_compute_vec_dot=1e30))["pp_tokens_per_s"]
                rowwise = predict_run(run, replace(ideal, cpu_compute=1e30))["pp_tokens_per_s"]
                slot["pp_cpu"].append((1.0 / tiled, 1.0 / rowwise, 1.0 / float(run["pp_tokens_per_s"])))
        if family in VENDOR_FAMILIES and "pp_tokens_per_s" in pred:      # the prompt fraction per GPU vendor too
            vendor = run_job(run).gpu.vendor.lower()
            data.setdefault(f"{family}.{vendor}", {"tg": [], "pp": [], "pp_cpu": []})["pp"].append(slot["pp"][-1])
    out = {}
    for family, r in sorted(data.items()):
        if "." in family:       # a vendor row: its own prompt fraction where it has MIN_VENDOR_PP runs
            if len(r["pp"]) >= MIN_VENDOR_PP:
                out[family] = {"compute": round(statistics.median(r["pp"]), 4), "n_pp": len(r["pp"])}
            continue
        row: dict = {}
        if r["tg"]:
            row["memory"], row["layer_overhead_s"], row["moe_layer_overhead_s"] = _fit_decode(r["tg"])
            row["n_tg_moe"] = sum(p[2] > 0 for p in r["tg"])
        if r["pp"]:
            row["compute"] = round(statistics.median(r["pp"]), 4)
        if family == "cpu" and r["pp_cpu"]:
            row["compute"], row["compute_vec_dot"], row["n_vec_dot"] = _fit_cpu_prompt(r["pp_cpu"])
        row["n_tg"], row["n_pp"] = len(r["tg"]), len(r["pp"])
        out[family] = row
    return out


def section(rows: dict[str, dict]) -> str:
    today = datetime.date.today().isoformat()
    lines = [BEGIN,
             "# Local inference (llama.cpp / Ollama / MLX; rigsize.speed.local): EMPIRICAL fractions of the",
             "# device's memory bandwidth (memory: decode) and dense fp16 peak (compute: prompt processing),",
             "# fitted by tools/fit_local_efficiency.py on the split = \"fit\" rows of",
             "# data/validation/llamacpp_bench.toml only (reserved rows are compared by rigsize validate",
             "# --source local alone).  cpu_memory / cpu_compute / pcie of the GPU families have no fit rows:",
             "# they take the family's memory and compute fractions, as stated in each row's source.  [local.cpu]",
             "# is fitted on CPU-only runs: memory against the catalog CPU's DDR peak, compute against its FP32",
             "# peak (so its cpu_memory / cpu_compute are fitted values); the default leaves it out.",
             "# [local.vulkan.<vendor>]: Vulkan's prompt fraction per GPU vendor where 3 or more fit runs allow",
             "# (NV_coopmat2 kernels on NVIDIA, KHR_cooperative_matrix on AMD and Intel); decode as [local.vulkan]."]
    # a vendor row takes its backend's decode fractions; the default stands in for unfitted GPU backends
    rows = {fam: ({**rows[fam.split(".")[0]], **r, "n_tg": 0} if "." in fam else r) for fam, r in rows.items()}
    gpus = [r for fam, r in rows.items() if fam != "cpu" and "." not in fam]
    mems = [r["memory"] for r in gpus if "memory" in r]
    # a fraction above 1 says the catalog peak is not the rate the kernels run at (GeForce fp16 is listed at the
    # FP32-accumulate rate; Vulkan's cooperative-matrix kernels can accumulate in fp16): it stands in for no other
    # family
    comps = [r["compute"] for r in gpus if "compute" in r and r["compute"] <= 1]
    overs = [r["layer_overhead_s"] for r in gpus if "layer_overhead_s" in r]
    moes = [r["moe_layer_overhead_s"] for r in gpus if r.get("n_tg_moe", 0) >= MIN_MOE_TG]
    default = {"memory": round(statistics.median(mems), 4) if mems else 0.7,
               "compute": round(statistics.median(comps), 4) if comps else 0.5,
               "layer_overhead_s": statistics.median(overs) if overs else 0.0,
               # one family's MoE overhead stands in for no other: the default takes a median of two or more
               "moe_layer_overhead_s": statistics.median(moes) if len(moes) >= 2 else 0.0}
    for family, r in [("default", {**default, "n_tg": 0, "n_pp": 0}), *rows.items()]:
        memory = round(r.get("memory", default["memory"]), 4)
        compute = r.get("compute", default["compute"])
        overhead = r.get("layer_overhead_s", default["layer_overhead_s"])
        moe_overhead = r.get("moe_layer_overhead_s", default["moe_layer_overhead_s"])
        how = ("the median of the fitted GPU families" if family == "default"
               else f"compute fitted on this vendor's {r['n_pp']} pp fit rows; memory, layer_overhead_s and "
               f"moe_layer_overhead_s are [local.{family.split('.')[0]}]'s" if "." in family
               else f"fitted on {r['n_tg']} tg and {r['n_pp']} pp fit rows"
               + (f" (moe_layer_overhead_s on the {r['n_tg_moe']} tg rows of MoE models)"
                  if r.get("n_tg_moe", 0) >= MIN_MOE_TG else
                  f" (moe_layer_overhead_s 0: fewer than {MIN_MOE_TG} tg fit rows of MoE models)"))
        unfitted = ("pcie not fitted: set to memory; cpu_memory and cpu_compute = memory / compute, the CPU's own"
                    if family == "cpu" else "cpu_memory, cpu_compute, cpu_compute_vec_dot and pcie not fitted: set to "
                    "memory / compute / compute / memory")
        vec_dot = r.get("compute_vec_dot", compute)
        if family == "cpu":
            how += (f" (cpu_compute_vec_dot on {r.get('n_vec_dot', 0)} rows mostly in per-row dot-product types"
                    + ("; none: set to cpu_compute" if not r.get("n_vec_dot") else "") + ")")
        lines += ["", f"[local.{family}]", f"memory = {memory}", f"compute = {compute}",
                  f"cpu_memory = {memory}", f"cpu_compute = {compute}", f"cpu_compute_vec_dot = {vec_dot}",
                  f"pcie = {memory}",
                  "token_overhead_s = 0", f"layer_overhead_s = {overhead:.6g}",
                  f"moe_layer_overhead_s = {moe_overhead:.6g}",
                  f'source = "{how} (tools/fit_local_efficiency.py, {today}); {unfitted}"',
                  f'as_of = "{today}"']
    lines.append(END)
    return "\n".join(lines) + "\n"


def write(text: str) -> None:
    current = EFFICIENCY.read_text()
    if BEGIN in current:
        current = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END) + "\n", lambda _: text, current, flags=re.S)
    else:
        current = current.rstrip("\n") + "\n\n" + text
    EFFICIENCY.write_text(current)


def fit_errors(runs: list[dict], rows: dict[str, dict]) -> list[str]:
    """Median |error| per family and metric on the FIT rows, with the fitted fractions (the reserved rows'
    errors are ``rigsize validate --source local``'s to print, never this script's)."""
    from rigsize.speed.local import LocalEfficiency
    from rigsize.validation.local import predict_run, run_engine, run_family, run_job

    errors: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        family = run_family(run)
        if run.get("split") != "fit" or run_engine(run) != "llamacpp" or family not in rows:
            continue
        r = rows[family]
        vendor = f"{family}.{run_job(run).gpu.vendor.lower()}"
        if vendor in rows:
            r = {**r, **rows[vendor]}
        memory, compute = r.get("memory", 0.7), r.get("compute", 0.5)
        eff = LocalEfficiency(memory=memory, compute=compute, cpu_memory=memory, cpu_compute=compute,
                              cpu_compute_vec_dot=r.get("compute_vec_dot", compute),
                              layer_overhead_s=r.get("layer_overhead_s", 0.0),
                              moe_layer_overhead_s=r.get("moe_layer_overhead_s", 0.0))    # as section() writes it
        for metric, value in (predict_run(run, eff) or {}).items():
            errors.setdefault((family, metric), []).append(abs(value / float(run[metric]) - 1))
    return [f"# fit rows  {fam:8s} {metric:16s} n={len(v):3d}  median |error| {statistics.median(v):6.1%}"
            for (fam, metric), v in sorted(errors.items())]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)
    rows = fit(fit_runs())
    text = section(rows)
    print(text)
    print("\n".join(fit_errors(fit_runs(), rows)))
    if args.write:
        write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
