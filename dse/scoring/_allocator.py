"""Keep large numpy temporaries off mmap, so evaluating chunk after chunk does not page-fault.

glibc serves allocations above ``M_MMAP_THRESHOLD`` (128 KiB until it adapts) with fresh ``mmap`` pages and
unmaps them on free, so every (operators x candidates) temporary of the cost model is page-faulted in anew:
measured 4x slower than reusing heap memory for the matrices of one 8k-candidate chunk (docs/benchmarks.md).
Raising the threshold (and the trim threshold) lets the heap recycle those buffers. This changes only where
the C allocator takes memory from; elsewhere than glibc it is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

from dse import units

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * units.MiB
"""glibc's largest allowed mmap threshold on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX)."""
TRIM_THRESHOLD_BYTES = 256 * units.MiB


@functools.cache
def reuse_large_buffers() -> bool:
    """Ask glibc to serve large blocks from the heap; True when it was done. Idempotent."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    done = mallopt(_M_MMAP_THRESHOLD, int(MMAP_THRESHOLD_BYTES)) == 1
    return done and mallopt(_M_TRIM_THRESHOLD, int(TRIM_THRESHOLD_BYTES)) == 1
