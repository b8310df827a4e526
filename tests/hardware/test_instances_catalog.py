"""The packaged instance catalog (src/rigsize/data/instances.toml, issue 15): schema, uniqueness,
GPU names and memory against gpus.toml, prices, and a few figures read from the sources.

The spot values are transcribed from the files named in each row's `source` (read 2026-12-01):

* skypilot-org/skypilot-catalog@2c3d7ea7 catalogs/v9/gcp/vms.csv, us-central1:
  host row  ``a3-highgpu-8g,208.0,1872.0,,,,us-central1,us-central1-a,9.46006,5.15632``;
  GPU row   ``,,,H100,8,{...81920...},us-central1,us-central1-a,33.60609,42.7096``;
  host row  ``g2-standard-48,48.0,192.0,,,,us-central1,us-central1-a,1.7615,0.90019``;
  GPU row   ``,,,L4,4,{...24576...},us-central1,us-central1-a,2.24016,1.1448``.
  GCP prices the GPUs apart from the machine, so instance = host + accelerator row.
* skypilot-org/skypilot-catalog@a5be5386 catalogs/v9/oci/vms.csv: ``BM.GPU.H100.8,H100,8,224,2048,...,80,,eu-amsterdam-1,...``.
* skypilot-org/skypilot-catalog@d9bf3aa4 catalogs/v9/nebius/vms.csv:
  ``gpu-h200-sxm_8gpu-128vcpu-1600gb,H200,8,128,1600,28.00,us-central1,...,11.60``.
* skypilot-org/skypilot-catalog@098741e7 catalogs/v6/azure/vms.csv (an older catalog version; Azure
  has no vms.csv in v7-v9), eastus:
  ``Standard_ND96amsr_A100_v4,A100-80GB,8,96.0,1800,A100-80GB,32.77,3.6047,eastus,V2``;
  ``Standard_NC24ads_A100_v4,A100-80GB,1,24.0,220,A100-80GB,3.673,0.444433,eastus,V2``;
  ``Standard_ND96isr_H100_v5,H100,12,96.0,1900,H100,98.32,98.32,eastus,V2`` (count 12 is the file's
  error, the size has 8 GPUs; SpotPrice = Price, a copy, so spot is left unknown).
* coreweave.com/pricing as transcribed in api-evangelist/coreweave@27bcc25e
  plans/coreweave-plans-pricing.yml (2026-09-20): ``NVIDIA HGX H100 (on-demand)`` ``$49.24``,
  8 GPUs, ``Spot Price: $19.71 / Hour (NA)``.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from importlib import resources

import pytest

from rigsize.hardware.instances import packaged

REQUIRED = ("provider", "name", "gpus", "source", "as_of", "retrieved")
PRICE_KEYS = ("price_on_demand_per_hour", "price_spot_per_hour", "price_1y_per_hour", "price_3y_per_hour")
PRICE_WORDS = {"unknown", "not offered"}


def _load(name: str) -> dict:
    return tomllib.loads(resources.files("rigsize.data").joinpath(name).read_text())


ROWS = _load("instances.toml")["instance"]
GPUS = {g["name"]: g for g in _load("gpus.toml")["gpu"]}


def _row(provider: str, name: str) -> dict:
    (row,) = [r for r in ROWS if r["provider"] == provider and r["name"] == name]
    return row


def test_every_row_has_the_schema_fields() -> None:
    for r in ROWS:
        missing = [k for k in REQUIRED if k not in r]
        assert not missing, (r.get("provider"), r.get("name"), missing)
        assert r["retrieved"] == "2026-12-01"
        assert r["as_of"] == "unknown" or r["as_of"][:4].isdigit(), r["name"]
        assert str(r["source"]).strip(), r["name"]


def test_provider_name_region_is_unique() -> None:
    keys = Counter((r["provider"], r["name"], r.get("price_region", "")) for r in ROWS)
    assert [k for k, n in keys.items() if n > 1] == []


def test_real_rows_name_a_catalog_gpu() -> None:
    for r in ROWS:
        if r.get("placeholder") or r.get("gpu_catalog") is False:
            continue
        assert r["gpu"] in GPUS, (r["provider"], r["name"], r["gpu"])
        assert isinstance(r["gpus"], int) and r["gpus"] > 0, r["name"]


def test_real_rows_carry_a_real_name_and_a_price() -> None:
    """A row without `placeholder` is an instance a provider sells: its name is not a family
    description and at least one price is a number."""
    for r in ROWS:
        if r.get("placeholder"):
            continue
        assert r["name"] != "unknown" and " family" not in r["name"], r["name"]
        assert any(isinstance(r.get(k), (int, float)) for k in PRICE_KEYS), r["name"]


def test_gpu_memory_agrees_with_the_gpu_catalog() -> None:
    """Cloud APIs print slightly less than the nameplate (L4: 22,888 MiB of 24 GiB), so 10%."""
    checked = 0
    for r in ROWS:
        total = r.get("gpu_memory_gib_total")
        if r.get("placeholder") or r.get("gpu_catalog") is False or not isinstance(total, (int, float)):
            continue
        expected = r["gpus"] * GPUS[r["gpu"]]["memory_gb"]
        assert total == pytest.approx(expected, rel=0.10), (r["provider"], r["name"], total, expected)
        checked += 1
    assert checked > 50


def test_prices_are_positive_numbers_or_stated_words() -> None:
    for r in ROWS:
        for key in PRICE_KEYS:
            value = r.get(key, "unknown")
            if isinstance(value, str):
                assert value in PRICE_WORDS, (r["name"], key, value)
            else:
                assert not isinstance(value, bool) and value > 0, (r["name"], key, value)
        if r.get("currency", "USD") != "USD":
            rate = r.get("usd_rate", "unknown")
            assert rate == "unknown" or (isinstance(rate, float) and rate > 0), r["name"]


def test_gcp_a3_highgpu_8g_is_host_plus_eight_h100() -> None:
    row = _row("gcp", "a3-highgpu-8g")
    assert row["price_region"] == "us-central1" and row["gpus"] == 8
    assert row["price_on_demand_per_hour"] == pytest.approx(9.46006 + 33.60609)
    assert row["price_spot_per_hour"] == pytest.approx(5.15632 + 42.7096)


def test_gcp_g2_standard_48_is_host_plus_four_l4() -> None:
    row = _row("gcp", "g2-standard-48")
    assert (row["gpu"], row["gpus"]) == ("L4", 4)
    assert row["price_on_demand_per_hour"] == pytest.approx(1.7615 + 2.24016)
    assert row["price_spot_per_hour"] == pytest.approx(0.90019 + 1.1448)


def test_oci_and_nebius_figures() -> None:
    assert _row("oci", "BM.GPU.H100.8")["price_on_demand_per_hour"] == 80.0
    h200 = _row("nebius", "gpu-h200-sxm_8gpu-128vcpu-1600gb")
    assert (h200["price_on_demand_per_hour"], h200["price_spot_per_hour"]) == (28.00, 11.60)
    assert h200["price_on_demand_per_hour"] == pytest.approx(8 * 3.50)   # the 1-GPU row's price


def test_the_loader_keeps_priced_rows_and_skips_placeholders() -> None:
    loaded = {(i.provider, i.name) for i in packaged()}
    assert ("gcp", "a3-highgpu-8g") in loaded and ("oci", "BM.GPU.H100.8") in loaded
    assert not any(r.get("placeholder") and (r["provider"], r["name"]) in loaded for r in ROWS)
    assert ("baidu", "BML GPU实例_V100_12核50GB内存x1卡") not in loaded      # gpu_catalog = false
    a3 = next(i for i in packaged() if i.name == "a3-highgpu-8g")
    assert a3.usd_per_hour("on-demand") is None       # its spot price exceeds on-demand: not used
    a2 = next(i for i in packaged() if i.name == "a2-highgpu-8g")
    assert a2.usd_per_hour("on-demand") == pytest.approx(29.38708)     # 5.91582 host + 23.47126 GPUs


def test_azure_figures_from_the_older_skypilot_file() -> None:
    ndm = _row("azure", "Standard_ND96amsr_A100_v4")
    assert (ndm["price_region"], ndm["gpus"]) == ("eastus", 8)
    assert (ndm["price_on_demand_per_hour"], ndm["price_spot_per_hour"]) == (32.77, 3.6047)
    nc = _row("azure", "Standard_NC24ads_A100_v4")
    assert (nc["price_on_demand_per_hour"], nc["price_spot_per_hour"]) == (3.673, 0.444433)
    h100 = _row("azure", "Standard_ND96isr_H100_v5")
    assert h100["gpus"] == 8 and h100["price_on_demand_per_hour"] == 98.32
    assert h100["price_spot_per_hour"] == "unknown"      # the file's SpotPrice merely repeats Price
    assert _row("azure", "Standard_ND96isr_H200_v5").get("placeholder") is True   # not in the file


def test_coreweave_hgx_h100_is_an_instance_price() -> None:
    row = _row("coreweave", "NVIDIA HGX H100")
    assert (row["gpus"], row["as_of"]) == (8, "2026-09-20")
    assert (row["price_on_demand_per_hour"], row["price_spot_per_hour"]) == (49.24, 19.71)
    loaded = next(i for i in packaged() if (i.provider, i.name) == ("coreweave", "NVIDIA HGX H100"))
    assert loaded.usd_per_hour("spot") == pytest.approx(19.71)
    assert ("coreweave", "NVIDIA A100") not in {(i.provider, i.name) for i in packaged()}  # variant unstated
