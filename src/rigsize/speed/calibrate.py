"""Measure a real GPU and write a profile that ``--profile FILE`` feeds into estimates.

``rigsize calibrate`` times large matrix multiplications per dtype (torch.matmul; fp8
through ``torch._scaled_mm`` where the GPU has fp8 tensor cores) at several sizes, and
HBM bandwidth with a device-to-device copy of a 2 GiB buffer (read + write counted),
using CUDA events.  The profile stores the raw measurements and the achievable
fractions of the catalog's datasheet peaks they imply; estimates then use those
fractions instead of the fitted defaults of data/efficiency.toml.

Needs PyTorch with CUDA on an NVIDIA GPU; anywhere else it says so in one line.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from rigsize.errors import HardwareError, InputError
from rigsize.hardware.gpus import GPU, resolve_gpu

PROFILE_SCHEMA = "rigsize-profile/1"
SIZES = (2048, 4096, 8192)


def _torch_cuda() -> Any:
    try:
        import torch
    except ImportError:
        raise InputError("calibrate.no_gpu", why="PyTorch is not installed") from None
    if not torch.cuda.is_available():
        raise InputError("calibrate.no_gpu", why="PyTorch sees no CUDA GPU")
    return torch


def _time(torch: Any, fn: Any, iters: int = 20) -> float:
    for _ in range(3):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / 1e3 / iters


def measure(gpu: GPU) -> dict[str, Any]:
    """Run the measurements on the current CUDA device."""
    torch = _torch_cuda()
    matmul: dict[str, list[dict[str, float]]] = {}
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
    for name, dtype in dtypes.items():
        if not gpu.flops(name):
            continue
        rows = []
        for n in SIZES:
            a = torch.randn(n, n, device="cuda", dtype=dtype)
            b = torch.randn(n, n, device="cuda", dtype=dtype)
            seconds = _time(torch, lambda: torch.matmul(a, b))
            rows.append({"m": n, "n": n, "k": n, "seconds": seconds, "flops_per_second": 2 * n**3 / seconds})
        matmul[name] = rows
    if gpu.flops("fp8") and hasattr(torch, "_scaled_mm") and hasattr(torch, "float8_e4m3fn"):
        rows = []
        for n in SIZES:
            a = torch.randn(n, n, device="cuda").to(torch.float8_e4m3fn)
            b = torch.randn(n, n, device="cuda").to(torch.float8_e4m3fn).t()
            one = torch.tensor(1.0, device="cuda")
            seconds = _time(torch, lambda: torch._scaled_mm(a, b, scale_a=one, scale_b=one,
                                                            out_dtype=torch.bfloat16))
            rows.append({"m": n, "n": n, "k": n, "seconds": seconds, "flops_per_second": 2 * n**3 / seconds})
        matmul["fp8"] = rows
    buf = torch.empty(2**30, dtype=torch.uint8, device="cuda")
    out = torch.empty_like(buf)
    seconds = _time(torch, lambda: out.copy_(buf))
    bandwidth = 2 * buf.numel() / seconds
    return {"matmul": matmul, "hbm_bytes_per_second": bandwidth,
            "device_name": torch.cuda.get_device_name(0), "torch_version": torch.__version__,
            "cuda_version": torch.version.cuda}


def build_profile(gpu: GPU, measured: dict[str, Any]) -> dict[str, Any]:
    """The profile: raw measurements plus the fractions of the catalog peaks."""
    best = {d: max(r["flops_per_second"] for r in rows) for d, rows in measured["matmul"].items() if rows}
    fractions = {d: v / gpu.flops(d) for d, v in best.items() if gpu.flops(d)}
    peak_bw = gpu.hbm_bytes_per_second if isinstance(gpu.hbm_bytes_per_second, (int, float)) else None
    memory = measured["hbm_bytes_per_second"] / peak_bw if peak_bw else None
    return {
        "schema": PROFILE_SCHEMA, "catalog_gpu": gpu.name,
        "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **measured, "achievable_flops": best,
        "efficiency": {"compute": fractions.get("bf16", fractions.get("fp16")), "memory": memory,
                       "per_dtype": fractions},
    }


def load_profile(path: str | Path) -> dict[str, Any]:
    """Read and check a profile; errors name the problem in one line."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except OSError as exc:
        raise HardwareError("gpu.bad_spec", path=str(p), detail=exc.strerror or str(exc)) from None
    except ValueError as exc:
        raise HardwareError("gpu.bad_spec", path=str(p), detail=f"not a rigsize profile ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != PROFILE_SCHEMA:
        raise HardwareError("gpu.bad_spec", path=str(p), detail=f"not a rigsize profile (schema {PROFILE_SCHEMA})")
    eff = data.get("efficiency", {})
    if not isinstance(eff, dict):
        raise HardwareError("gpu.bad_spec", path=str(p), detail="'efficiency' must be a table of fractions")
    for key in ("compute", "memory"):
        value = eff.get(key)
        if value is not None and not (isinstance(value, (int, float)) and 0 < value <= 1.2):
            raise HardwareError("gpu.bad_spec", path=str(p), detail=f"efficiency.{key} = {value!r} is not a fraction")
    resolve_gpu(str(data.get("catalog_gpu", "")))
    return data


def profile_overrides(profile: dict[str, Any]) -> dict[str, float]:
    """Efficiency overrides an estimate applies from a profile."""
    eff = profile.get("efficiency", {})
    return {k: float(eff[k]) for k in ("compute", "memory") if isinstance(eff.get(k), (int, float))}


def calibrate(gpu_name: str | None, output: str) -> dict[str, Any]:
    out = Path(output)
    if not output or out.is_dir() or not out.parent.exists():
        raise InputError("input.conflict", what=f"--output {output!r}: give a file path in an existing folder")
    torch = _torch_cuda()
    name = gpu_name or _match_catalog(torch.cuda.get_device_name(0))
    gpu = resolve_gpu(name)
    profile = build_profile(gpu, measure(gpu))
    Path(output).write_text(json.dumps(profile, indent=2))
    return profile


def _match_catalog(device_name: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'H100'; the catalog's aliases resolve the rest."""
    words = device_name.replace("NVIDIA", "").split()
    for n in range(len(words), 0, -1):
        candidate = "-".join(words[:n])
        try:
            return resolve_gpu(candidate).name
        except HardwareError:
            continue
    raise InputError("calibrate.unknown_device", name=device_name)
