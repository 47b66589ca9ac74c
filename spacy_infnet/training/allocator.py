"""Keep glibc's heap from fragmenting during training on the CPU.

Training feeds PyTorch batches of a different shape at every step (sentence lengths vary).
glibc raises its mmap threshold dynamically each time a large mmapped block is freed, after
which large tensors come from the heap arenas, whose free space is rarely returned: the
resident size then grows without bound although no tensor is kept.  Measured on CoNLL-2003
with ``configs/ner.cfg`` (one torch thread): stage 2 grew by about 130 MB/s and reached 24 GB,
killed by the kernel after 5,000 updates; 100 updates of a small energy grew 103 MB with the
default allocator and 11 MB with a fixed threshold (``tests/test_allocator.py`` checks the
setting, ``python -m spacy_infnet.training.allocator`` repeats the measurement).

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


if __name__ == "__main__":  # the measurement quoted above, on synthetic batches
    import sys

    import torch

    def rss_mb() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 // 2**20

    if "--fixed" in sys.argv:
        print("fixed threshold:", fix_mmap_threshold())
    lstm = torch.nn.LSTM(100, 200, bidirectional=True, batch_first=True)
    opt = torch.optim.Adam(lstm.parameters())
    gen = torch.Generator().manual_seed(0)
    start = rss_mb()
    for step in range(1, 1001):
        T = int(torch.randint(5, 120, (1,), generator=gen))
        out, _ = lstm(torch.randn(10, T, 100, generator=gen))
        out.sum().backward()
        opt.step()
        opt.zero_grad()
        if step % 200 == 0:
            print(f"step {step}: resident {rss_mb()} MB (+{rss_mb() - start} MB)")
