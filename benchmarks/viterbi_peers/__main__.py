"""``python -m benchmarks.viterbi_peers``: the command line of :mod:`benchmarks.viterbi_peers.cli`."""

from .cli import app

if __name__ == "__main__":
    app(prog_name="python -m benchmarks.viterbi_peers")
