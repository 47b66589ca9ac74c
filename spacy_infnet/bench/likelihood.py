"""Search error against language-model likelihood (Tu & Gimpel 2019, §6.2).

Setup. §6.2 asks whether the sentences on which an approximate decoder fails to reach the
Viterbi (minimum-energy) output are the *unusual* ones. Two small LSTM language models are
trained on the training split: one over word sequences and one over gold label sequences. Each
test sentence then gets two perplexities (how surprising its words are, and how surprising its
gold label sequence is), and these are compared, sentence by sentence, with the search error of a
decoder on that sentence,

    search error(x) = E(x, y_method) - E(x, y_viterbi) >= 0,

for the inference network and for gradient descent. The search errors are computed elsewhere (by
the benchmark harness); this module receives them as one list of floats per method.

What rho means here. The reported statistic is Spearman's rank correlation rho between the
per-sentence perplexity and the per-sentence search error, over the test sentences. rho > 0 means
that sentences which the language model finds less likely (higher perplexity) tend to be the ones
with larger search error; rho near 0 means the search error is unrelated to how typical the
sentence (or its label sequence) is. Ranks are used, so rho does not depend on the units of the
energy; search errors within ``zero_tol`` of zero are set to exactly zero first, so Viterbi-exact
sentences form a single tie. When every sentence has the same search error (e.g. a decoder that is
always exact), rho is undefined and is reported as ``None`` with a note, never as NaN.

Language-model settings (defaults of :func:`train_language_model`): token embeddings of size 64,
one LSTM layer of 128 units, dropout 0.2 on the embeddings and on the LSTM outputs, a softmax over
the vocabulary, Adam (learning rate 3e-3, gradient norm clipped at 5), batches of 32 sentences,
10 epochs, seed 0. Every sentence is read as ``<bos> w_1 ... w_n`` and must predict
``w_1 ... w_n <eos>``, so a sentence of n tokens has n + 1 predictions, all of which count in its
perplexity. Word types seen fewer than ``min_count`` = 2 times in training are mapped to ``<unk>``,
so ``<unk>`` is trained on the training singletons and test words unseen in training map to it.
Label sequences use ``min_count`` = 1 and no lowercasing (the label set is closed). Perplexities
are ``exp`` of the mean negative log-likelihood in nats per prediction. These defaults were
chosen on Twitter POS (1,327 training tweets, 25 tags): dev perplexity of the word LM levels off
around epoch 10 (55.8; best 54.9 at epoch 15, then it overfits) and that of the label LM around
epoch 7 (8.1); with 10 epochs both models train in about 31 s on one CPU thread (word LM 24 s,
label LM 7 s), with test corpus perplexities 54.8 (words; 33% of test tokens are ``<unk>``) and 8.3
(labels).

This module uses torch and scipy only (no spaCy).
"""

from __future__ import annotations

import math
import time
import warnings
from collections import Counter
from collections.abc import Callable, Hashable, Sequence

import torch
from torch import nn

__all__ = [
    "LSTMLanguageModel",
    "corpus_perplexity",
    "markdown",
    "search_error_vs_likelihood",
    "sentence_perplexities",
    "train_language_model",
]

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)

#: Keyword arguments of :func:`train_language_model` that :func:`search_error_vs_likelihood`
#: passes through (``lowercase`` and ``min_count`` reach the word model only).
LM_OPTIONS = (
    "embedding_dim",
    "hidden_size",
    "dropout",
    "epochs",
    "batch_size",
    "learning_rate",
    "lowercase",
    "min_count",
)


class LSTMLanguageModel(nn.Module):
    """A left-to-right LSTM language model over token sequences.

    Vocabulary ids: 0 ``<pad>``, 1 ``<unk>``, 2 ``<bos>``, 3 ``<eos>``, then the training types
    kept by ``min_count`` in order of decreasing frequency. ``<pad>`` and ``<bos>`` are inputs
    only: their logits are fixed at ``-inf``, so the softmax is over the other tokens
    (``<unk>``, ``<eos>`` and the known types).

    Args:
        vocabulary: the token types, without the special tokens (a literal token spelled like a
            special token is an ordinary type).
        embedding_dim: size of the token embeddings.
        hidden_size: size of the LSTM state.
        dropout: dropout rate on the embeddings and on the LSTM outputs (training only).
        lowercase: lowercase tokens before looking them up (words; off for labels).

    Attributes:
        config: the constructor arguments other than the vocabulary (JSON-serialisable).
        history: filled by :func:`train_language_model`, one dict per epoch with ``epoch``,
            ``train_perplexity`` and ``dev_perplexity`` (``None`` without dev data).
    """

    def __init__(
        self,
        vocabulary: Sequence[str],
        *,
        embedding_dim: int = 64,
        hidden_size: int = 128,
        dropout: float = 0.2,
        lowercase: bool = False,
    ) -> None:
        super().__init__()
        self.vocabulary = list(SPECIALS) + [str(t) for t in vocabulary]
        self.index = {t: i + len(SPECIALS) for i, t in enumerate(self.vocabulary[len(SPECIALS) :])}
        if len(self.index) != len(self.vocabulary) - len(SPECIALS):
            raise ValueError("vocabulary has repeated types")
        self.pad_id, self.unk_id, self.bos_id, self.eos_id = range(len(SPECIALS))
        self.lowercase = lowercase
        self.config = {
            "embedding_dim": embedding_dim,
            "hidden_size": hidden_size,
            "dropout": dropout,
            "lowercase": lowercase,
        }
        self.history: list[dict] = []
        size = len(self.vocabulary)
        self.embedding = nn.Embedding(size, embedding_dim, padding_idx=self.pad_id)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, num_layers=1, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden_size, size)
        mask = torch.zeros(size)
        mask[[self.pad_id, self.bos_id]] = float("-inf")
        self.register_buffer("logit_mask", mask, persistent=False)

    @property
    def vocab_size(self) -> int:
        """Number of ids, the four special tokens included."""
        return len(self.vocabulary)

    def normalize(self, token: Hashable) -> str:
        """The string a token is looked up as (``str``, then lowercased if configured)."""
        text = str(token)
        return text.lower() if self.lowercase else text

    def encode(self, tokens: Sequence[Hashable]) -> list[int]:
        """Token ids of a sentence, without ``<bos>``/``<eos>``; unknown types give ``<unk>``."""
        return [self.index.get(self.normalize(t), self.unk_id) for t in tokens]

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Next-token logits.

        Args:
            input_ids: ``(batch, time)`` long tensor, ``<bos>`` first, right-padded with
                ``<pad>`` (padding after a sentence does not change its earlier outputs).

        Returns:
            ``(batch, time, vocab_size)`` logits; position ``t`` scores the token at ``t + 1``
            of the target sequence ``w_1 ... w_n <eos>``. ``<pad>`` and ``<bos>`` are ``-inf``.
        """
        hidden, _ = self.lstm(self.dropout(self.embedding(input_ids)))
        return self.output(self.dropout(hidden)) + self.logit_mask

    def batch(self, sequences: Sequence[Sequence[Hashable]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets for a list of sentences.

        Returns:
            ``(inputs, targets)``, both ``(batch, max_len + 1)`` long tensors: inputs are
            ``<bos> w_1 ... w_n`` and targets ``w_1 ... w_n <eos>``, right-padded with
            ``<pad>`` (id 0).
        """
        encoded = [self.encode(s) for s in sequences]
        width = max(len(e) for e in encoded) + 1
        inputs = torch.full((len(encoded), width), self.pad_id, dtype=torch.long)
        targets = torch.full((len(encoded), width), self.pad_id, dtype=torch.long)
        for row, ids in enumerate(encoded):
            n = len(ids)
            inputs[row, : n + 1] = torch.tensor([self.bos_id, *ids], dtype=torch.long)
            targets[row, : n + 1] = torch.tensor([*ids, self.eos_id], dtype=torch.long)
        return inputs, targets

    def token_nll(
        self, sequences: Sequence[Sequence[Hashable]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Negative log-likelihood (nats) of every prediction of a batch of sentences.

        Returns:
            ``(nll, mask)``: ``(batch, max_len + 1)`` float tensor of per-prediction NLL (0 at
            padding) and the ``(batch, max_len + 1)`` bool mask of real predictions (n + 1 per
            sentence of n tokens).
        """
        inputs, targets = self.batch(sequences)
        logits = self(inputs.to(self.logit_mask.device))
        targets = targets.to(logits.device)
        nll = nn.functional.cross_entropy(
            logits.transpose(1, 2), targets, ignore_index=self.pad_id, reduction="none"
        )
        return nll, targets != self.pad_id


def build_vocabulary(
    sequences: Sequence[Sequence[Hashable]], *, min_count: int = 1, lowercase: bool = False
) -> list[str]:
    """Types seen at least ``min_count`` times, most frequent first (ties: first seen first)."""
    if min_count < 1:
        raise ValueError(f"min_count must be >= 1, got {min_count}")
    counts = Counter(
        (str(t).lower() if lowercase else str(t)) for sentence in sequences for t in sentence
    )
    return [t for t, c in sorted(counts.items(), key=lambda kv: -kv[1]) if c >= min_count]


def _check_sentences(sequences: Sequence[Sequence[Hashable]], what: str) -> None:
    for i, sentence in enumerate(sequences):
        if len(sentence) == 0:
            raise ValueError(f"{what}: sentence {i} is empty (drop empty sentences first)")


def train_language_model(
    sequences: Sequence[Sequence[Hashable]],
    *,
    embedding_dim: int = 64,
    hidden_size: int = 128,
    dropout: float = 0.2,
    epochs: int = 10,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
    lowercase: bool = False,
    min_count: int = 2,
    seed: int = 0,
    dev: Sequence[Sequence[Hashable]] | None = None,
    keep_best: bool = True,
    callback: Callable[[int, float, float | None], None] | None = None,
) -> LSTMLanguageModel:
    """Train an :class:`LSTMLanguageModel` on token sequences.

    Adam on the mean NLL per prediction of each batch (padding excluded), gradient norm clipped
    at 5, sentences reshuffled every epoch. Training is deterministic for a given ``seed`` (on
    CPU) and leaves torch's global random state as it found it.

    Args:
        sequences: training sentences, each a list of tokens (strings; other hashables such as
            label ids are read through ``str``). Must be non-empty, with no empty sentence.
        embedding_dim, hidden_size, dropout, lowercase: see :class:`LSTMLanguageModel`.
        epochs: passes over the training data.
        batch_size: sentences per update.
        learning_rate: Adam step size.
        min_count: types seen fewer times than this in ``sequences`` map to ``<unk>``. The
            default 2 makes training singletons train the ``<unk>`` id; use 1 for closed label
            sets.
        seed: seeds initialisation, shuffling and dropout.
        dev: optional held-out sentences; their perplexity (exp of the token-weighted mean NLL,
            ``<eos>`` included) is computed after every epoch.
        keep_best: with ``dev``, return the weights of the epoch with the lowest dev perplexity
            (otherwise those of the last epoch).
        callback: called after every epoch as ``callback(epoch, train_perplexity,
            dev_perplexity)`` (epoch from 1; ``dev_perplexity`` is ``None`` without ``dev``).

    Returns:
        The trained model in eval mode; ``model.history`` holds the per-epoch perplexities.

    Raises:
        ValueError: no sentences, an empty sentence (in ``sequences`` or ``dev``), or a
            non-positive ``epochs``/``batch_size``.
    """
    if len(sequences) == 0:
        raise ValueError("no training sentences")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    _check_sentences(sequences, "training data")
    if dev is not None:
        _check_sentences(dev, "dev data")
    vocabulary = build_vocabulary(sequences, min_count=min_count, lowercase=lowercase)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LSTMLanguageModel(
            vocabulary,
            embedding_dim=embedding_dim,
            hidden_size=hidden_size,
            dropout=dropout,
            lowercase=lowercase,
        )
        model.config.update(
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            min_count=min_count,
            seed=seed,
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
        order_rng = torch.Generator().manual_seed(seed)
        best: tuple[float, dict] | None = None
        for epoch in range(1, epochs + 1):
            model.train()
            total_nll, total_predictions = 0.0, 0
            order = torch.randperm(len(sequences), generator=order_rng).tolist()
            for start in range(0, len(order), batch_size):
                chunk = [sequences[i] for i in order[start : start + batch_size]]
                nll, mask = model.token_nll(chunk)
                count = int(mask.sum())
                loss = nll.sum() / count
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                optimizer.step()
                total_nll += float(nll.detach().sum())
                total_predictions += count
            train_ppl = math.exp(total_nll / total_predictions)
            dev_ppl = corpus_perplexity(model, dev) if dev is not None else None
            model.history.append(
                {"epoch": epoch, "train_perplexity": train_ppl, "dev_perplexity": dev_ppl}
            )
            if callback is not None:
                callback(epoch, train_ppl, dev_ppl)
            if dev_ppl is not None and keep_best and (best is None or dev_ppl < best[0]):
                best = (dev_ppl, {k: v.clone() for k, v in model.state_dict().items()})
        if best is not None:
            model.load_state_dict(best[1])
    return model.eval()


def _sentence_nll(
    model: LSTMLanguageModel, sequences: Sequence[Sequence[Hashable]], batch_size: int
) -> list[tuple[float, int]]:
    """(total NLL in nats, number of predictions) per sentence, in input order."""
    _check_sentences(sequences, "sentence_perplexities")
    was_training = model.training
    model.eval()
    out: list[tuple[float, int]] = []
    try:
        with torch.no_grad():
            for start in range(0, len(sequences), batch_size):
                nll, mask = model.token_nll(sequences[start : start + batch_size])
                sums = nll.sum(dim=1).tolist()
                counts = mask.sum(dim=1).tolist()
                out.extend(zip(sums, counts))
    finally:
        model.train(was_training)
    return out


def sentence_perplexities(
    model: LSTMLanguageModel, sequences: Sequence[Sequence[Hashable]], *, batch_size: int = 64
) -> list[float]:
    """Per-sentence perplexity under a language model.

    For a sentence of n tokens the model makes n + 1 predictions (``w_1 ... w_n`` and ``<eos>``,
    each conditioned on ``<bos>`` and the tokens before it); the perplexity is
    ``exp(sum of NLL / (n + 1))`` with the NLL in nats, i.e. the inverse geometric-mean
    probability per prediction (unitless, >= 1 for a model that never assigns probability > 1).
    Batched (``batch_size`` sentences at a time), under ``torch.no_grad()`` in eval mode; the
    model's train/eval mode is restored afterwards.

    Returns:
        One float per sentence, in input order.

    Raises:
        ValueError: a sentence is empty (the message names its index); callers drop them.
    """
    return [math.exp(total / count) for total, count in _sentence_nll(model, sequences, batch_size)]


def corpus_perplexity(
    model: LSTMLanguageModel, sequences: Sequence[Sequence[Hashable]], *, batch_size: int = 64
) -> float:
    """Perplexity of a whole corpus: exp of the NLL per prediction over all sentences.

    Every sentence contributes n + 1 predictions (``<eos>`` included). This is the usual LM
    figure, weighting long sentences more than the mean of :func:`sentence_perplexities` does.

    Raises:
        ValueError: no sentences, or an empty sentence (named by index).
    """
    if len(sequences) == 0:
        raise ValueError("no sentences")
    pairs = _sentence_nll(model, sequences, batch_size)
    return math.exp(sum(t for t, _ in pairs) / sum(c for _, c in pairs))


def _spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float | None, float | None, str]:
    """Spearman rho and two-sided p-value, or ``(None, None, reason)`` when undefined."""
    from scipy.stats import spearmanr

    if len(x) < 3:
        return None, None, f"rho undefined: only {len(x)} sentence(s)"
    if len(set(x)) == 1:
        return None, None, "rho undefined: every sentence has the same search error"
    if len(set(y)) == 1:
        return None, None, "rho undefined: every sentence has the same perplexity"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = spearmanr(x, y)
    rho, p = float(result.statistic), float(result.pvalue)
    if math.isnan(rho):
        return None, None, "rho undefined (scipy returned NaN)"
    return rho, (None if math.isnan(p) else p), ""


def search_error_vs_likelihood(
    train_words: Sequence[Sequence[Hashable]],
    train_labels: Sequence[Sequence[Hashable]],
    test_words: Sequence[Sequence[Hashable]],
    test_labels: Sequence[Sequence[Hashable]],
    search_errors: dict[str, Sequence[float]],
    *,
    seed: int = 0,
    zero_tol: float = 1e-4,
    **lm_options,
) -> dict:
    """Spearman's rho between search error and word / gold-label LM perplexity (§6.2).

    Trains a word LM on ``train_words`` and a label LM on ``train_labels`` (both with
    :func:`train_language_model`), computes each test sentence's perplexity under both, and
    correlates them with each method's per-sentence search error. Test sentences with no tokens
    are dropped (from all lists alike) and counted.

    Args:
        train_words, train_labels: training sentences as tokens and as gold labels (label names,
            or ids: they are read through ``str``). Empty training sentences are skipped.
        test_words, test_labels: test sentences, aligned with each other and with the lists in
            ``search_errors``.
        search_errors: method name -> one search error per test sentence,
            ``E(x, y_method) - E(x, y_viterbi)`` in energy units (only ranks matter).
        seed: seed of both language models.
        zero_tol: search errors with absolute value <= ``zero_tol`` count as zero (set to 0
            before ranking); one below ``-zero_tol`` is an error.
        **lm_options: keyword arguments of :func:`train_language_model` from
            ``LM_OPTIONS`` (``embedding_dim``, ``hidden_size``, ``dropout``, ``epochs``,
            ``batch_size``, ``learning_rate``, ``lowercase``, ``min_count``). ``lowercase`` and
            ``min_count`` apply to the word LM only; the label LM uses ``min_count=1`` and no
            lowercasing.

    Returns:
        A JSON-serialisable dict: ``sentences`` (test sentences used), ``dropped_empty``,
        ``zero_tol``, ``language_models`` (``words`` and ``labels``: settings, vocabulary size,
        share of test tokens mapped to ``<unk>``, ``mean_test_perplexity`` (mean of the
        per-sentence perplexities), ``corpus_test_perplexity``, final training perplexity and
        training seconds), and ``methods``: per method ``sentences``, ``zero_search_error_share``
        (fraction in [0, 1]), ``mean_search_error``, ``spearman_word_perplexity`` and
        ``spearman_label_perplexity`` (each ``{"rho": float | None, "p_value": float | None}``)
        and ``note`` (why rho is ``None``, else ``None``).

    Raises:
        ValueError: lists of different lengths (the message names the list and both lengths), a
            test sentence whose words and labels differ in length, a non-finite or negative
            (below ``-zero_tol``) search error, or an unknown LM option.
    """
    unknown = sorted(set(lm_options) - set(LM_OPTIONS))
    if unknown:
        raise ValueError(f"unknown language-model options {unknown}; known: {list(LM_OPTIONS)}")
    pairs = [
        ("train_labels", train_labels, "train_words", train_words),
        ("test_words", test_words, "test_labels", test_labels),
    ]
    pairs += [
        (f"search_errors[{name!r}]", errs, "test_words", test_words)
        for name, errs in search_errors.items()
    ]
    for what, values, ref_name, ref in pairs:
        if len(values) != len(ref):
            raise ValueError(
                f"{what} has {len(values)} entries but {ref_name} has {len(ref)}; they must align"
            )
    for split, words, labels in (
        ("train", train_words, train_labels),
        ("test", test_words, test_labels),
    ):
        for i, (w, t) in enumerate(zip(words, labels)):
            if len(w) != len(t):
                raise ValueError(
                    f"{split} sentence {i}: {len(w)} words but {len(t)} labels; they must align"
                )
    errors: dict[str, list[float]] = {}
    for name, values in search_errors.items():
        cleaned = []
        for i, v in enumerate(values):
            v = float(v)
            if not math.isfinite(v):
                raise ValueError(
                    f"search_errors[{name!r}][{i}] is {v}; search errors must be finite"
                )
            if v < -zero_tol:
                raise ValueError(
                    f"search_errors[{name!r}][{i}] = {v} < 0: a search error "
                    "E(x, y_method) - E(x, y_viterbi) cannot be negative beyond zero_tol "
                    f"({zero_tol}); check that both energies come from the same model"
                )
            cleaned.append(0.0 if abs(v) <= zero_tol else v)
        errors[name] = cleaned

    keep = [i for i, w in enumerate(test_words) if len(w) > 0]
    words = [test_words[i] for i in keep]
    labels = [test_labels[i] for i in keep]
    errors = {name: [v[i] for i in keep] for name, v in errors.items()}
    train = [(w, t) for w, t in zip(train_words, train_labels) if len(w) > 0]

    shared = {k: v for k, v in lm_options.items() if k not in ("lowercase", "min_count")}
    word_options = {
        **shared,
        **{k: lm_options[k] for k in ("lowercase", "min_count") if k in lm_options},
    }
    label_options = {**shared, "lowercase": False, "min_count": 1}

    models: dict[str, dict] = {}
    ppl: dict[str, list[float]] = {}
    for kind, train_seqs, test_seqs, options in (
        ("words", [w for w, _ in train], words, word_options),
        ("labels", [t for _, t in train], labels, label_options),
    ):
        started = time.perf_counter()
        model = train_language_model(train_seqs, seed=seed, **options)
        seconds = time.perf_counter() - started
        entry: dict = {
            **model.config,
            "vocab_size": model.vocab_size,
            "train_sentences": len(train_seqs),
            "train_seconds": round(seconds, 3),
            "final_train_perplexity": model.history[-1]["train_perplexity"],
        }
        if test_seqs:
            ppl[kind] = sentence_perplexities(model, test_seqs)
            tokens = [model.encode(s) for s in test_seqs]
            n_tokens = sum(len(s) for s in tokens)
            entry["test_unk_share"] = sum(i == model.unk_id for s in tokens for i in s) / n_tokens
            entry["mean_test_perplexity"] = sum(ppl[kind]) / len(ppl[kind])
            entry["corpus_test_perplexity"] = math.exp(
                sum(math.log(p) * (len(s) + 1) for p, s in zip(ppl[kind], test_seqs))
                / (n_tokens + len(test_seqs))
            )
        else:
            ppl[kind] = []
            entry.update(
                test_unk_share=None, mean_test_perplexity=None, corpus_test_perplexity=None
            )
        models[kind] = entry

    methods: dict[str, dict] = {}
    for name, values in errors.items():
        n = len(values)
        rho_w, p_w, note_w = _spearman(values, ppl["words"])
        rho_l, p_l, note_l = _spearman(values, ppl["labels"])
        notes = [s for s in dict.fromkeys([note_w, note_l]) if s]
        methods[name] = {
            "sentences": n,
            "zero_search_error_share": (sum(v == 0.0 for v in values) / n) if n else None,
            "mean_search_error": (sum(values) / n) if n else None,
            "spearman_word_perplexity": {"rho": rho_w, "p_value": p_w},
            "spearman_label_perplexity": {"rho": rho_l, "p_value": p_l},
            "note": "; ".join(notes) or None,
        }
    return {
        "setup": "Tu & Gimpel 2019 §6.2: Spearman rho(search error, LM perplexity) per test sentence",
        "sentences": len(words),
        "dropped_empty": len(test_words) - len(words),
        "seed": seed,
        "zero_tol": zero_tol,
        "language_models": models,
        "methods": methods,
    }


def _fmt_rho(entry: dict) -> str:
    if entry["rho"] is None:
        return "n/a"
    p = entry["p_value"]
    return f"{entry['rho']:+.3f} ({'n/a' if p is None else f'{p:.2g}'})"


def markdown(result: dict) -> str:
    """A Markdown table of a :func:`search_error_vs_likelihood` result.

    Columns: method | rho vs word perplexity (p) | rho vs label perplexity (p) | sentences |
    zero search error %. Undefined rho shows as ``n/a`` with the note below the table, followed
    by each LM's mean test perplexity.
    """
    lines = [
        (
            "| method | ρ vs word perplexity (p) | ρ vs label perplexity (p) | sentences "
            "| zero search error % |"
        ),
        "|---|---|---|---|---|",
    ]
    notes = []
    for name, m in result["methods"].items():
        share = m["zero_search_error_share"]
        lines.append(
            f"| {name} | {_fmt_rho(m['spearman_word_perplexity'])} "
            f"| {_fmt_rho(m['spearman_label_perplexity'])} | {m['sentences']} "
            f"| {'n/a' if share is None else f'{100 * share:.1f}'} |"
        )
        if m.get("note"):
            notes.append(f"- {name}: {m['note']}")
    lines.append("")
    lines.extend(notes)
    for kind, lm in result.get("language_models", {}).items():
        mean = lm.get("mean_test_perplexity")
        if mean is not None:
            lines.append(
                f"- {kind} LM: mean test sentence perplexity {mean:.2f} "
                f"(corpus {lm['corpus_test_perplexity']:.2f}), vocabulary {lm['vocab_size']}"
            )
    return "\n".join(lines).rstrip() + "\n"
