"""The one place where unit constants live.

Inside rigsize everything is bytes, seconds, FLOP, FLOP/s and USD; dtype widths are
in bits (4-bit formats break byte arithmetic).  Convert only at the edges.
"""

from __future__ import annotations

BITS_PER_BYTE = 8
KiB = 2**10
MiB = 2**20
GiB = 2**30
TiB = 2**40
KB = 10**3
MB = 10**6
GB = 10**9
TB = 10**12

# Suffixes of counts, following vLLM's human-readable integers (vLLM docs, engine args
# "--max-model-len: Supports k/m/g/K/M/G in human-readable format. Examples: 1k -> 1000,
# 1K -> 1024"): lowercase k/m/g are decimal, uppercase K/M/G binary.  B (billion), T and
# P are always decimal, as in "70B parameters" and "15T tokens".
SI_PREFIXES: dict[str, float] = {
    "k": 1e3, "m": 1e6, "g": 1e9, "K": 2.0**10, "M": 2.0**20, "G": 2.0**30,
    "b": 1e9, "B": 1e9, "t": 1e12, "T": 1e12, "p": 1e15, "P": 1e15,
}
TIME_SUFFIXES: dict[str, float] = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0}


def bits_to_bytes(bits: int) -> int:
    """Round a bit count up to whole bytes."""
    return -(-bits // BITS_PER_BYTE)

