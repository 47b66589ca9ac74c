"""Resident memory of 1,000 LSTM updates on batches of varying shape, with glibc's default
mmap threshold or the fixed one of :func:`spacy_infnet.training.allocator.fix_mmap_threshold`
(the measurement quoted in that module's docstring; synthetic batches, CPU).

    python -m benchmarks.allocator            # glibc's default
    python -m benchmarks.allocator --fixed    # the threshold fixed at 1 MiB
"""

from typing import Annotated

import torch
import typer

from spacy_infnet.training.allocator import fix_mmap_threshold


def resident_mb() -> int:
    """This process's resident set size, in MB (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 // 2**20


def main(
    fixed: Annotated[bool, typer.Option(help="fix glibc's mmap threshold first")] = False,
    steps: Annotated[int, typer.Option(min=1, help="updates")] = 1000,
) -> None:
    """Print the resident size every 200 updates of a BLSTM on batches of random lengths."""
    if fixed:
        typer.echo(f"fixed threshold: {fix_mmap_threshold()}")
    lstm = torch.nn.LSTM(100, 200, bidirectional=True, batch_first=True)
    opt = torch.optim.Adam(lstm.parameters())
    gen = torch.Generator().manual_seed(0)
    start = resident_mb()
    for step in range(1, steps + 1):
        length = int(torch.randint(5, 120, (1,), generator=gen))
        out, _ = lstm(torch.randn(10, length, 100, generator=gen))
        out.sum().backward()
        opt.step()
        opt.zero_grad()
        if step % 200 == 0:
            typer.echo(f"step {step}: resident {resident_mb()} MB (+{resident_mb() - start} MB)")


if __name__ == "__main__":
    typer.run(main)
