"""The process's malloc tuning for upload buffers (glibc's mmap threshold)."""

from __future__ import annotations

import ctypes

_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


def set_mmap_threshold(threshold_bytes: int) -> bool:
    """Serve allocations of at least ``threshold_bytes`` with mmap, so that freed ones go back to the OS.

    glibc raises its mmap threshold dynamically (up to 32 MiB) once large blocks are freed; after
    that, large buffers come from the heap and may stay resident after use. A fixed threshold
    turns that off. The default, 8 MiB, sits between the two sizes an upload allocates: chunks
    (at most 4 MiB, allocated and freed once per message) come from the heap, whose blocks are
    reused, while part buffers (8 MiB, a few per stream, reused for the stream's life) are mapped
    and go back to the OS when the stream ends. A threshold below the chunk size maps and unmaps
    every chunk: the 1 MiB threshold used before cost the API about 1.4 s of CPU per GiB in
    page faults and unmapping (docs/files.md). Process-wide, glibc only; returns whether it was
    applied.
    """
    if threshold_bytes <= 0:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold_bytes))
    except (OSError, AttributeError):
        return False
