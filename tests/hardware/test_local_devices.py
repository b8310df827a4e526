"""Local-inference devices (issue 19): Apple silicon, APUs, consumer GPUs and host CPUs.

Spot values are typed from each row's cited source (Apple newsroom, NVIDIA whitepaper figures, vendor
spec pages as quoted), not read back from the catalogs."""

from __future__ import annotations

import re

import pytest

from rigsize.errors import HardwareError
from rigsize.hardware.cpus import cpu_catalog, resolve_cpu
from rigsize.hardware.gpus import catalog, resolve_gpu
from rigsize.units import GiB

ADDED_GPUS = ["RTX-3060-12GB", "RTX-3080", "RTX-4060-TI-16GB", "RTX-4070-TI-SUPER", "RTX-4080", "RTX-4090D",
              "RTX-5060-TI-16GB", "RTX-5070-TI", "RTX-5080", "RX-7900-XTX", "RADEON-AI-PRO-R9700", "ARC-PRO-B60",
              "RYZEN-AI-MAX-395-128GB", "DGX-SPARK"]
DOC_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


def _local_rows():
    return [g for g in catalog() if g.kind != "gpu" or g.name in ADDED_GPUS]


def test_kind_values_and_unified_memory() -> None:
    for g in catalog():
        assert g.kind in {"gpu", "apple", "apu", "cpu"}, g.name
        assert g.unified_memory == (g.kind in {"apple", "apu"}), g.name
        if g.unified_memory:
            assert g.gpu_wired_fraction is not None, g.name
        else:
            assert g.gpu_wired_fraction is None, g.name
    assert resolve_gpu("H100").kind == "gpu" and not resolve_gpu("RTX-4090").unified_memory


def test_every_new_row_has_source_and_dates() -> None:
    rows = _local_rows()
    assert len(rows) >= 40
    for g in rows:
        assert g.source.strip() and g.retrieved, g.name
        assert g.as_of == "unknown" or DOC_DATE.fullmatch(g.as_of), g.name


@pytest.mark.parametrize("name", ["M1-Max-64GB", "M2-Ultra-192GB", "M3-Ultra-512GB", "M4-Max-128GB",
                                  "M4-Pro-64GB", "M3-Max-36GB", "M1-Pro-16GB", "M2-Max-96GB"])
def test_apple_rows_resolve(name: str) -> None:
    g = resolve_gpu(name)
    assert g.kind == "apple" and g.vendor == "apple" and g.unified_memory


# Apple newsroom figures: (memory GB, bandwidth GB/s, GPU cores of the row)
APPLE = {"M1-Max-64GB": (64, 400, 32), "M1-Ultra-128GB": (128, 800, 64), "M2-Ultra-192GB": (192, 800, 76),
         "M3-Ultra-512GB": (512, 819, 80), "M3-Pro-18GB": (18, 150, 18), "M4-Pro-64GB": (64, 273, 20),
         "M4-Max-128GB": (128, 546, 40), "M2-Pro-32GB": (32, 200, 19)}


@pytest.mark.parametrize("name", sorted(APPLE))
def test_apple_spot_values(name: str) -> None:
    gb, bw, cores = APPLE[name]
    g = resolve_gpu(name)
    assert g.memory_bytes == gb * GiB and g.hbm_bytes_per_second == bw * 1e9
    assert g.gpu_cores == cores


def test_binned_max_chips_have_their_own_bandwidth() -> None:
    """Apple MacBook Pro specs: the 30-core M3 Max has 300 GB/s, the 32-core M4 Max 410 GB/s."""
    assert resolve_gpu("M3-Max-36GB").hbm_bytes_per_second == 300e9
    assert resolve_gpu("M3-Max-48GB").hbm_bytes_per_second == 400e9
    assert resolve_gpu("M4-Max-36GB").hbm_bytes_per_second == 410e9


def test_apple_flops_follow_the_secondary_figures() -> None:
    """hmc-tech.com: 60-core M2 Ultra 21.47 TFLOPS FP32, 40-core M3 Max 14.32, 38-core M2 Max 13.6; the 76-core
    M2 Ultra by exact arithmetic 76 x 128 x 2 x 1.398 GHz = 27.20."""
    assert resolve_gpu("M3-Max-64GB").flops("fp32") == pytest.approx(14.32e12, rel=2e-3)
    assert resolve_gpu("M2-Max-96GB").flops("fp32") == pytest.approx(13.6e12, rel=3e-3)
    assert resolve_gpu("M2-Ultra-192GB").flops("fp16") == pytest.approx(27.20e12, rel=2e-3)
    assert resolve_gpu("M3-Ultra-512GB").flops("fp16") is None      # no clock read for M3 Ultra
    # hmc-tech: 16-core M4 Pro 6.02 TFLOPS at 1470 MHz -> 20 cores x 128 x 2 x 1.47 GHz
    assert resolve_gpu("M4-Pro-64GB").flops("fp32") == pytest.approx(20 * 128 * 2 * 1.47e9, rel=1e-3)
    assert resolve_gpu("M4-Pro-24GB").flops("fp32") * 16 / 20 == pytest.approx(6.02e12, rel=2e-3)


def test_wired_fraction_rule() -> None:
    """llama.cpp logs: recommendedMaxWorkingSetSize 11453.25 MB on 16 GiB (2/3), 28991.03 MB on 36 GiB (3/4)."""
    assert resolve_gpu("M1-Pro-16GB").gpu_wired_fraction == pytest.approx(11453.25e6 / (16 * GiB), abs=1e-3)
    assert resolve_gpu("M3-Max-36GB").gpu_wired_fraction == pytest.approx(28991.03e6 / (36 * GiB), abs=1e-3)
    assert resolve_gpu("M2-Ultra-192GB").gpu_wired_fraction == 0.75
    assert "iogpu.wired_limit_mb" in resolve_gpu("M2-Ultra-192GB").notes


@pytest.mark.parametrize("name, gb, bw_gb_s, bf16_tflops, pcie", [
    ("RTX-3080", 10, 760, 59.5, "gen4 x16"),        # GA102 whitepaper appendix (FP32 accumulate)
    ("RTX-4080", 16, 716.8, 97.5, "gen4 x16"),      # Ada whitepaper appendix
    ("RTX-5080", 16, 960, 113, "gen5 x16"),         # compilation of the RTX Blackwell whitepaper
    ("RTX-5070-TI", 16, 896, 88, "gen5 x16"),
    ("RTX-3060-12GB", 12, 360, None, "gen4 x16"),
    ("RTX-4060-TI-16GB", 16, 288, None, "gen4 x8"),
    ("RTX-5060-TI-16GB", 16, 448, None, "gen5 x8"),
    ("RTX-4070-TI-SUPER", 16, 672.3, None, "gen4 x16"),
    ("RTX-4090D", 24, 1008, None, "gen4 x16"),
    ("ARC-PRO-B60", 24, 456, 98.3, "gen5 x8"),      # hmc-tech: 98.3 TFLOPS XMX FP32-acc
    ("RX-7900-XTX", 24, 960, 122.88, "gen4 x16"),   # DERIVED: GPUOpen RDNA 3 512 FLOPS/clk/CU x 96 x 2.5 GHz
    ("RADEON-AI-PRO-R9700", 32, 640, 191, "gen5 x16"),   # vesper TARGET.md: 'Peak bandwidth 640 GB/s'; AMD page
    # 'Peak Half Precision (FP16 Matrix)' 191 dense; bf16 = fp16 per GPUOpen RDNA 4 (1024/clk/CU both)
])
def test_consumer_gpu_spot_values(name: str, gb: int, bw_gb_s: float, bf16_tflops: float | None, pcie: str) -> None:
    g = resolve_gpu(name)
    assert g.kind == "gpu" and g.memory_bytes == gb * GiB
    assert g.hbm_bytes_per_second == pytest.approx(bw_gb_s * 1e9)
    assert g.pcie == pcie
    lanes = int(pcie.split("x")[1])
    per_lane = {"gen4": 2e9, "gen5": 4e9}[pcie.split()[0]]
    assert g.interconnect.kind == "pcie" and g.interconnect.per_direction_bytes_per_second == lanes * per_lane
    if bf16_tflops is None:
        assert g.flops("bf16") is None and g.supports("bf16")
    else:
        assert g.flops("bf16") == pytest.approx(bf16_tflops * 1e12, rel=1e-3)


# Rows added 2026-12-02 for the llama.cpp validation rows: (memory GiB, bandwidth GB/s, fp16 TFLOPS or None, pcie)
# typed from each row's cited source: NVIDIA Turing blog Table 1 (2080 Ti reference FP16 FP32-acc 53.8), GA102
# whitepaper appendix as compiled (3070: 40.6), the A4000 datasheet's 153.4 sparse halved; AMD fp16 DERIVED as
# GPUOpen FLOPS/clock/CU x CUs x AMD's boost clock (RDNA 3 512, RDNA 4 1024).
NEW_CONSUMER = {
    "RTX-2080-TI": (11, 616, 53.8, "gen3 x16"),
    "RTX-3070": (8, 448, 40.6, "gen4 x16"),
    "RTX-A4000": (16, 448, 153.4 / 2, "gen4 x16"),
    "RTX-4070": (12, 504, 58, "gen4 x16"),
    "RX-7900-XT": (20, 800, 512 * 84 * 2.4e9 / 1e12, "gen4 x16"),
    "RX-7800-XT": (16, 624, 512 * 60 * 2.43e9 / 1e12, "gen4 x16"),
    "RX-9070": (16, 640, 1024 * 56 * 2.52e9 / 1e12, "gen5 x16"),
    "RX-9060-XT-16GB": (16, 320, 1024 * 32 * 3.13e9 / 1e12, "gen5 x16"),
    "RTX-4070-SUPER": (12, 504, None, "unknown"),
    "RTX-3080-TI": (12, 912, None, "unknown"),
    "RADEON-PRO-W7900": (48, 864, 122.64, "unknown"),  # AMD 'peak half precision' 122.64 = 512 x 96 x 2.4951 GHz
    "ARC-A770-16GB": (16, 560, None, "gen4 x16"),
}


@pytest.mark.parametrize("name", sorted(NEW_CONSUMER))
def test_new_consumer_rows(name: str) -> None:
    gb, bw, fp16, pcie = NEW_CONSUMER[name]
    g = resolve_gpu(name)
    assert g.memory_bytes == gb * GiB and g.hbm_bytes_per_second == pytest.approx(bw * 1e9) and g.pcie == pcie
    assert g.supports("fp16") and g.retrieved == "2026-12-02"
    if fp16 is None:
        assert g.flops("fp16") is None
    else:
        assert g.flops("fp16") == pytest.approx(fp16 * 1e12, rel=2e-3)


def test_cards_without_a_matrix_unit_have_no_16_bit_rate() -> None:
    """Tesla P40 (Pascal) and RDNA 2 Radeons: no tensor/matrix path, so the header rule omits fp16/bf16; llama.cpp
    still reads F16 weights (weight-only) and the K-quants."""
    from rigsize.model import formats as F

    for name, arch in (("TESLA-P40", "pascal"), ("RX-6800-XT", "rdna2"), ("RX-6700-XT", "rdna2")):
        g = resolve_gpu(name)
        assert g.architecture == arch and set(g.dense_flops) == {"fp32"} and g.flops("fp32")
        assert not g.supports("fp16") and not g.supports("bf16") and g.fp8_variant is None
        assert F.gpu_runs("fp16", arch) == "weight-only" and F.gpu_runs("q4_k_m", arch) == "weight-only"
        assert F.gpu_runs("bf16", arch) == "no"
    assert resolve_gpu("Tesla P40").memory_bytes == 24 * GiB and resolve_gpu("P40").gpus_per_node == 8


def test_apus() -> None:
    spark, strix = resolve_gpu("DGX Spark"), resolve_gpu("AMD Ryzen AI Max+ 395 128GB")
    assert spark.kind == strix.kind == "apu" and spark.memory_bytes == strix.memory_bytes == 128 * GiB
    assert spark.hbm_bytes_per_second == 273e9 and strix.hbm_bytes_per_second == 256e9
    assert spark.flops("fp4") == 1e15 / 2 and spark.sparse_flops["fp4"] == 1e15   # "1 PFLOP FP4 with sparsity"
    assert strix.hbm_bytes_per_second == 8000e6 * 256 / 8                          # LPDDR5X-8000, 256-bit


# CPU spot values: (channels, MT/s, cores) from the vendors' spec pages
CPUS = {"RYZEN-9-9950X": (2, 5600, 16), "CORE-I9-14900K": (2, 5600, 24), "THREADRIPPER-PRO-7995WX": (8, 5200, 96),
        "EPYC-9654": (12, 4800, 96), "EPYC-9755": (12, 6400, 128), "XEON-PLATINUM-8480+": (8, 4800, 56),
        "XEON-6980P": (12, 6400, 128), "XEON-6980P-MRDIMM": (12, 8800, 128)}


@pytest.mark.parametrize("name", sorted(CPUS))
def test_cpu_rows(name: str) -> None:
    ch, mts, cores = CPUS[name]
    c = resolve_cpu(name)
    assert c.kind == "cpu" and c.memory_channels == ch and c.cores == cores and c.memory_mt_per_s == mts
    assert c.memory_bytes_per_second == ch * 8 * mts * 1e6            # channels x 8 bytes x MT/s
    assert c.source.strip() and c.retrieved and (c.as_of == "unknown" or DOC_DATE.fullmatch(c.as_of))
    assert "x 8 bytes x" in c.notes
    assert c.measured_bytes_per_second == "unknown" or c.measured_bytes_per_second <= c.memory_bytes_per_second


def test_cpu_flops_arithmetic_is_named() -> None:
    """EPYC 9654: 96 cores x 2.4 GHz x 32 FP32 FLOP/cycle (Zen 4) = 7.3728 TFLOPS."""
    assert resolve_cpu("EPYC-9654").fp32_flops == pytest.approx(96 * 2.4e9 * 32, rel=1e-3)
    for c in cpu_catalog():
        if c.fp32_flops != "unknown":
            assert "fp32_flops =" in c.notes, c.name


def test_cpu_names_are_unique_and_unknown_names_suggest() -> None:
    seen: set[str] = set()
    for c in cpu_catalog():
        for n in (c.name, *c.aliases):
            k = re.sub(r"[\s_\-]+", "-", n.strip().lower())
            assert k not in seen, n
            seen.add(k)
    with pytest.raises(HardwareError, match="did you mean EPYC-9654"):
        resolve_cpu("EPYC-965")
    with pytest.raises(HardwareError) as err:
        resolve_cpu("no such cpu")
    assert "\n" not in str(err.value)
