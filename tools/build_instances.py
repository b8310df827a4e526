#!/usr/bin/env python3
"""Rebuild the SkyPilot-derived rows of src/rigsize/data/instances.toml.

Maintainer's script; the rigsize package never imports it and it never goes to the network.
Input: a local checkout of https://github.com/skypilot-org/skypilot-catalog (fetched by you).

    python3 tools/build_instances.py /path/to/skypilot-catalog --version v9 \
        --clouds aws lambda > /tmp/skypilot_rows.toml

then paste the rows that replace the SkyPilot-derived block of instances.toml (rows from other
sources are maintained by hand; see src/rigsize/data/INSTANCES-README.md).

Selection rules (the same ones the packaged rows were built with):
  * only rows with an AcceleratorName (GPU instances);
  * rows repeat per availability zone: per (InstanceType, Region) take the lowest Price and,
    separately, the lowest SpotPrice; an empty Price means "no on-demand price in the catalog";
  * price_region = the preferred region of the cloud when it has an on-demand price, else the
    region with the lowest on-demand price; regions = every region the file lists;
  * as_of = the commit date of vms.csv (git log -1 --format=%cI), source = repo@commit:path.
GCP (--clouds gcp): vms.csv lists a2/a3/a4/g2 machine types WITHOUT an AcceleratorName (host price
only); the GPUs are priced on separate rows with an empty InstanceType and AcceleratorName/Count set
(their Price already covers Count GPUs). The instance price is host Price + the accelerator row's
Price in the same region and zone (spot likewise), as SkyPilot's own gcp_catalog.list_accelerators
does; the machine type -> (AcceleratorName, count) map is SkyPilot's _ACC_INSTANCE_TYPE_DICTS
(GCP_MACHINE_GPUS below). Per region the lowest zone sum is kept.
"""
import argparse
import csv
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

PREFERRED_REGION = {"aws": "us-east-1", "gcp": "us-central1", "azure": "eastus",
                    "lambda": "us-east-1", "oci": "us-ashburn-1"}

# SkyPilot AcceleratorName -> rigsize catalog GPU name (src/rigsize/data/gpus.toml `name`).
# Names not listed here are written with gpu_catalog = false and the SkyPilot name.
GPU_MAP = {
    "A100": "A100-SXM-40GB", "A100-80GB": "A100-SXM-80GB", "H100": "H100-SXM-80GB",
    "H200": "H200-SXM-141GB", "B200": "B200-180GB", "L4": "L4", "L40S": "L40S",
    "A10G": "A10G", "A10": "A10", "T4": "T4", "V100": "V100-SXM2-16GB",
    "V100-32GB": "V100-SXM2-32GB", "MI300X": "MI300X",
}
# skypilot-org/skypilot sky/catalog/gcp_catalog.py _ACC_INSTANCE_TYPE_DICTS (machine -> GPU, count).
GCP_MACHINE_GPUS = {
    **{f"a2-highgpu-{n}g": ("A100", n) for n in (1, 2, 4, 8)}, "a2-megagpu-16g": ("A100", 16),
    **{f"a2-ultragpu-{n}g": ("A100-80GB", n) for n in (1, 2, 4, 8)},
    **{f"a3-highgpu-{n}g": ("H100", n) for n in (1, 2, 4, 8)},
    "a3-megagpu-8g": ("H100-MEGA", 8), "a3-ultragpu-8g": ("H200", 8), "a4-highgpu-8g": ("B200", 8),
    **{f"g2-standard-{c}": ("L4", 1) for c in (4, 8, 12, 16, 32)},
    "g2-standard-24": ("L4", 2), "g2-standard-48": ("L4", 4), "g2-standard-96": ("L4", 8),
}
GPU_MAP["H100-MEGA"] = "H100-SXM-80GB"
# Instance names whose GPU differs from what the AcceleratorName alone says.
INSTANCE_GPU_OVERRIDE = {"gpu_1x_h100_pcie": "H100-PCIE-80GB",
                         # RunPod GpuInfo names these "A100 PCIe"
                         "1x_A100-80GB_SECURE": "A100-PCIE-80GB", "2x_A100-80GB_SECURE": "A100-PCIE-80GB"}


def num(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def gpu_mib_total(info):
    # GpuInfo is a Python-literal dict; read only its TotalGpuMemoryInMiB figure.
    marker = "'TotalGpuMemoryInMiB': "
    if info and marker in info:
        return num(info.split(marker, 1)[1].split("}", 1)[0].split(",", 1)[0])
    return None


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(round(v, 6)) if isinstance(v, float) else str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def gcp_rows(path):
    """GCP: one synthetic row per (machine type, region, zone) = host row + accelerator row."""
    hosts, accs = {}, {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("InstanceType") in GCP_MACHINE_GPUS and not row.get("AcceleratorName"):
                hosts[(row["InstanceType"], row["Region"], row["AvailabilityZone"])] = row
            elif not row.get("InstanceType") and row.get("AcceleratorName"):
                key = (row["AcceleratorName"], int(num(row["AcceleratorCount"]) or 0), row["Region"],
                       row["AvailabilityZone"])
                accs[key] = row
    for (name, region, zone), host in sorted(hosts.items()):
        acc_name, count = GCP_MACHINE_GPUS[name]
        acc = accs.get((acc_name, count, region, zone))
        if acc is None:
            continue
        out = dict(host, AcceleratorName=acc_name, AcceleratorCount=str(count), GpuInfo=acc.get("GpuInfo", ""))
        for col in ("Price", "SpotPrice"):
            h, a = num(host.get(col)), num(acc.get(col))
            out[col] = "" if h is None or a is None else repr(round(h + a, 5))
        yield out


def gpu_mib_each(info):
    marker = "'SizeInMiB': "
    if info and marker in info:
        return num(info.split(marker, 1)[1].split("}", 1)[0].split(",", 1)[0])
    return None


def build(repo, version, cloud, retrieved):
    rel = f"catalogs/{version}/{cloud}/vms.csv"
    path = Path(repo) / rel
    commit, as_of = git(repo, "log", "-1", "--format=%H", "--", rel), \
        git(repo, "log", "-1", "--format=%cI", "--", rel)
    if cloud == "gcp":
        source_rows = list(gcp_rows(path))
    else:
        with open(path, newline="") as f:
            source_rows = list(csv.DictReader(f))
    by_type = defaultdict(lambda: defaultdict(list))
    for row in source_rows:
        if row.get("AcceleratorName") and row.get("InstanceType"):
            by_type[row["InstanceType"]][row["Region"]].append(row)
    rows = []
    for name in sorted(by_type):
        regions = by_type[name]
        od = {r: min([p for p in (num(x["Price"]) for x in rs) if p is not None], default=None)
              for r, rs in regions.items()}
        spot = {r: min([p for p in (num(x.get("SpotPrice")) for x in rs) if p is not None],
                       default=None) for r, rs in regions.items()}
        pref = PREFERRED_REGION.get(cloud)
        priced = {r: p for r, p in od.items() if p is not None}
        region = pref if pref in priced else (min(priced, key=priced.get) if priced else
                                               sorted(regions)[0])
        first = regions[region][0]
        acc = first["AcceleratorName"]
        gpu = INSTANCE_GPU_OVERRIDE.get(name, GPU_MAP.get(acc))
        mib = gpu_mib_total(first.get("GpuInfo"))
        if mib is None and cloud == "gcp" and gpu_mib_each(first.get("GpuInfo")):
            mib = gpu_mib_each(first["GpuInfo"]) * num(first["AcceleratorCount"])
        disk = "unknown"
        if first.get("NVMeSupported") == "True" and num(first.get("LocalDiskSize")):
            disk = num(first["LocalDiskSize"]) * num(first.get("LocalDiskCount") or 1)
        rec = {
            "provider": cloud, "name": name, "gpu": gpu or acc,
            "gpus": int(num(first["AcceleratorCount"])) if num(first["AcceleratorCount"]) else 0,
            "gpu_memory_gib_total": mib / 1024 if mib else "unknown",
            "vcpus": num(first["vCPUs"]), "ram_gib": num(first["MemoryGiB"]),
            "local_nvme_gb": disk, "network": "unknown", "network_gbps": "unknown",
            "regions": sorted(regions),
            "price_on_demand_per_hour": od[region] if od[region] is not None else "unknown",
            "price_spot_per_hour": spot[region] if spot[region] is not None else "unknown",
            "price_1y_per_hour": "unknown", "price_3y_per_hour": "unknown",
            "currency": "USD", "price_region": region,
            "source": f"skypilot-org/skypilot-catalog@{commit}:{rel} (rows InstanceType={name}, "
                      f"Region={region}; lowest Price/SpotPrice over its zones"
                      + (f"; GCP: host row + accelerator row {acc} x {first['AcceleratorCount']}, same zone)"
                         if cloud == "gcp" else ")"),
            "as_of": as_of[:10], "retrieved": retrieved,
        }
        if gpu is None:
            rec["gpu_catalog"] = False
        rows.append(rec)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("catalog", help="local checkout of skypilot-org/skypilot-catalog")
    ap.add_argument("--version", default="v9")
    ap.add_argument("--clouds", nargs="+", default=["aws", "lambda"])
    ap.add_argument("--retrieved", required=True, help="YYYY-MM-DD you fetched the checkout")
    args = ap.parse_args(argv)
    for cloud in args.clouds:
        for rec in build(args.catalog, args.version, cloud, args.retrieved):
            print("[[instance]]")
            for k, v in rec.items():
                print(f"{k} = {toml_value(v)}")
            print()


if __name__ == "__main__":
    sys.exit(main())
