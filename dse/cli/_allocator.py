"""Keep large numpy temporaries off mmap in the ``dse`` command's own process.

glibc serves allocations above ``M_MMAP_THRESHOLD`` (128 KiB until it adapts) with fresh ``mmap`` pages and
unmaps them on free, so a cost-model temporary can be page-faulted in anew chunk after chunk. Raising the
threshold (and the trim threshold) lets the heap recycle those buffers: measured +0-9 % on the cost-model
benchmark (docs/benchmarks.md). It changes the allocator of the whole process, so only the command line, which
owns its process, asks for it (``dse run``, ``dse sweep``); the library never does. Elsewhere than glibc it is
a no-op.
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
