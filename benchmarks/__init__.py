"""Benchmarks that live with the repository, not inside the installed ``spacy_infnet`` package.

Run them from the repository root:

    viterbi_peers: ``python -m benchmarks.viterbi_peers`` — our Viterbi against pytorch-crf and
        torch-struct (``python -m spacy project run bench-viterbi``).
    allocator: ``python -m benchmarks.allocator [--fixed]`` — resident memory with glibc's
        default mmap threshold and with the fixed one.
"""
