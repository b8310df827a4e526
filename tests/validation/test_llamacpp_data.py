"""The issue-19 validation data: llama.cpp speed runs, llama.cpp buffer logs and local-setup reports.

Checks the files' required fields, that every device and model name resolves in the catalogs, that the
documented split rule is the one the rows follow, and spot values typed from the sources."""

from __future__ import annotations

import hashlib
import re
import tomllib
from importlib import resources

import pytest

from rigsize.hardware.cpus import resolve_cpu
from rigsize.hardware.gpus import resolve_gpu
from rigsize.model.formats import gguf_types
from rigsize.model.inputs import presets

DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
BACKENDS = {"metal", "cuda", "rocm", "vulkan", "cpu", "sycl"}
RUN_BACKENDS = BACKENDS | {"mlx"}      # mlx-lm timings (backend = "mlx") sit beside the llama-bench runs
MLX_FORMATS = {"MLX-4BIT", "MLX-8BIT", "BF16", "F16"}
# GGUF file types as llama-bench prints them: the [gguf_type] names plus llama.cpp's K-quant mixes
K_MIXES = {"Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K"}


def _load(name: str) -> dict:
    text = resources.files("rigsize.data").joinpath("validation", name).read_text(encoding="utf-8")
    return tomllib.loads(text)


RUNS = _load("llamacpp_bench.toml")["run"]
LOGS = _load("llamacpp_memory.toml")["log"]
REPORTS = _load("local_reports.toml")["report"]


def _formats() -> set[str]:
    return set(gguf_types()) | K_MIXES


def _date_ok(v: str) -> bool:
    return v == "unknown" or bool(DATE.fullmatch(v))


def test_sizes() -> None:
    assert len(RUNS) >= 40 and len({r["device"] for r in RUNS}) >= 15
    assert len(LOGS) >= 8 and len(REPORTS) >= 10


def test_run_fields_and_names_resolve() -> None:
    names = set(presets())
    ids = [r["id"] for r in RUNS]
    assert len(ids) == len(set(ids))
    for r in RUNS:
        for key in ("source", "as_of", "device", "backend", "model", "format", "n_prompt", "n_gen",
                    "ngl", "build", "split", "notes"):
            assert key in r, (r["id"], key)
        # both speeds, except batch-5 rows whose source printed one of them (the header says which may lack one)
        assert ("pp_tokens_per_s" in r and "tg_tokens_per_s" in r) or (
            r.get("batch", 1) >= 5 and ("pp_tokens_per_s" in r or "tg_tokens_per_s" in r)), r["id"]
        assert r["source"].startswith("https://"), r["id"]
        assert _date_ok(r["as_of"]), r["id"]
        assert r["backend"] in RUN_BACKENDS, r["id"]
        if r["backend"] == "cpu":       # CPU-only runs name a data/cpus.toml CPU, with no layer on a GPU
            assert resolve_cpu(r["device"]).name == r["device"], r["id"]
            assert r["ngl"] == 0 and isinstance(r["threads"], int) and r["threads"] > 0, r["id"]
        else:
            gpu = resolve_gpu(r["device"])
            assert gpu.name == r["device"], r["id"]
            if "gpu_cores" in r:
                assert gpu.kind == "apple" and r["gpu_cores"] in gpu.gpu_cores_options, r["id"]
            assert (r["backend"] in ("metal", "mlx")) == (gpu.kind == "apple"), r["id"]
        assert r["model"] in names, r["id"]
        assert r["format"] in (MLX_FORMATS if r["backend"] == "mlx" else _formats()), (r["id"], r["format"])
        assert r["n_prompt"] > 0 and r["n_gen"] > 0 and 0 <= r["ngl"] <= 999
        # generation is slower than prompt processing on every device here
        assert 0 < r.get("tg_tokens_per_s", 1) and r.get("pp_tokens_per_s", 1e4) < 1e5, r["id"]
        if "tg_tokens_per_s" in r and "pp_tokens_per_s" in r:
            assert r["tg_tokens_per_s"] < r["pp_tokens_per_s"], r["id"]
        assert r["split"] in {"fit", "reserved"}


def test_split_follows_the_documented_rule() -> None:
    """Header rule (batch 1): within each vendor, devices sorted by sha256(name); every third from the first is
    reserved."""
    first = [r for r in RUNS if "batch" not in r]
    vendor = {r["device"]: resolve_gpu(r["device"]).vendor for r in first}
    reserved: set[str] = set()
    for v in set(vendor.values()):
        devs = sorted((d for d in vendor if vendor[d] == v), key=lambda d: hashlib.sha256(d.encode()).hexdigest())
        reserved |= set(devs[::3])
    for r in first:
        assert r["split"] == ("reserved" if r["device"] in reserved else "fit"), r["id"]
    share = sum(r["split"] == "reserved" for r in first) / len(first)
    assert 0.25 <= share <= 0.5
    for v in ("apple", "nvidia", "amd"):
        assert any(r["split"] == "reserved" and vendor[r["device"]] == v for r in first), v
    text = resources.files("rigsize.data").joinpath("validation", "llamacpp_bench.toml").read_text()
    assert "SHA-256" in text and "divisible by 3" in text


def test_batch_two_split_follows_its_rule() -> None:
    """Header rule (batch 2): mlx rows reserved; a (backend, device) pair with batch-1 rows keeps its side; the new
    pairs of each backend, sorted by sha256("backend/device"), alternate reserved (even), fit (odd)."""
    second = [r for r in RUNS if r.get("batch") == 2]
    assert len(second) >= 8 and all(r["batch"] in (2, 3, 4, 5, 6, 7, 8, 9, 10) for r in RUNS if "batch" in r)
    old = {(r["backend"], r["device"]): r["split"] for r in RUNS if "batch" not in r}
    new: dict[str, set[str]] = {}
    for r in second:
        if r["backend"] != "mlx" and (r["backend"], r["device"]) not in old:
            new.setdefault(r["backend"], set()).add(r["device"])
    side = {}
    for backend, devices in new.items():
        ranked = sorted(devices, key=lambda d: hashlib.sha256(f"{backend}/{d}".encode()).hexdigest())
        side |= {(backend, d): ("reserved" if i % 2 == 0 else "fit") for i, d in enumerate(ranked)}
    for r in second:
        key = (r["backend"], r["device"])
        want = "reserved" if r["backend"] == "mlx" else old.get(key) or side[key]
        assert r["split"] == want, r["id"]
    # each new backend class has rows on both sides of the split where it has new devices
    for backend in ("rocm", "vulkan"):
        assert {r["split"] for r in RUNS if r["backend"] == backend} == {"fit", "reserved"}, backend
    text = resources.files("rigsize.data").joinpath("validation", "llamacpp_bench.toml").read_text()
    assert "SPLIT RULE, BATCH 2" in text and "EVEN number is RESERVED" in text


def test_batch_three_split_follows_its_rule() -> None:
    """Header rule (batch 3, CPU-only runs): the batch-2 rule on the batch-3 pairs: sorted by sha256("cpu/<device>"),
    even numbers reserved, odd fit; both sides have rows, and no batch-3 run is on a GPU."""
    third = [r for r in RUNS if r.get("batch") == 3]
    assert len(third) >= 6 and {r["backend"] for r in third} == {"cpu"}
    devices = sorted({r["device"] for r in third}, key=lambda d: hashlib.sha256(f"cpu/{d}".encode()).hexdigest())
    assert len(devices) >= 4
    side = {d: ("reserved" if i % 2 == 0 else "fit") for i, d in enumerate(devices)}
    for r in third:
        assert r["split"] == side[r["device"]], r["id"]
    assert {r["split"] for r in third} == {"fit", "reserved"}
    # the sides the rule gave when batch 3 was added, before any batch-3 prediction was computed
    assert side["THREADRIPPER-PRO-5995WX"] == "reserved" and side["RYZEN-9-7950X"] == "fit"
    text = resources.files("rigsize.data").joinpath("validation", "llamacpp_bench.toml").read_text()
    assert "SPLIT RULE, BATCH 3" in text


def test_batch_four_rows_are_all_reserved() -> None:
    """Header rule (batch 4): every batch-4 row is reserved, whatever its backend or device; batch 4 brings ROCm,
    Vulkan and CPU-only runs (at least 6 each) and MLX rows, and leaves the sides of batches 1-3 as they were."""
    fourth = [r for r in RUNS if r.get("batch") == 4]
    assert fourth and all(r["split"] == "reserved" for r in fourth), \
        [r["id"] for r in fourth if r["split"] != "reserved"]
    count = {b: sum(r["backend"] == b for r in fourth) for b in ("rocm", "vulkan", "cpu", "mlx")}
    assert min(count["rocm"], count["vulkan"], count["cpu"]) >= 6 and count["mlx"] >= 1, count
    # batch 4 moved no earlier row: the devices it shares with them keep their fit rows there
    older = {r["id"]: r["split"] for r in RUNS if r.get("batch") != 4}
    assert older["strix-llama-2-7b-q4_0-rocm"] == "fit" and older["strix-llama-2-7b-q4_0-vulkan"] == "fit"
    assert older["cpu-7950x-llama-3.1-8b-q4_0"] == "fit" and older["sb-rx-7900-xtx-q4_0"] == "fit"
    text = resources.files("rigsize.data").joinpath("validation", "llamacpp_bench.toml").read_text()
    assert "SPLIT RULE, BATCH 4" in text and "every batch-4 row is\n#   RESERVED" in text


@pytest.mark.parametrize("batch", [5, 6])
def test_batch_five_and_six_splits_follow_their_rule(batch: int) -> None:
    """Header rule (batches 5 and 6): a (backend, device) pair seen in earlier batches keeps the side of its rows of
    the earliest batch it appears in; the new pairs of each backend, sorted by sha256("backend/device"), alternate
    reserved (even) and fit (odd); batch 5 brings Vulkan rows (MoE among them) and CPU-only rows, batch 6 CPU-only
    rows."""
    fifth = [r for r in RUNS if r.get("batch") == batch]
    if batch == 5:
        assert sum(r["backend"] == "vulkan" for r in fifth) >= 20 and any(r["backend"] == "cpu" for r in fifth)
    else:
        assert len(fifth) >= 6 and {r["backend"] for r in fifth} == {"cpu"}
    earliest: dict[tuple[str, str], tuple[int, str]] = {}
    for r in RUNS:
        if r.get("batch", 1) >= batch:
            continue
        key, b = (r["backend"], r["device"]), r.get("batch", 1)
        if key not in earliest or b < earliest[key][0]:
            earliest[key] = (b, r["split"])
    new: dict[str, set[str]] = {}
    for r in fifth:
        if (r["backend"], r["device"]) not in earliest:
            new.setdefault(r["backend"], set()).add(r["device"])
    side = {}
    for backend, devices in new.items():
        ranked = sorted(devices, key=lambda d: hashlib.sha256(f"{backend}/{d}".encode()).hexdigest())
        side |= {(backend, d): ("reserved" if i % 2 == 0 else "fit") for i, d in enumerate(ranked)}
    for r in fifth:
        key = (r["backend"], r["device"])
        assert r["split"] == (earliest[key][1] if key in earliest else side[key]), r["id"]
    # the sides named in the header: Strix Halo under Vulkan and the 7950X CPU-only fit, the Arc B580 reserved
    assert earliest[("vulkan", "RYZEN-AI-MAX-395-128GB")][1] == "fit" and earliest[("cpu", "RYZEN-9-7950X")][1] == "fit"
    assert earliest[("vulkan", "ARC-B580")][1] == "reserved"
    text = resources.files("rigsize.data").joinpath("validation", "llamacpp_bench.toml").read_text()
    assert f"SPLIT RULE, BATCH {batch}" in text


def test_batch_seven_rows_are_all_reserved() -> None:
    """Header rule (batch 7, GPU backends): every batch-7 row is reserved, whatever its backend or device; batch 7
    brings Vulkan rows (generation and prompt) and ROCm rows with a prompt speed, no CPU-only or MLX row, and leaves
    the sides of batches 1-6 as they were (the pairs it shares with them keep the side of their earliest batch)."""
    seventh = [r for r in RUNS if r.get("batch") == 7]
    assert len(seventh) >= 29 and all(r["split"] == "reserved" for r in seventh), \
        [r["id"] for r in seventh if r["split"] != "reserved"]
    assert {r["backend"] for r in seventh} <= {"vulkan", "rocm", "cuda", "metal", "sycl"}
    vulkan = [r for r in seventh if r["backend"] == "vulkan"]
    assert len(vulkan) >= 15 and sum("tg_tokens_per_s" in r for r in vulkan) >= 10
    assert sum(r["backend"] == "rocm" and "pp_tokens_per_s" in r for r in seventh) >= 10
    assert len({r["device"] for r in seventh}) >= 4
    # batch 7 moved no earlier row: the (backend, device) pairs it shares keep the side of their earliest batch
    earliest: dict[tuple[str, str], tuple[int, str]] = {}
    for r in RUNS:
        key, b = (r["backend"], r["device"]), r.get("batch", 1)
        if b < 7 and (key not in earliest or b < earliest[key][0]):
            earliest[key] = (b, r["split"])
    assert earliest[("vulkan", "RYZEN-AI-MAX-395-128GB")][1] == "fit"
    assert earliest[("rocm", "RYZEN-AI-MAX-395-128GB")][1] == "fit"
    assert earliest[("rocm", "RX-7900-XTX")][1] == "fit" and earliest[("vulkan", "RX-9070-XT")][1] == "fit"
    assert earliest[("vulkan", "RTX-5090")][1] == "reserved"
    older = {r["id"]: r["split"] for r in RUNS if r.get("batch", 1) < 7}
    assert older["strix-llama-2-7b-q4_0-vulkan"] == "fit" and older["sb-rx-7900-xtx-q4_0"] == "fit"
    assert older["vk5-rx9070xt-gpt-oss-20b-mxfp4-pr15355"] == "fit"
    text = resources.files("rigsize.data").joinpath("validation", "llamacpp_bench.toml").read_text()
    assert "SPLIT RULE, BATCH 7" in text and "every batch-7 row is RESERVED" in text and "Batch 7 (all reserved" in text



def _rule_sides(batch: int) -> dict[tuple[str, str], str]:
    """The sides the batch-5 rule gives ``batch``'s (backend, device) pairs: a pair seen in an
    earlier batch keeps the side of its earliest batch's rows; the new pairs of each backend, sorted
    by sha256("backend/device"), alternate reserved (even) and fit (odd)."""
    earliest: dict[tuple[str, str], tuple[int, str]] = {}
    for r in RUNS:
        key, b = (r["backend"], r["device"]), r.get("batch", 1)
        if b < batch and (key not in earliest or b < earliest[key][0]):
            earliest[key] = (b, r["split"])
    new: dict[str, set[str]] = {}
    for r in RUNS:
        if r.get("batch") == batch and (r["backend"], r["device"]) not in earliest:
            new.setdefault(r["backend"], set()).add(r["device"])
    sides = {key: side for key, (_, side) in earliest.items()}
    for backend, devices in new.items():
        ranked = sorted(devices, key=lambda d: hashlib.sha256(f"{backend}/{d}".encode()).hexdigest())
        sides |= {(backend, d): ("reserved" if i % 2 == 0 else "fit") for i, d in enumerate(ranked)}
    return sides

def test_batch_eight_split_follows_its_rule() -> None:
    """Header rule (batch 8, discrete-card Vulkan / ROCm / SYCL runs): the batch-5 rule on the batch-8 pairs (a pair
    seen in batches 1-7 keeps the side of its earliest batch; the new pairs of each backend, sorted by
    sha256("backend/device"), alternate reserved (even) and fit (odd)); at most 12 rows per pair, no APU row, and at
    least 8 Vulkan rows on discrete cards with both sides of the split non-empty."""
    eighth = [r for r in RUNS if r.get("batch") == 8]
    assert {r["backend"] for r in eighth} <= {"vulkan", "rocm", "sycl"}
    assert all(resolve_gpu(r["device"]).kind == "gpu" for r in eighth), \
        [r["id"] for r in eighth if resolve_gpu(r["device"]).kind != "gpu"]
    per_pair: dict[tuple[str, str], int] = {}
    for r in eighth:
        per_pair[(r["backend"], r["device"])] = per_pair.get((r["backend"], r["device"]), 0) + 1
    assert max(per_pair.values()) <= 12, per_pair
    # one row per device, backend, preset, format and build (rows of an unnamed build differ in their source)
    keys = [(r["device"], r["backend"], r["model"], r["format"], r["build"],
             r["source"] if r["build"] == "unknown" else "") for r in eighth]
    assert len(keys) == len(set(keys))
    sides = _rule_sides(8)
    for r in eighth:
        assert r["split"] == sides[(r["backend"], r["device"])], r["id"]
    vulkan = [r for r in eighth if r["backend"] == "vulkan"]
    assert len(vulkan) >= 8 and {r["split"] for r in vulkan} == {"fit", "reserved"}
    assert any(r["backend"] == "rocm" and "pp_tokens_per_s" in r for r in eighth)
    # batch 8 moved no earlier row; the RX 9070 XT under Vulkan keeps its batch-5 side (fit), the rule's earliest batch
    older = {r["id"]: r["split"] for r in RUNS if r.get("batch", 1) < 8}
    assert older["vk5-rx9070xt-gpt-oss-20b-mxfp4-pr15355"] == "fit" and older["sb-rx-7900-xtx-q4_0"] == "fit"
    text = resources.files("rigsize.data").joinpath("validation", "llamacpp_bench.toml").read_text()
    assert "SPLIT RULE, BATCH 8" in text and "Batch 8 (gathered" in text


def test_batch_nine_split_follows_its_rule() -> None:
    """Header rule (batch 9, AMD / Intel discrete cards under Vulkan, AMD under ROCm, prompt speed printed): the
    batch-8 rule on the batch-9 pairs (a pair seen in batches 1-8 keeps the side of its earliest batch; the new pairs
    of each backend, sorted by sha256("backend/device"), alternate reserved (even) and fit (odd)); at most 12 rows per
    pair, no APU row, no duplicate, every row prints pp, and both sides of the split are non-empty."""
    ninth = [r for r in RUNS if r.get("batch") == 9]
    assert len(ninth) >= 6
    assert {r["backend"] for r in ninth} <= {"vulkan", "rocm"}
    assert all(resolve_gpu(r["device"]).kind == "gpu" for r in ninth), \
        [r["id"] for r in ninth if resolve_gpu(r["device"]).kind != "gpu"]
    assert all(resolve_gpu(r["device"]).vendor in ("amd", "intel") for r in ninth)
    assert all(r["backend"] == "vulkan" or resolve_gpu(r["device"]).vendor == "amd" for r in ninth)
    assert all("pp_tokens_per_s" in r and r["ngl"] == 99 for r in ninth)
    per_pair: dict[tuple[str, str], int] = {}
    for r in ninth:
        per_pair[(r["backend"], r["device"])] = per_pair.get((r["backend"], r["device"]), 0) + 1
    assert max(per_pair.values()) <= 12, per_pair
    # one row per device, backend, preset, format and build over all batches (an unnamed build differs by its source)
    keys = [(r["device"], r["backend"], r["model"], r["format"], r["build"],
             r["source"] if r["build"] == "unknown" else "") for r in RUNS if r["backend"] in ("vulkan", "rocm")]
    ninth_keys = {(r["device"], r["backend"], r["model"], r["format"], r["build"],
                   r["source"] if r["build"] == "unknown" else "") for r in ninth}
    assert all(keys.count(k) == 1 for k in ninth_keys)
    sides = _rule_sides(9)
    for r in ninth:
        assert r["split"] == sides[(r["backend"], r["device"])], r["id"]
    assert {r["split"] for r in ninth} == {"fit", "reserved"}
    assert any(r["backend"] == "vulkan" and r["split"] == "fit" for r in ninth)
    # batch 9 moved no earlier row: the RX 9070 XT under Vulkan stays fit (batch 5), the R9700 under ROCm reserved (batch 1)
    older = {r["id"]: r["split"] for r in RUNS if r.get("batch", 1) < 9}
    assert older["vk5-rx9070xt-gpt-oss-20b-mxfp4-pr15355"] == "fit"
    assert older["sb-radeon-ai-pro-r9700-q4_0"] == "reserved"
    text = resources.files("rigsize.data").joinpath("validation", "llamacpp_bench.toml").read_text()
    assert "SPLIT RULE, BATCH 9" in text and "Batch 9 (gathered" in text


def test_batch_ten_rows_are_all_reserved() -> None:
    """Header rule (batch 10, mlx-lm timings on Apple silicon): every batch-10 row is reserved, backend mlx, on an
    Apple catalog row; at most 6 rows per (device, mlx-lm build); no row repeats a device, preset, format, build and
    prompt / generated token count already in the file; and batch 10 moves no earlier row."""
    tenth = [r for r in RUNS if r.get("batch") == 10]
    assert len(tenth) >= 8 and all(r["split"] == "reserved" for r in tenth), \
        [r["id"] for r in tenth if r["split"] != "reserved"]
    assert all(r["backend"] == "mlx" and resolve_gpu(r["device"]).kind == "apple" for r in tenth)
    assert all(r["format"] in MLX_FORMATS and r["build"].startswith("mlx-lm ") for r in tenth)
    per_pair: dict[tuple[str, str], int] = {}
    for r in tenth:
        per_pair[(r["device"], r["build"])] = per_pair.get((r["device"], r["build"]), 0) + 1
    assert max(per_pair.values()) <= 6, per_pair
    keys = [(r["device"], r["model"], r["format"], r["build"], r["n_prompt"], r["n_gen"])
            for r in RUNS if r["backend"] == "mlx"]
    assert all(keys.count(k) == 1 for k in keys), [k for k in keys if keys.count(k) > 1]
    assert len({r["device"] for r in tenth}) >= 3 and len({r["model"] for r in tenth}) >= 3
    # batch 10 moved no earlier row: every earlier mlx row stays reserved (the batch-2 rule)
    assert all(r["split"] == "reserved" for r in RUNS if r["backend"] == "mlx")
    text = resources.files("rigsize.data").joinpath("validation", "llamacpp_bench.toml").read_text()
    assert "SPLIT RULE, BATCH 10" in text and "every batch-10 row is RESERVED" in text and "Batch 10 (all reserved" in text

# (id, pp, tg) typed from the sources: discussion 4167's summary table, the 15013 scoreboard, benches/dgx-spark.md
SPOT_RUNS = [("m2-ultra-76c-q4_0", 1238.48, 94.27), ("m2-ultra-60c-f16", 1128.59, 39.86),
             ("m4-max-40c-q4_0", 885.68, 83.06), ("sb-rtx-4090-q4_0", 11992.70, 186.21),
             ("sb-rx-7900-xtx-q4_0", 3552.27, 167.11), ("spark-gpt-oss-120b", 1937.54, 59.02),
             ("strix-llama-2-7b-q4_0-rocm", 1545.36, 50.59),
             # batch 2: the ROCm / Vulkan scoreboard compilation, kyuz0's Vulkan log, mlx-examples #1029 / #1069
             ("sb-mi210-q4_0", 2486.22, 124.51), ("sb-arc-b580-q4_0-vulkan", 620.94, 70.14),
             ("strix-gpt-oss-120b-mxfp4-vulkan", 719.91, 56.61), ("mlx-m3-max-llama-3.3-70b-4bit", 75.871, 9.351),
             ("mlx-m2-ultra-llama-3-70b-bf16", 27.8, 4.7),
             # batch 3 (CPU-only): geerlingguy/ai-benchmarks#53, ik_llama.cpp#54's mainline column, llama.cpp#8908
             ("cpu-i5-4278u-llama-3.2-3b-q4_k_m", 17.70, 7.68), ("cpu-7950x-llama-3.1-8b-q8_0", 141.30, 7.56),
             ("cpu-5975wx-llama-3.1-8b-q4_0", 139.09, 11.90), ("cpu-5995wx-mistral-7b-v0.3-q4_0", 189.30, 33.74),
             # batch 4: kyuz0's 29-03-2026 logs, llama.cpp PR #26284's master column, 1337hero's 7900 XTX Vulkan file,
             # ik_llama.cpp README's mainline column, mlx-examples #1029
             ("strix-qwen3-coder-30b-a3b-q4_k_m-rocm", 1149.31, 67.72), ("strix-gemma-3-27b-bf16-vulkan", 91.65, 3.98),
             ("rx-7900-xtx-llama-8b-q4_k_m-rocm-pr26284", 3189.36, 105.75),
             ("rx-7900-xtx-llama-2-7b-q4_0-vulkan", 3290.92, 172.86),
             ("cpu-7950x-llama-3-8b-iq4_xs-ik-readme", 68.98, 13.36), ("mlx-m3-max-llama-3.3-70b-4bit-p8015", 74.840, 8.520),
             # batch 5: kyuz0's and visorcraft's Strix Halo Vulkan logs, llama.cpp PR #21024's base column, ik_llama.cpp
             # PR #683's mainline table
             ("vk5-strix-qwen3-30b-a3b-q6_k-kyuz0-290326-radv", 1145.66, 68.15),
             ("vk5-strix-llama-3.1-70b-q4_k_m-visorcraft-120w", 81.63, 5.1),
             ("vk5-rtx3090-llama-3-8b-q4_0-pr21024", 4753.45, 146.73),
             ("cpu5-7950x-gpt-oss-20b-mxfp4-ik683", 141.89, 21.29),
             # batch 7: vulkanforge's llama.cpp columns, llama.cpp PRs #19075 / #18280 / #13324, kyuz0's ROCm logs
             ("b7-vk-rx9070xt-qwen3-8b-q4_k_m-vulkanforge-b9174", 4472.0, 114.9),
             ("b7-rocm-rx9070xt-llama-3.1-8b-q4_k_m-vulkanforge-23b8cc4", 3936.0, 94.0),
             ("b7-rocm-strix-llama-3-8b-q4_k_s-pr19075", 1087.56, 40.38),
             ("b7-vk-strix-llama-3-8b-q4_0-pr18280", 627.26, 45.44),
             ("b7-rocm-rx7900xtx-qwen3-32b-q4_k_s-pr13324", 744.73, 26.07),
             ("b7-rocm-strix-qwen3-235b-a22b-q3_k_m-kyuz0-290326", 194.62, 14.64),
             # batch 8: the Vulkan / ROCm scoreboards' discrete cards, llama.cpp PRs #14001 / #14903 / #20551
             ("b8-vk-rtx4070-llama-2-7b-q4_0-sb", 3179.37, 92.29), ("b8-rocm-w7900-llama-2-7b-q4_0-sb", 3213.17, 121.18),
             ("b8-vk-arca770-gemma-2-2b-q4_k_m-pr14001", 974.92, 96.42),
             ("b8-vk-rtx3090-llama-3.2-3b-q4_0-pr14903", 8216.3, 255.82),
             ("b8-vk-rx9070xt-llama-3-8b-q4_0-pr20551", 4886.26, 115.78),
             # batch 9: llama.cpp PR #13326's master block, kyuz0/amd-r9700-ai-toolboxes' ROCm 7.1.1 logs
             ("b9-vk-rx9070xt-qwen2.5-14b-q4_0-pr13326", 1984.34, 58.9),
             ("b9-rocm-r9700-llama-2-7b-q4_0-kyuz0-rocm711", 4687.55, 103.66),
             ("b9-rocm-r9700-gemma-3-12b-q8_0-kyuz0-rocm711", 2828.25, 34.22),
             # batch 10: mlx-lm's BENCHMARKS.md (a4c6470), mlx-examples #1029
             ("b10-mlx-m4max-qwen3-30b-a3b-4bit-benchmarks-md", 1753.90, 113.33),
             ("b10-mlx-m4pro-llama-3.1-8b-4bit-1029", 261.786, 23.146),
             ("b10-mlx-m3-max-llama-3.3-70b-4bit-p2173", 83.092, 9.123)]


@pytest.mark.parametrize("rid, pp, tg", SPOT_RUNS)
def test_run_spot_values(rid: str, pp: float, tg: float) -> None:
    r = next(x for x in RUNS if x["id"] == rid)
    assert r["pp_tokens_per_s"] == pp and r["tg_tokens_per_s"] == tg


def test_memory_logs() -> None:
    names = set(presets())
    for log in LOGS:
        for key in ("source", "as_of", "device", "backend", "engine", "model", "model_file", "format", "n_ctx",
                    "type_k", "type_v", "flash_attn", "build", "model_buffer_mib", "kv", "compute_buffer_mib"):
            assert key in log, (log["id"], key)
        assert _date_ok(log["as_of"]) and log["backend"] in BACKENDS
        assert log["device"] == "unknown" or resolve_gpu(log["device"]).name == log["device"]
        assert log["model"] in names and log["format"] in _formats(), log["id"]
        for kv in log["kv"]:
            # llama.cpp prints K + V = the cache's size, and f16 K for one layer and cell = n_embd_k_gqa * 2 bytes
            assert kv["k_mib"] + kv["v_mib"] == pytest.approx(kv["buffer_mib"]), log["id"]
            assert kv["cells"] <= log["n_ctx"]
        assert all(v > 0 for v in log["model_buffer_mib"].values())
    # Llama 3.3 70B (80 layers, 8 KV heads x 128 = 1024 per layer): f16 K = 80 x 4096 x 1024 x 2 B = 640 MiB
    ll = next(x for x in LOGS if x["id"] == "strix-llama-3.3-70b-q4_k_m-rocm")
    assert ll["kv"][0]["k_mib"] == 80 * 4096 * 1024 * 2 / 2**20
    assert ll["model_buffer_mib"] == {"ROCm0": 39979.48, "CPU": 563.62}


HAVE = re.compile(r"^\s*(\d+)x\s+(\S+)\s*$")


def test_local_reports() -> None:
    names = set(presets())
    ids = [r["id"] for r in REPORTS]
    assert len(ids) == len(set(ids))
    for r in REPORTS:
        for key in ("source", "as_of", "have", "engine", "model", "format", "context", "tg_tokens_per_s"):
            assert key in r, (r["id"], key)
        assert r["source"].startswith("https://") and _date_ok(r["as_of"])
        for part in r["have"].split(","):
            m = HAVE.match(part)
            assert m, r["have"]
            assert resolve_gpu(m.group(2)).name == m.group(2)
        assert r["model"] in names, r["id"]
        assert r["format"] == "unknown" or r["format"] in _formats(), r["id"]
        assert r["tg_tokens_per_s"] == "unknown" or 0 < r["tg_tokens_per_s"] < 1000
    haves = {(r["have"], r["model"]) for r in REPORTS}
    assert ("2x RTX-3090", "llama-3-70b") in haves           # the two named cases
    assert any(h == "1x M2-Ultra-192GB" for h, _ in haves)
    two = next(r for r in REPORTS if r["id"] == "2x3090-llama-3-70b-q4_k_m")
    assert two["tg_tokens_per_s"] == 16.57 and two["format"] == "Q4_K_M"   # XiongjieDai README, LLaMA 3 table
