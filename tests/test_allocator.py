"""The glibc mmap-threshold fix that keeps training's resident memory bounded."""

import platform
import subprocess
import sys

import pytest

SCRIPT = """
import ctypes, sys
from spacy_infnet.training.allocator import fix_mmap_threshold
if sys.argv[1] == "fixed":
    assert fix_mmap_threshold() and fix_mmap_threshold()
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
def touch_and_free(mib):
    block = libc.malloc(mib << 20)
    ctypes.memset(block, 1, mib << 20)
    libc.free(block)
touch_and_free(16)  # freeing a mmapped 16 MiB block raises glibc's dynamic threshold
before = rss()
touch_and_free(8)   # then 8 MiB comes from the heap and stays resident after free
print(rss() - before)
"""


def _kept_mb(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_freed_tensors_leave_the_resident_set_only_with_the_fixed_threshold():
    assert _kept_mb("default") > 6  # the growth the fix is for
    assert _kept_mb("fixed") < 2
