"""The GPU catalog: schema, units, uniqueness, sources and dates, and no sparsity
figure in the dense table.  Spot values are checked against the vendors' datasheets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rigsize.errors import HardwareError
from rigsize.hardware.gpus import _key, catalog, load_gpu_spec, resolve_gpu
from rigsize.units import GiB

REQUIRED = ["A100-SXM-40GB", "A100-SXM-80GB", "A100-PCIE-40GB", "A100-PCIE-80GB", "A800-SXM-80GB",
            "H100-SXM-80GB", "H100-PCIE-80GB", "H100-NVL-94GB", "H800-SXM-80GB", "H200-SXM-141GB",
            "L40S", "L20", "L4", "A10", "A10G", "T4", "RTX-3090", "RTX-4090", "RTX-5090", "MI300X",
            "MI325X", "GB200", "B300", "GB300", "GH200-96GB", "L40", "A40", "RTX-A6000", "MI250X", "MI355X",
            "MI350X", "GAUDI2", "A30", "RTX-6000-ADA", "A800-PCIE-80GB", "H800-PCIE-80GB", "ASCEND-910C",
            "HYGON-K100", "KUNLUN-P800"]


def test_catalog_has_every_required_sku() -> None:
    names = {g.name for g in catalog()}
    for name in REQUIRED:
        assert resolve_gpu(name).name in names
    for prefix in ("H20", "B200", "RTX-PRO-6000", "GAUDI3", "ASCEND-910B"):
        assert any(n.startswith(prefix) for n in names), prefix


def test_names_and_aliases_are_unique() -> None:
    seen: dict[str, str] = {}
    for g in catalog():
        for n in (g.name, *g.aliases):
            assert _key(n) not in seen or seen[_key(n)] == g.name, n
            seen[_key(n)] = g.name


DOC_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
READ_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
SECONDARY_ONLY = {"A10G", "A800-SXM-80GB", "H800-SXM-80GB", "H20-96GB", "H20-141GB", "L20", "ASCEND-910B",
                  "GAUDI2", "A30", "RTX-6000-ADA", "A800-PCIE-80GB", "H800-PCIE-80GB",
                  "ASCEND-910C", "HYGON-K100", "KUNLUN-P800"}


def test_every_row_has_source_and_dates() -> None:
    """as_of is the source document's own date (or "unknown"); retrieved is when it was read."""
    for g in catalog():
        assert g.source.strip(), g.name
        assert g.as_of == "unknown" or DOC_DATE.fullmatch(g.as_of), (g.name, g.as_of)
        assert g.retrieved and READ_DATE.fullmatch(g.retrieved), (g.name, g.retrieved)
        assert g.as_of == "unknown" or g.as_of <= g.retrieved, (g.name, "document after reading")


def test_rows_without_a_vendor_datasheet_say_secondary() -> None:
    kinds = {g.name: g.source_kind for g in catalog()}
    for name in SECONDARY_ONLY:
        assert kinds[name] == "secondary", name
    for g in catalog():
        if g.source_kind == "secondary":
            assert "secondary" in g.source.lower() or "secondary" in g.notes.lower(), g.name


def test_units_are_plausible() -> None:
    """Bytes, bytes/s, FLOP/s: a units slip (GB for bytes, TFLOPS for FLOP/s) fails these."""
    for g in catalog():
        assert 8 * GiB <= g.memory_bytes <= 512 * GiB, g.name
        if g.memory_bytes_visible != "unknown":
            assert 0.85 * g.memory_bytes <= g.memory_bytes_visible <= g.memory_bytes, g.name
        if g.hbm_bytes_per_second != "unknown":
            assert 1e11 <= g.hbm_bytes_per_second <= 2e13, g.name
        for dtype, flops in g.dense_flops.items():
            if flops != "unknown":
                assert 1e12 <= flops <= 2e16, (g.name, dtype)


BLACKWELL_ULTRA = {"B300", "GB300"}


def test_no_sparsity_figure_in_dense_table() -> None:
    """Where a datasheet prints both, sparse is 2x dense; and within one GPU, halving
    the width never more than doubles dense throughput (a sparse figure would 4x)."""
    order = ["tf32", "bf16", "fp8", "fp4"]
    for g in catalog():
        for dtype, sparse in g.sparse_flops.items():
            dense = g.dense_flops.get(dtype)
            if isinstance(sparse, float) and isinstance(dense, float):
                assert sparse / dense == pytest.approx(2.0, rel=0.02), (g.name, dtype)
        if re.match(r"RTX-\d", g.name):
            continue  # GeForce: FP8 with FP32 accumulate runs at half rate, FP4 does not (RTX Blackwell whitepaper, Table 3)
        # Blackwell Ultra raised dense FP4 alone: FP8 4.5 PF -> FP4 13.5 PF dense per HGX B300 GPU (NVIDIA HGX
        # page "144 PFLOPS | 108 PFLOPS" sparse | dense per 8 GPUs), so its FP4 step is exempt
        steps = order[:-1] if g.name in BLACKWELL_ULTRA else order
        known = [(d, g.flops(d)) for d in steps if g.flops(d)]
        for (d1, f1), (d2, f2) in zip(known, known[1:]):
            assert f2 / f1 <= 2.05, (g.name, d1, d2)


@pytest.mark.parametrize("name, bf16_tflops, hbm_tb_s, mem_gib", [
    ("H100", 989.4, 3.35, 80),       # NVIDIA H100 datasheet / Hopper whitepaper: 989.4 dense BF16, 3.35 TB/s
    ("A100-SXM-80GB", 312, 2.039, 80),  # NVIDIA A100 datasheet: 312 BF16 dense, 2,039 GB/s
    ("H200", 989.4, 4.8, 141),       # NVIDIA H200 datasheet: same compute as H100 SXM, 4.8 TB/s
    ("MI300X", 1307.4, 5.3, 192),    # AMD Instinct MI300X datasheet: 1307.4 TFLOPS FP16/BF16 dense, 5.3 TB/s
])
def test_datasheet_spot_values(name: str, bf16_tflops: float, hbm_tb_s: float, mem_gib: int) -> None:
    g = resolve_gpu(name)
    assert g.flops("bf16") == pytest.approx(bf16_tflops * 1e12, rel=0.002)
    assert g.hbm_bytes_per_second == pytest.approx(hbm_tb_s * 1e12, rel=0.01)
    assert g.memory_bytes == mem_gib * GiB


def test_dtype_support_rules() -> None:
    assert not resolve_gpu("V100-SXM2-32GB").supports("bf16")
    assert not resolve_gpu("T4").supports("bf16")
    assert not resolve_gpu("A100-SXM-80GB").supports("fp8")
    assert resolve_gpu("H100").supports("fp8") and resolve_gpu("L40S").supports("fp8")
    assert resolve_gpu("MI300X").fp8_variant == "e4m3fnuz"


@pytest.mark.parametrize("alias", ["h100", "H100-SXM-80GB", "h100 sxm 80gb", "H100_SXM_80GB"])
def test_aliases_resolve(alias: str) -> None:
    assert resolve_gpu(alias).name == "H100-SXM-80GB"


def test_unknown_gpu_suggests_close_names() -> None:
    with pytest.raises(HardwareError, match="did you mean"):
        resolve_gpu("H100-SMX")


def test_gpu_spec_file(tmp_path: Path) -> None:
    spec = tmp_path / "mygpu.toml"
    spec.write_text('''
name = "MYGPU-64GB"
vendor = "nvidia"
architecture = "hopper"
memory_bytes = 68719476736
hbm_bytes_per_second = 2.0e12
dense_flops = { bf16 = 500e12, fp8 = 1000e12 }
interconnect = { kind = "pcie", per_direction_bytes_per_second = 64e9 }
gpus_per_node = 4
tdp_watts = 400
source = "vendor sheet"
as_of = "2026-11-27"
''')
    g = load_gpu_spec(spec)
    assert g.name == "MYGPU-64GB" and g.flops("fp8") == 1e15


@pytest.mark.parametrize("body, expect", [
    ('name = "X"', "field"),
    ("not toml at all [", "not valid TOML"),
    ('name="X"\nvendor="n"\narchitecture="a"\nmemory_bytes=-5\nhbm_bytes_per_second=1e12\ndense_flops={bf16=1e12}\n'
     'interconnect={kind="pcie", per_direction_bytes_per_second=1e9}\ngpus_per_node=1\ntdp_watts=1\nsource="s"\nas_of="d"',
     "memory_bytes"),
])
def test_gpu_spec_errors_are_one_line(tmp_path: Path, body: str, expect: str) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text(body)
    with pytest.raises(HardwareError) as err:
        load_gpu_spec(spec)
    assert expect in str(err.value) and "\n" not in str(err.value)


# AcceleratorName values of skypilot-org/skypilot-catalog catalogs/v7/common/accelerators.csv (read 2026-12-01),
# plus names SkyPilot's `sky show-gpus -a` lists (skypilot-org/skypilot docs/source/compute/show-gpus-all.txt, 1c9d60b)
SKYPILOT_NAMES = {"A10", "A100", "A100-80GB", "A100-80GB-SXM", "A10G", "A40", "A4000", "A6000", "B200", "GH200",
                  "H100", "H100-MEGA", "H100-NVL", "H100-NVLINK", "H100-SXM", "H200", "H200-SXM", "L4", "L40",
                  "L40S", "MI300X", "RTX3090", "RTX4090", "RTX5090", "RTX6000-Ada", "RTXA6000", "T4",
                  "V100", "V100-32GB", "A800", "RTX3060", "RTX5080"}


def test_skypilot_names_are_catalog_names_and_unique() -> None:
    seen: dict[str, str] = {}
    for g in catalog():
        if g.skypilot_name is None:
            continue
        assert g.skypilot_name in SKYPILOT_NAMES, g.name
        assert seen.setdefault(g.skypilot_name, g.name) == g.name, g.skypilot_name


@pytest.mark.parametrize("sky, name", [("H100", "H100-SXM-80GB"), ("A100-80GB", "A100-SXM-80GB"),
                                       ("A100", "A100-SXM-40GB"), ("V100-32GB", "V100-SXM2-32GB"),
                                       ("L40S", "L40S"), ("MI300X", "MI300X"), ("B200", "B200-180GB")])
def test_skypilot_name_maps_to_row(sky: str, name: str) -> None:
    assert next(g.name for g in catalog() if g.skypilot_name == sky) == name


# Spot values for the rows added 2026-12-01 (issue 14), written from each row's cited source:
# name -> {field: value}; flops in TFLOPS (dense), bandwidth in TB/s, memory in GB as printed, power in W.
ADDED_SPOT_VALUES: dict[str, dict[str, float]] = {
    # Blackwell Ultra datasheet, HGX B300 column; FP4 dense = HGX page 108 PF / 8
    "B300": {"bf16": 2250, "fp8": 4500, "fp4": 13500, "int8": 153.5, "fp64": 1.2, "hbm": 7.7, "gb": 270, "w": 1100},
    # Blackwell Ultra datasheet, GB300 column (FP4 20 | 15 PF); GB300 NVL72 page 1,080 PF dense / 72
    "GB300": {"bf16": 2500, "fp8": 5000, "fp4": 15000, "int8": 165, "fp64": 1.3, "hbm": 8.0, "gb": 279, "w": 1400},
    # NVIDIA L40 datasheet table (reseller copy): BF16 181.05 | 362.1*, FP8 362 | 724*, 864 GB/s, 300 W
    "L40": {"bf16": 181.05, "fp8": 362, "int8": 362, "fp32": 90.5, "hbm": 0.864, "gb": 48, "w": 300},
    # NVIDIA A40 datasheet (reseller copy): BF16 149.7 | 299.4*, INT8 299.3 | 598.6*, 696 GB/s, 300 W
    "A40": {"bf16": 149.7, "tf32": 74.8, "int8": 299.3, "fp32": 37.4, "hbm": 0.696, "gb": 48, "w": 300},
    # GA102 whitepaper v2 Table 3, RTX A6000: BF16 154.8/309.6, INT8 309.7/619.4, 768 GB/sec
    "RTX-A6000": {"bf16": 154.8, "int8": 309.7, "hbm": 0.768, "gb": 48},
    # NVIDIA GH200 datasheet, GH200 column: BF16 1,979* | 990, FP8 3,958* | 1,979, INT8 1,979 TOPS dense, TF32 494,
    # FP64 34, FP32 67 teraFLOPS, 96GB HBM3, up to 4TB/s
    "GH200-96GB": {"bf16": 990, "fp16": 990, "fp8": 1979, "int8": 1979, "tf32": 494, "fp64": 34, "fp32": 67,
                   "hbm": 4.0, "gb": 96},
    # AMD CDNA 2 white paper Table 1, MI250X package / 2 GCDs: 47.9 TF FP64 vector, 383.0 TF FP16/BF16,
    # 383.0 TOPS INT8, 128 GB, 3.2 TB/s (ROCm MI250 page: 1.6 TB/s per GCD), 560 W
    "MI250X": {"bf16": 191.5, "fp16": 191.5, "int8": 191.5, "fp64": 23.95, "fp32": 23.95, "hbm": 1.6, "gb": 64,
               "w": 280},
    # ROCm 10.0.0 MI350 Series architecture note, MI355X column; product page 1400 W
    "MI355X": {"bf16": 2500, "fp8": 5000, "int8": 5000, "mxfp4": 10000, "mxfp6": 10000, "fp32": 157.3,
               "fp64": 78.6, "hbm": 8.0, "gb": 288, "w": 1400},
    # same table, MI350X column; product page 1000 W
    "MI350X": {"bf16": 2300, "fp8": 4600, "int8": 4600, "mxfp4": 9200, "fp32": 144.2, "fp64": 72.1, "hbm": 8.0,
               "gb": 288, "w": 1000},
    # secondary: dstack's Gaudi 2 | Gaudi 3 table (BF16 432, FP8 865 TFLOPs, 96 GB, 2.46 TB/s); 600 W (yobitel)
    "GAUDI2": {"bf16": 432, "fp8": 865, "hbm": 2.46, "gb": 96, "w": 600},
    # second pass, 2026-12-01:
    # 'GPU Performance (Data Sheets) Quick Reference (2023)', A30 column: 165 W, 24GB HBM2, 933GB/s, FP32 10.3,
    # BF16/FP16 TensorCore 165 TFLOPS, INT8 330 TOPS
    "A30": {"bf16": 165, "fp16": 165, "int8": 330, "fp32": 10.3, "hbm": 0.933, "gb": 24, "w": 165},
    # vendor listing of NVIDIA's RTX 6000 Ada spec: 48 GB GDDR6 ECC, 960 GB/s, FP32 91.1 TFLOPS, Max TDP 300W
    "RTX-6000-ADA": {"fp32": 91.1, "hbm": 0.960, "gb": 48, "w": 300},
    # quick-reference table, 'A800 (PCIe/SXM)': 300/400 watt, 80G HBM2e (rates blank there)
    "A800-PCIE-80GB": {"gb": 80, "w": 300},
    # same table, 'H800 (PCIe/SXM)': 80G (power and rates blank there)
    "H800-PCIE-80GB": {"gb": 80},
    # npu-smi on an Atlas A3 (910C) node: HBM 65536 MB per chip, two chips per module
    "ASCEND-910C": {"gb": 64},
    # hblas-bench DCU-bench.md, K100: FP64/FP32 24.5 TFLOPS, FP16 100 TFLOPS, INT8 200 TOPS, 64GB
    "HYGON-K100": {"fp64": 24.5, "fp32": 24.5, "fp16": 100, "int8": 200, "gb": 64},
    # HAMi pkg/device/kunlun/vdevice.go: KunlunMaxMemory = 98304 (MiB) for a P800-OAM card
    "KUNLUN-P800": {"gb": 98304 / 1024},
}


@pytest.mark.parametrize("name", sorted(ADDED_SPOT_VALUES))
def test_added_rows_match_their_sources(name: str) -> None:
    g = resolve_gpu(name)
    for key, want in ADDED_SPOT_VALUES[name].items():
        if key == "hbm":
            assert g.hbm_bytes_per_second == pytest.approx(want * 1e12, rel=1e-3), key
        elif key == "gb":
            assert g.memory_gb == want and g.memory_bytes == int(want * GiB), key
        elif key == "w":
            assert g.tdp_watts == want, key
        else:
            assert g.flops(key) == pytest.approx(want * 1e12, rel=1e-3), key


def test_fixed_rows_match_their_sources() -> None:
    """The issue-14 fixes, each from its vendor document."""
    assert resolve_gpu("H200-NVL").hbm_bytes_per_second == 4.8e12            # H200 product page
    assert resolve_gpu("RTX-4090").flops("fp32") == 82.6e12                  # Ada whitepaper Appendix A Table 2
    assert resolve_gpu("RTX-3090").flops("int8") == 284e12                   # GA102 whitepaper Appendix A Table 9
    assert resolve_gpu("RTX-3090").sparse_flops["int8"] == 568e12
    g3 = resolve_gpu("GAUDI3")                                               # Intel vLLM plugin scales; Gaudi 3 WP
    assert g3.fp8_variant == "e4m3fn" and not g3.supports("int8")


def test_cdna4_keeps_ocp_mx_formats_apart_from_nvfp4() -> None:
    """MI350X/MI355X: MXFP4 is OCP microscaling, not NVFP4 (ROCm MI350 note); FP8 is OCP e4m3fn, not fnuz;
    no TF32 matrix path; and one MI250X device is one GCD (half the CDNA 2 white paper's package)."""
    for name in ("MI355X", "MI350X"):
        g = resolve_gpu(name)
        assert not g.supports("fp4") and not g.supports("tf32") and g.fp8_variant == "e4m3fn"
    assert resolve_gpu("MI250X").memory_bytes * 2 == 128 * GiB


def test_gpus_and_formats_never_disagree() -> None:
    """Every catalog GPU's architecture has a formats.toml [arch.*] row, and the two files agree on
    which formats run natively and on the FP8 encoding: a dtype with a dense rate (known or "unknown")
    in gpus.toml is a native format in formats.toml and vice versa."""
    from rigsize.model import formats as F

    paired = {"bf16": "bf16", "fp16": "fp16", "fp8": "fp8", "int8": "int8", "fp4": "nvfp4"}
    for g in catalog():
        assert g.architecture in F.architectures(), (g.name, g.architecture)
        arch = F.arch_support(g.architecture)
        for dtype, fmt in paired.items():
            assert g.supports(dtype) == (fmt in arch.native), (g.name, dtype, fmt)
        if g.supports("fp8"):
            assert g.fp8_variant == arch.fp8_variant, (g.name, g.fp8_variant, arch.fp8_variant)
        else:
            assert g.fp8_variant is None and arch.fp8_variant == "none", g.name


def test_second_pass_rows_say_what_one_device_is() -> None:
    """Ascend 910C is one die (npu-smi shows two 64 GB NPUs per package); the export PCIe parts keep
    NVLink at 400 GB/s total; tensor rates that no source read printed stay unknown, not copied."""
    c = resolve_gpu("ASCEND-910C")
    assert c.memory_bytes == c.memory_bytes_visible == 64 * GiB and c.gpus_per_node == 16
    assert not c.supports("fp8")
    for name in ("A800-PCIE-80GB", "H800-PCIE-80GB"):
        g = resolve_gpu(name)
        assert g.interconnect.per_direction_bytes_per_second == 200e9
        assert g.flops("bf16") is None and g.supports("bf16")
    assert resolve_gpu("RTX-6000-ADA").flops("fp8") is None and resolve_gpu("RTX6000-Ada").name == "RTX-6000-ADA"
    k = resolve_gpu("HYGON-K100")
    assert not k.supports("bf16") and not k.supports("fp8") and k.supports("int8")
    assert resolve_gpu("A800").name == "A800-SXM-80GB" and resolve_gpu("H800").name == "H800-SXM-80GB"


def test_mi325x_rates_from_the_cdna3_white_paper() -> None:
    """AMD CDNA 3 white paper (2025 revision), Table 2, MI325X column: FP64 vector 81.7 TF, INT8 2,614.9 TOPs
    dense and 5,229.8 with sparsity, TF32 653.7 | 1,307.4, FP16/BF16 1,307.4 | 2,614.9 (issue 14: FP64 and
    INT8 were "unknown")."""
    g = resolve_gpu("MI325X")
    assert g.flops("fp64") == pytest.approx(81.7e12) and g.flops("int8") == pytest.approx(2614.9e12)
    assert g.sparse_flops["int8"] == pytest.approx(5229.8e12) and g.sparse_flops["tf32"] == pytest.approx(1307.4e12)
    assert g.flops("tf32") == pytest.approx(653.7e12) and g.sparse_flops["bf16"] == pytest.approx(2614.9e12)
    assert g.as_of == "2025-04-09" and g.source_kind == "primary"


@pytest.mark.parametrize("printed, name", [
    ("NVIDIA B300 SXM6 AC", "B300"),              # torch.cuda.get_device_name(), NVIDIA/cosmos-framework PR #114
    ("AMD-Instinct-MI300X-OAM", "MI300X"),        # Ray amd_product_dict 0x74a1
    ("AMD-Instinct-MI325X-OAM", "MI325X"),        # 0x74a5
    ("AMD-Instinct-MI350X-OAM", "MI350X"),        # 0x75a0
    ("AMD-Instinct-MI355X-OAM", "MI355X"),        # 0x75a3
    ("NVIDIA GH200 480GB", "GH200-96GB"),         # CUDA device name, mredenti/PowerCapping OpenCL_benchmark.md
])
def test_names_runtimes_print_resolve(printed: str, name: str) -> None:
    assert resolve_gpu(printed).name == name


def test_skypilot_rtx5080_is_the_16gb_card() -> None:
    """`sky show-gpus -a` lists RTX5080; the RTX 5080 ships in one memory size (16 GB)."""
    assert next(g.name for g in catalog() if g.skypilot_name == "RTX5080") == "RTX-5080"


def test_kunlun_p800_claims_only_what_its_sources_show() -> None:
    """No vendor rate is published: every rate unknown; fp16 and int8 (W8A8) are the dtypes Baidu's vLLM plugin
    runs, bf16/fp8 are not claimed; W4A16 weight-only formats run (vLLM-Kunlun quantization guide)."""
    from rigsize.model import formats as F

    g = resolve_gpu("Kunlunxin P800 OAM")
    assert g.name == "KUNLUN-P800" and g.memory_bytes == 98304 * 2**20
    assert all(v == "unknown" for v in g.dense_flops.values()) and g.hbm_bytes_per_second == "unknown"
    assert g.supports("fp16") and g.supports("int8") and not g.supports("bf16") and not g.supports("fp8")
    assert {"awq-int4", "gptq-int4", "w4a16"} <= F.arch_support("kunlun3").weight_only


def test_a_gpu_specs_pcie_link_must_be_a_pcie_generation_and_width() -> None:
    import pytest
    from pydantic import ValidationError

    from rigsize.hardware.gpus import resolve_gpu

    row = resolve_gpu("H100-SXM-80GB").model_dump()
    for bad in ("gen5 x0", "gen9 x16", "fast"):
        with pytest.raises(ValidationError):
            type(resolve_gpu("H100-SXM-80GB")).model_validate({**row, "pcie": bad})
    assert type(resolve_gpu("H100-SXM-80GB")).model_validate({**row, "pcie": "gen4 x8"}).pcie == "gen4 x8"
