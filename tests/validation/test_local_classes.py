"""rigsize validate --source local per class (issue 19): the ROCm, Vulkan and MLX classes of the second batch
of llama-bench / mlx-lm rows, reported per device family with n, and 'too few rows' where a reserved class is
below LOCAL_MIN_ROWS.  The classes that meet the issue's targets on their reserved rows are held to them
(``MET``); the others are reported as they come out."""

from __future__ import annotations

import io

from rich.console import Console

from rigsize.validation.common import LOCAL_MIN_ROWS, TARGETS, summarize_classes
from rigsize.validation.local import bench_rows, bench_runs, predict_run, run_family, run_options


def _classes() -> list[dict]:
    return summarize_classes(bench_rows())


def test_new_classes_are_reported_with_both_splits_and_n() -> None:
    by_class = _classes()
    seen = {(c["class"], c["metric"], c["split"]): c["n"] for c in by_class}
    for cls in ("local.rocm", "local.vulkan"):
        for split in ("fit", "reserved"):
            assert seen.get((cls, "tg_tokens_per_s", split), 0) >= 1, (cls, split)
    assert seen.get(("local.mlx", "tg_tokens_per_s", "reserved"), 0) >= 2
    assert not any(c["class"] == "local.mlx" and c["split"] == "fit" for c in by_class)   # no MLX row is fitted
    # n counts the rows of the class: every batch-2 run with a prediction is in exactly one class row per metric
    runs = [r for r in bench_runs() if r.get("backend") in ("rocm", "vulkan", "mlx")]
    for cls in ("rocm", "vulkan", "mlx"):
        want = sum(1 for r in runs if run_family(r) == cls and "tg_tokens_per_s" in (predict_run(r) or {}))
        assert sum(c["n"] for c in by_class if c["class"] == f"local.{cls}" and c["metric"] == "tg_tokens_per_s") \
            == want


def test_small_reserved_classes_have_no_target_and_say_so() -> None:
    from rigsize.shells.render import print_validation

    by_class = _classes()
    for c in by_class:
        if c["split"] == "reserved" and c["metric"] in TARGETS:
            assert (c["target"] is None) == (c["n"] < LOCAL_MIN_ROWS), c
        if c["split"] == "fit":
            assert c["target"] is None
    assert any(c["target"] is None and c["split"] == "reserved" for c in by_class)
    buf = io.StringIO()
    print_validation([], [], False, "en", console=Console(file=buf, width=200), by_class=by_class)
    out = buf.getvalue()
    assert "too few rows" in out and "local.vulkan" in out and "local.mlx" in out


def test_mlx_rows_run_mlx_lm_on_the_apple_row() -> None:
    from rigsize.speed.local import LocalEfficiency

    mlx = [r for r in bench_runs() if r["backend"] == "mlx"]
    assert mlx and all(r["split"] == "reserved" for r in mlx)
    for r in mlx:
        opts = run_options(r)
        assert opts["engine"] == "mlx" and "gpu_layers" not in opts and "flash_attn" not in opts
        # the default efficiency is the packaged Apple row: passing it explicitly gives the same prediction
        from rigsize.speed.local import local_efficiency

        apple, key = local_efficiency("apple", "mlx")
        assert key == "local.apple"
        assert predict_run(r) == predict_run(r, apple)
        assert predict_run(r) != predict_run(r, LocalEfficiency(memory=0.5, compute=0.3))


def test_cpu_only_runs_form_the_cpu_class_with_both_splits_and_n() -> None:
    """Batch 3: CPU-only llama-bench runs are the local.cpu class, on both sides of the split, n = the runs."""
    by_class = _classes()
    cpu = [r for r in bench_runs() if r["backend"] == "cpu"]
    assert len(cpu) >= 6
    for metric in ("tg_tokens_per_s", "pp_tokens_per_s"):
        for split in ("fit", "reserved"):
            want = sum(1 for r in cpu if r["split"] == split and metric in (predict_run(r) or {}))
            got = sum(c["n"] for c in by_class if c["class"] == "local.cpu" and c["metric"] == metric
                      and c["split"] == split)
            assert got == want >= 1, (metric, split)


def test_cpu_runs_run_on_the_catalog_cpu_alone() -> None:
    """A CPU-only run is rigsize's --gpu cpu --host-cpu <device>, decoded against the CPU's DDR peak and fitted
    per the cpu family ([local.cpu])."""
    from rigsize.hardware.cpus import resolve_cpu
    from rigsize.speed.local import LocalEfficiency, local_efficiency
    from rigsize.validation.local import run_job

    for r in (x for x in bench_runs() if x["backend"] == "cpu"):
        opts = run_options(r)
        assert opts["gpu"] == "cpu" and opts["host_cpu"] == r["device"] and "gpu_layers" not in opts
        job = run_job(r)
        cpu = resolve_cpu(r["device"])
        assert job.gpu.kind == "cpu" and job.local.devices == (job.gpu,)
        # channels x 8 bytes x MT/s, from the catalog row's own fields
        assert job.gpu.hbm_bytes_per_second == cpu.memory_channels * 8 * cpu.memory_mt_per_s * 1e6
        assert run_family(r) == "cpu"
    eff, key = local_efficiency("cpu")
    assert key == "local.cpu" and eff.cpu_compute == eff.compute and eff.cpu_memory == eff.memory
    # at 100% of the peak the i5-4278U generates at 25.6 GB/s (Intel ARK) over the 1.87 GiB that llama-bench
    # printed for Llama-3.2-3B Q4_K_M (tied embeddings: the output reads the whole matrix): 12.75 tokens/s
    i5 = next(x for x in bench_runs() if x["id"] == "cpu-i5-4278u-llama-3.2-3b-q4_k_m")
    ideal = predict_run(i5, LocalEfficiency(memory=1.0, compute=1.0, cpu_memory=1.0, cpu_compute=1.0))
    assert abs(ideal["tg_tokens_per_s"] / (25.6e9 / (1.87 * 2**30)) - 1) < 0.02


# (class, metric) whose reserved median met the target (generation 15%, prompt 25%) when last read,
# 2026-12-03: a change that breaks one does not land.  ROCm's prompt (37% on 16 rows) is not met.
MET = [("local.apple", "pp_tokens_per_s"), ("local.apple", "tg_tokens_per_s"), ("local.cpu", "pp_tokens_per_s"),
       ("local.cpu", "tg_tokens_per_s"), ("local.cuda", "pp_tokens_per_s"), ("local.cuda", "tg_tokens_per_s"),
       ("local.mlx", "pp_tokens_per_s"), ("local.mlx", "tg_tokens_per_s"), ("local.rocm", "tg_tokens_per_s"),
       ("local.vulkan", "pp_tokens_per_s"), ("local.vulkan", "tg_tokens_per_s")]


def test_met_targets_stay_met() -> None:
    by = {(c["class"], c["metric"]): c for c in _classes() if c["split"] == "reserved"}
    for key in MET:
        c = by[key]
        assert c["target"] is not None and c["median_abs_error"] <= c["target"] and c["meets_target"], (key, c)
