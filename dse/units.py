"""Unit constants and conversions: the only module that spells out 1e9, 2**30 and friends.

Inside dse every physical quantity is SI (bytes, seconds, FLOP/s, bytes/s, watts, USD). Catalog files may
carry human units when the key names them (``memory_gb``, ``memory_bandwidth_gb_s``, ``peak_tflops``); the
loaders convert them once, with the constants below. GB means 1e9 bytes, GiB means 2**30 bytes.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

Quantity = TypeVar("Quantity", float, NDArray[np.float64])

KB = 1e3
MB = 1e6
GB = 1e9
TB = 1e12
PB = 1e15
KiB = 2**10
MiB = 2**20
GiB = 2**30

GFLOPS = 1e9
TFLOPS = 1e12
PFLOPS = 1e15

SI_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
"""Decimal prefixes a number is written with where space is short (an axis tick: 20k, 5M), largest first."""

US = 1e-6
MS = 1e-3
SECONDS_PER_HOUR = 3600.0
HOURS_PER_YEAR = 8760.0
HOURS_PER_MONTH = HOURS_PER_YEAR / 12.0
JOULES_PER_KWH = 3.6e6
WATTS_PER_KW = 1e3
TOKENS_PER_MILLION = 1e6
BITS_PER_BYTE = 8


def gb_to_bytes(gb: float) -> float:
    """Decimal gigabytes (1e9 bytes) to bytes."""
    return gb * GB


def mb_to_bytes(mb: float) -> float:
    """Decimal megabytes (1e6 bytes) to bytes."""
    return mb * MB


def gib_to_bytes(gib: float) -> float:
    """Binary gibibytes (2**30 bytes) to bytes."""
    return gib * GiB


def tflops_to_flops_per_s(tflops: float) -> float:
    """TFLOP/s (1e12 FLOP/s, dense) to FLOP/s."""
    return tflops * TFLOPS


def gb_s_to_bytes_per_s(gb_s: float) -> float:
    """GB/s (1e9 bytes/s) to bytes/s."""
    return gb_s * GB


def gbit_s_to_bytes_per_s(gbit_s: float) -> float:
    """Gbit/s (1e9 bits/s, network line rate) to bytes/s."""
    return gbit_s * GB / BITS_PER_BYTE


def us_to_s(us: float) -> float:
    """Microseconds to seconds."""
    return us * US


def bits_to_bytes(bits: Quantity) -> Quantity:
    """Bits to bytes (may be fractional: 4.25 bits/weight is 0.53125 bytes/weight)."""
    return bits / BITS_PER_BYTE
