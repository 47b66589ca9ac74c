"""Instance-tailored inference networks (Tu & Gimpel 2019, §4.2.1).

For each test sentence x, a private copy ψ_x of the trained inference network's parameters Ψ
takes N momentum-SGD steps on the energy of its own output alone,

    v ← μ·v + ∇_ψ E_Θ(x, A_ψ(x)),      ψ ← ψ − η·v,      ψ_0 = Ψ,

and the prediction is the per-position argmax of A_{ψ_N}(x).  Ψ itself is never modified: the
next sentence starts again from Ψ.

Several sentences are tailored at once.  Sentences of equal length form a group; each member
gets its own parameter copy (stacked on a leading axis) and ``torch.func.vmap`` evaluates
``torch.func.grad`` of the per-sentence energy with ``torch.func.functional_call``, so one step
updates the whole group.  The word-embedding table is not copied per sentence: a sentence
reads only the rows of its own words, so its copy is those rows (a sentence-local table; a
word that occurs twice shares one row, exactly as in the full table) and the update is the
same as tailoring the full table.  A network that reads words as bags of subword pieces
(``piece_embeddings``) keeps those piece vectors fixed while the rest of ψ is tailored.

As in :mod:`.gradient`, the energy's potentials are computed once and detached, the
objective may soften the tag-scheme constraints (``constraint_penalty``), and the reported
energies are those of the energy itself.
"""

from __future__ import annotations

import warnings

import torch
from torch.func import functional_call, grad, vmap

from ..crf import crf_energy
from ..encoding import EncodedBatch
from ..energy import SOFT_CONSTRAINT_PENALTY
from .gradient import MOMENTUM, IterativeDecoder

_EMBED = "inputs.embed.weight"
_PIECES = "inputs.piece_embed.weight"


def _local_vocabulary(word_ids: torch.Tensor) -> torch.Tensor:
    """[G, n] word ids → [G, n] sentence-local ids: 1 + the first position of the same word."""
    same = word_ids.unsqueeze(2) == word_ids.unsqueeze(1)  # [G, n, n]
    return same.to(torch.uint8).argmax(dim=2) + 1


class InstanceTailoredDecoder(IterativeDecoder):
    """Per-sentence fine-tuning of the inference network on the energy (§4.2.1).

    Args:
        steps: N, gradient steps per sentence.
        learning_rate: η (tuned over
            :data:`~spacy_infnet.core.tuning.TAILORED_LEARNING_RATES`).
        momentum: μ.
        constraint_penalty: cost of a forbidden tag bigram in the objective (None: the
            energy's own −1e4 constraints); reported energies always use the energy's own.
        group_size: most sentences tailored at once (memory: one copy of Ψ's trainable
            parameters, its gradient and its velocity per sentence).

    ``decode`` returns ``energy`` [B] = E_Θ(x, ŷ) and ``extra["relaxed_energy"]`` [B] =
    E_Θ(x, A_{ψ_N}(x)).  Dropout is off while tailoring.

    Raises:
        ValueError: invalid settings; (at decode) no trained inference network.
    """

    name = "tailored"
    needs_infnet = True

    def __init__(
        self,
        steps: int = 5,
        learning_rate: float = 0.001,
        momentum: float = MOMENTUM,
        constraint_penalty: float | None = SOFT_CONSTRAINT_PENALTY,
        group_size: int = 64,
    ) -> None:
        super().__init__(steps, learning_rate, momentum, constraint_penalty)
        if group_size < 1:
            raise ValueError(f"group_size must be ≥ 1, got {group_size!r}")
        self.group_size = int(group_size)

    def minimise(self, model, batch, objective, steps, learning_rate):
        net = model.infnet
        B, T = batch.mask.shape
        logits = {n: objective.emissions.new_zeros(B, T, model.energy.n_labels) for n in steps}
        lengths = batch.mask.sum(dim=1)
        was_training = net.training
        net.eval()
        # A piece-embedding network's bag-of-pieces vectors are computed once and held fixed;
        # the rest of ψ is tailored.
        vectors = net.inputs.piece_vectors(batch) if net.inputs.piece_mode else None
        try:
            for n in sorted(set(lengths.tolist()) - {0}):
                rows = torch.nonzero(lengths == n).flatten()
                for chunk in rows.split(self.group_size):
                    group = None if vectors is None else vectors[chunk, :n]
                    tailored = self._tailor(
                        net, objective, batch, chunk, n, steps, learning_rate, group
                    )
                    for k, z in tailored.items():
                        logits[k][chunk, :n] = z
        finally:
            net.train(was_training)
        return logits

    def _tailor(
        self, net, objective, batch, rows, n, wanted, lr, vectors=None
    ) -> dict[int, torch.Tensor]:
        """Tailor one group of sentences of length ``n``; {N: logits [G, n, L]}.

        ``vectors`` [G, n, D]: fixed piece vectors of a piece-embedding network (else None)."""
        G = rows.shape[0]
        words = batch.word_ids[rows, :n]
        chars = batch.char_ids[rows, :n]
        cases = None if batch.case_ids is None else batch.case_ids[rows, :n]
        emissions = objective.emissions[rows, :n]
        # the piece table is not copied per sentence: the group's piece vectors are inputs
        skip = (_EMBED, _PIECES)
        trainable = {k: v for k, v in net.named_parameters() if v.requires_grad and k not in skip}
        params = {
            k: v.detach().unsqueeze(0).expand(G, *v.shape).clone() for k, v in trainable.items()
        }
        frozen = {}
        table = net.inputs.embed.weight
        rows_table = table[words]  # [G, n, D]
        if batch.pretrained_mask is not None and net.inputs.reads_vectors:
            # a word outside the vocabulary with a pretrained vector: its own local row, which
            # starts from that vector (its word id is the unknown word's)
            own = batch.pretrained_mask[rows, :n]
            position = torch.arange(n, device=words.device).expand(G, n)
            local = torch.where(own, position + 1, _local_vocabulary(torch.where(own, -1, words)))
            vec = batch.pretrained[rows, :n].to(table)
            rows_table = torch.where(own.unsqueeze(-1), vec, rows_table)
        else:
            local = _local_vocabulary(words)
        local_table = torch.cat([table.new_zeros(G, 1, table.shape[1]), rows_table], dim=1)
        if table.requires_grad:
            params[_EMBED] = local_table
        else:
            frozen[_EMBED] = local_table
        ones = torch.ones(1, n, dtype=torch.bool, device=words.device)

        def sentence_logits(p, frozen_p, w, c, case, vec):
            one = EncodedBatch(
                w[None],
                c[None],
                ones,
                None if case is None else case[None],
                True,
                piece_vectors=None if vec is None else vec[None],
            )
            return functional_call(net, {**p, **frozen_p}, (one,))[0]

        def sentence_energy(p, frozen_p, w, c, case, vec, em):
            y = torch.softmax(sentence_logits(p, frozen_p, w, c, case, vec), dim=-1)
            return crf_energy(
                em[None],
                objective.transitions,
                y[None],
                None,
                objective.start_transitions,
                objective.end_transitions,
            )[0]

        case_dim = None if cases is None else 0
        frozen_dims = {k: 0 for k in frozen}
        args = (local, chars, cases, vectors)
        in_dims = (0, frozen_dims, 0, 0, case_dim, None if vectors is None else 0)
        step_grad = vmap(grad(sentence_energy), in_dims=(*in_dims, 0))
        forward = vmap(sentence_logits, in_dims=in_dims)
        velocity = {k: torch.zeros_like(v) for k, v in params.items()}
        out: dict[int, torch.Tensor] = {}
        with torch.enable_grad(), warnings.catch_warnings():
            # nn.LSTM has no vmap batching rule: torch loops over the group internally.
            warnings.filterwarnings("ignore", message=".*batching rule.*")
            for step in range(wanted[-1] + 1):
                if step in wanted:
                    out[step] = forward(params, frozen, *args).detach()
                if step == wanted[-1]:
                    break
                grads = step_grad(params, frozen, *args, emissions)
                for k, g in grads.items():
                    velocity[k] = self.momentum * velocity[k] + g
                    params[k] = params[k] - lr * velocity[k]
        return out
