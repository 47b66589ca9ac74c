r"""Our batched Viterbi against pytorch-crf and torch-struct, on identical potentials.

Command (from the repository root)::

    python -m benchmarks.viterbi_peers [--labels 17,25,321,400] [--batch-sizes 1,10,100,1000]
        [--repeats 3] [--threads 1] [--seed 0]
        [--pipeline DIR --pipeline-data NAME[:PATH]]...  [--no-random]
        [--peers pytorch-crf,torch-struct] [--torch-struct-max-gib 2] [--peer-time-budget 120]
        [--output results/bench_viterbi.json] [--no-progress]

Modules: :mod:`.problems` (the potentials of a cell: random, or a trained pipeline's),
:mod:`.peers` (the three decoders; torch-struct's folding and chunking), :mod:`.run` (timing,
agreement, the grid :func:`run_benchmark`, :func:`markdown`, :func:`environment`) and
:mod:`.cli` (the typer command line; ``python -m benchmarks.viterbi_peers --help``).  The
harness lives with the benchmarks, not inside the installed ``spacy_infnet`` package.

What is compared
----------------
Three exact MAP decoders of a linear-chain CRF get the same float32 potentials on the CPU:

* ours: :func:`spacy_infnet.core.crf.viterbi` (batched, one Python step per position);
* pytorch-crf: ``torchcrf.CRF(L, batch_first=True).decode(emissions, mask)`` under
  ``torch.no_grad()``, its list of lists turned into a ``[B, T]`` tensor;
* torch-struct: ``torch_struct.LinearChainCRF(log_potentials, lengths=lengths).argmax`` (max
  semiring, parallel scan over the positions, argmax as edge indicators through autograd),
  folded potentials and indicators converted back to tags.

Every conversion (potentials to a peer's format, its output back to a ``[B, T]`` tag tensor)
is inside the timed function; building the ``CRF`` module and planning torch-struct's chunks
are not.  Each cell (potentials source, ``L`` labels, ``B`` sentences) is timed as one warm-up
run, then ``--repeats`` runs of the whole batch; the median is reported in seconds, with the
speed ratio ``peer seconds / our seconds`` (×5 means ours is five times faster).

Potentials
----------
(a) ``random``: Gaussian emissions ``[B, T, L]``, transitions ``[L, L]``, start and end ``[L]``
    (seeded from ``--seed``, ``L`` and ``B``); the sentence lengths are drawn (seeded from
    ``--seed`` and ``B``, so every ``L`` sees the same lengths) from the Twitter POS training
    set.  Padded positions hold random numbers too, which every decoder must ignore.
(b) ``pipeline``: the potentials of a trained ``infnet_tagger`` (``--pipeline DIR``, its own
    ``L``) on the first ``B`` test sentences (cycled if the split is shorter) of the data set
    named by the matching ``--pipeline-data NAME[:PATH]`` (e.g. ``conll2003:../shared/data/
    conll2003``).  NER potentials carry the scheme's ``-1e4`` constraint penalties.

Only sentences of at least 2 tokens are used: torch-struct's chain needs at least one edge.
Each batch is padded to its longest sentence.

Conventions mapping
-------------------
Ours: ``score(y) = s[y_0] + Σ_t U[t, y_t] + Σ_{t≥1} W[y_{t-1}, y_t] + e[y_last]`` with
``W[i, j]`` the score of ``i -> j``.

pytorch-crf uses the same parametrisation (its ``transitions[i, j]`` scores ``i -> j``, plus
``start_transitions`` and ``end_transitions``), so the three tensors are copied as they are
(checked in the tests: differences of its log-likelihoods equal differences of our
``sequence_score``).  It needs ``mask[:, 0]`` all true, hence the length rule above.

torch-struct scores a path by one potential per edge ``n = 0 .. N-2`` (between positions ``n``
and ``n + 1``), ``log_potentials[b, n, c_next, c_prev]``; ours are folded in as::

    log_potentials[b, n, c, p] = W[p, c] + U[b, n+1, c]
                               + [n == 0] (U[b, 0, p] + s[p]) + [n == len_b - 2] e[c]

so each path's summed edge potentials equal our score.  Edges ``n ≥ len_b - 1`` are ignored by
torch-struct (``lengths``), and ``N`` must equal the longest length.  From the argmax edge
indicators: ``y_0`` = the ``c_prev`` of edge 0 and ``y_{n+1}`` = the ``c_next`` of edge ``n``.

Memory and time rules
---------------------
* torch-struct's parallel scan materialises ``[n, bin/2, L, L, L]`` floats in its first step
  (``bin`` = ``N - 1`` rounded up to a power of two), e.g. ~200 GB for ``L = 321`` and
  ``B = 100``.  The batch is therefore sorted by length and cut into chunks whose estimated peak
  memory (:func:`torch_struct_bytes`, measured to be within ~10 % at large ``L``) stays below
  ``--torch-struct-max-gib`` (default 2); the cell's time is the sum over the chunks and the
  output says into how many chunks it was cut.  If one sentence alone is over the cap the peer
  is skipped on that cell ("skipped: over memory cap ...").
* ``--peer-time-budget`` (seconds, default 120) guards each peer's first (warm-up) run of a
  cell: after each chunk the elapsed time is extrapolated by the estimated work done; if the
  run took longer than the budget, or is extrapolated to take more than 1.2 × the budget, the
  peer is stopped and reported "skipped: over time budget (first k of B sentences took s)".
  No extrapolated figure ever enters the table (the estimate is kept in the JSON only).
* A peer that cannot be imported is reported "skipped: not installed (...)", never faked.

Agreement
---------
Per row the peers' paths are compared with ours on the real positions.  A row counts as
*identical* when every peer that ran returned our path, as a *tie* when some path differs but
its score (our ``sequence_score`` in float64) equals ours within ``1e-4`` relative (relative to
``max(|a|, |b|, 1)``); anything else is a disagreement.  The table shows
"identical paths k/B, ties t" (plus "DISAGREE d" when there are any).

Output
------
The command line (:func:`.cli.main`) writes a JSON dict (environment, settings, rows) to
``--output`` and the Markdown table (:func:`markdown`) next to it with the same stem, prints the
Markdown and exits with 0, or 1 if any cell disagrees, or 2 for a user error (a bad option value,
a missing pipeline directory, an unknown peer or data set), reported as one line on stderr.
Progress goes to a tqdm bar and diagnostics to the ``spacy.infnet`` logger, both on stderr.
"""

from .cli import app, main
from .peers import (
    NOT_INSTALLED,
    PEERS,
    OursDecoder,
    PeerSkipped,
    PytorchCRFDecoder,
    TorchStructDecoder,
    make_decoder,
    torch_struct_bytes,
    torch_struct_chunks,
    torch_struct_log_potentials,
    torch_struct_tags,
)
from .problems import (
    MIN_LENGTH,
    Problem,
    load_tagger,
    load_test_sentences,
    parse_pipeline_data,
    pipeline_problem,
    random_problem,
    sample_lengths,
    twitter_train_lengths,
)
from .run import TIE_RTOL, agreement, bench_cell, environment, markdown, run_benchmark, time_decoder

__all__ = [
    "MIN_LENGTH",
    "NOT_INSTALLED",
    "PEERS",
    "TIE_RTOL",
    "OursDecoder",
    "PeerSkipped",
    "Problem",
    "PytorchCRFDecoder",
    "TorchStructDecoder",
    "agreement",
    "app",
    "bench_cell",
    "environment",
    "load_tagger",
    "load_test_sentences",
    "main",
    "make_decoder",
    "markdown",
    "parse_pipeline_data",
    "pipeline_problem",
    "random_problem",
    "run_benchmark",
    "sample_lengths",
    "time_decoder",
    "torch_struct_bytes",
    "torch_struct_chunks",
    "torch_struct_log_potentials",
    "torch_struct_tags",
    "twitter_train_lengths",
]
