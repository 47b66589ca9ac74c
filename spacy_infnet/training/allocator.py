"""Keep glibc's heap from fragmenting during training on the CPU.

Training feeds PyTorch batches of a different shape at every step (sentence lengths vary).
glibc raises its mmap threshold dynamically each time a large mmapped block is freed, after
which large tensors come from the heap arenas, whose free space is rarely returned: the
resident size then grows without bound although no tensor is kept.  Measured on CoNLL-2003
with ``configs/ner.cfg`` (one torch thread): stage 2 grew by about 130 MB/s and reached 24 GB,
killed by the kernel after 5,000 updates; 100 updates of a small energy grew 103 MB with the
default allocator and 11 MB with a fixed threshold (``tests/test_allocator.py`` checks the
setting, ``python -m benchmarks.allocator`` repeats the measurement).

Fixing the threshold (``mallopt(M_MMAP_THRESHOLD, 1 MiB)``) keeps tensors of 1 MiB and more on
mmap, returned to the system when freed.  It is the runtime equivalent of
``MALLOC_MMAP_THRESHOLD_=1048576`` and changes nothing on platforms without glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_MMAP_THRESHOLD = -3
_done = False


def fix_mmap_threshold(threshold: int = 1 << 20) -> bool:
    """Fix glibc's mmap threshold to ``threshold`` bytes, once per process.

    Returns:
        True if the setting is in place (now or from an earlier call), False where the C
        library is not glibc (nothing changed).
    """
    global _done
    if _done:
        return True
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _done = bool(libc.mallopt(M_MMAP_THRESHOLD, int(threshold)))
    except (OSError, AttributeError):
        return False
    return _done
