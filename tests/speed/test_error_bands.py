"""Error bands and the honest split they rest on (issue 11).

- the split of serving_silicon_sample.csv follows its stated rule (read from the CSV
  itself, not from the code that wrote it);
- the fitting script can only read fit rows;
- the packaged bands are what the reserved rows give today (a stale file fails);
- ``estimate --json`` carries the band of its class, null below 20 reserved rows, and
  the text output prints it beside the figure.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from importlib import resources
from pathlib import Path

import pytest
from _bench import load_bench
from click.testing import CliRunner

from rigsize.shells.cli import cli
from rigsize.speed.error_bands import MIN_ROWS, band, summarize
from rigsize.validation import serving_cases, serving_rows

ROOT = Path(__file__).resolve().parents[2]
WIDE = {"COLUMNS": "240"}      # one table row per line


def _csv() -> list[dict[str, str]]:
    text = resources.files("rigsize.data").joinpath("validation", "serving_silicon_sample.csv").read_text()
    return list(csv.DictReader(text.splitlines()))


def test_held_out_model_is_never_fitted() -> None:
    rows = [r for r in _csv() if r["preset"] == "qwen3-235b-a22b"]
    assert len(rows) == 182 and {r["split"] for r in rows} == {"reserved"}


def test_no_deployment_is_on_both_sides_and_every_family_has_fit_rows() -> None:
    sides: dict[tuple, set[str]] = defaultdict(set)
    families: dict[str, set[str]] = defaultdict(set)
    for r in _csv():
        sides[(r["preset"], r["gpu"], r["backend"], r["weights"], r["tp"], r["pp"], r["ep"], r["dp"])].add(r["split"])
        family = "hopper" if r["gpu"].startswith("H") else "blackwell"        # H100/H200; B200/GB200
        families[f"{r['backend']}|{family}"].add(r["split"])
    assert all(len(s) == 1 for s in sides.values())
    assert all(s == {"fit", "reserved"} for s in families.values()), families


def _fit_script():
    return load_bench("fit_inference")


def test_the_fitting_script_reads_fit_rows_only() -> None:
    rows = _fit_script().fit_split(serving_cases(), "vllm", "hopper")
    assert rows and all(c.split == "fit" and c.cls == "vllm|hopper|dense" for c in rows)


def test_packaged_band_is_what_the_reserved_rows_give() -> None:
    """Recompute one class from scratch (the 32 held-out Qwen3-235B vLLM rows on H200)."""
    cases = tuple(c for c in serving_cases() if c.cls == "vllm|hopper|moe" and c.split == "reserved")
    assert len(cases) == 32
    rows = serving_rows(cases)
    for metric, field in (("ttft_s", "ttft_seconds"), ("tpot_s", "tpot_seconds")):
        expected = summarize([r.error for r in rows if r.metric == metric], "vllm|hopper|moe")
        packaged = band("serving", "vllm|hopper|moe", field)
        assert packaged is not None and packaged.n == 32
        assert packaged.median_abs == pytest.approx(expected.median_abs, abs=1e-4), "rerun bench/error_bands.py"
        assert packaged.p90_abs == pytest.approx(expected.p90_abs, abs=1e-4)


def test_summarize_is_median_and_nearest_rank_p90() -> None:
    b = summarize([0.1, -0.2, 0.3, -0.4, 0.5, 0.6, -0.7, 0.8, 0.9, -1.0], "x")
    assert (b.median_abs, b.p90_abs, b.n) == (pytest.approx(0.55), 0.9, 10)


def _estimate(*args: str) -> dict:
    out = CliRunner().invoke(cli, ["estimate", *args, "--json"])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def test_estimate_carries_its_class_band() -> None:
    reserved = sum(1 for r in _csv() if r["split"] == "reserved" and r["backend"] == "vllm"
                   and r["gpu"].startswith("H") and r["preset"] in ("llama-3.1-70b", "llama-3.1-8b", "qwen3-32b"))
    perf = _estimate("qwen2-7b", "--gpu", "H100")["performance"]
    tpot = perf["error_band"]["tpot_seconds"]
    assert tpot["class"] == "vllm|hopper|dense" and tpot["n"] == reserved >= MIN_ROWS["serving"]
    assert 0 <= tpot["median_abs"] <= tpot["p90_abs"]


def test_band_is_null_under_twenty_reserved_runs() -> None:
    """RTX 4090: 5 reserved vLLM rows (serving_more.csv), so no band, and the text says so."""
    perf = _estimate("qwen2-7b", "--gpu", "RTX-4090", "--weights", "awq-int4")["performance"]
    assert perf["error_band"]["tpot_seconds"] is None
    text = CliRunner(env=WIDE).invoke(cli, ["estimate", "qwen2-7b", "--gpu", "RTX-4090", "--weights", "awq-int4"]).output
    assert "not validated for this GPU family" in text


def test_text_prints_the_band_beside_the_figure() -> None:
    text = CliRunner(env=WIDE).invoke(cli, ["estimate", "qwen2-7b", "--gpu", "H100"]).output
    line = next(x for x in text.splitlines() if "TPOT" in x)
    assert "reserved vLLM runs on Hopper" in line and "median ±" in line


def test_no_band_when_efficiency_is_overridden() -> None:
    perf = _estimate("qwen2-7b", "--gpu", "H100", "--efficiency", "memory=0.5")["performance"]
    assert perf["error_band"] == {}


def test_burst_drains_in_waves() -> None:
    """Twice as many prompts as the engine runs at once: half wait one whole wave, so mean
    TTFT = one wave's TTFT + half a wave, and throughput is that of back-to-back waves."""
    from rigsize.hardware.gpus import resolve_gpu
    from rigsize.memory.runtime import engine_for
    from rigsize.model.formats import resolve_kv_format, resolve_weight_format
    from rigsize.model.inputs import resolve_model
    from rigsize.planning.layout import Layout
    from rigsize.speed.roofline import efficiency
    from rigsize.speed.serving import serve, serve_burst

    gpu, arch = resolve_gpu("H100"), resolve_model("qwen2-7b").arch
    eff, _ = efficiency("inference", gpu, engine="vllm")
    engine = engine_for(gpu, max_position_embeddings=arch.max_position_embeddings, opts={"max_num_seqs": 40})
    args = (arch, Layout(), gpu, resolve_weight_format("bf16"), resolve_kv_format("bf16"), eff, engine)
    one = serve(*args, 40, 512, 256, waves=1)
    burst = serve_burst(*args, 80, 512, 256)
    wave = 40 * 256 / one.output_tokens_per_second
    assert burst.running == 40
    assert burst.ttft_seconds == pytest.approx(one.ttft_seconds + wave / 2, rel=1e-9)
    assert burst.output_tokens_per_second == pytest.approx(one.output_tokens_per_second, rel=1e-9)
    assert math.isclose(burst.tpot_seconds, one.tpot_seconds)


def test_the_split_script_reproduces_the_packaged_split(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """bench/split_serving.py rerun on the packaged file changes nothing (rule 3: a split once written stands),
    and a row that has never been split takes its deployment's side."""
    script = load_bench("split_serving")
    packaged = script.PATH.read_text()
    copy = tmp_path / "serving.csv"
    copy.write_text(packaged)
    script.PATH = copy
    script.main()
    assert copy.read_text() == packaged
    lines = packaged.splitlines()
    header = lines[0].split(",")
    at = header.index("split")
    row = next(r for r in csv.DictReader(lines) if r["split"] == "reserved" and r["preset"] != "qwen3-235b-a22b")
    blank = list(lines)
    i = next(k for k, ln in enumerate(lines[1:], 1) if ln.split(",")[:at] == [row[h] for h in header[:at]])
    cells = blank[i].split(",")
    cells[at] = ""
    blank[i] = ",".join(cells)
    copy.write_text("\n".join(blank) + "\n")
    script.main()
    assert copy.read_text() == packaged
