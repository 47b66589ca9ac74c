"""Benchmarks that live with the repository, not inside the installed ``spacy_infnet`` package.

Run them from the repository root:

    viterbi_peers: ``python -m benchmarks.viterbi_peers`` — our Viterbi against pytorch-crf and
        torch-struct (``recipes/bench_viterbi.sh``).
"""
