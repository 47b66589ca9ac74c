"""CNN inference network (Tu & Gimpel 2019, §4.1).

For each window half-width n ∈ N, a feature map of H filters reads the window centred on the
word, x_{t−n} … x_{t+n} (zero vectors beyond the sentence), with no pooling over positions:

    h_t = ⊕_{n ∈ N} g(W_n [x_{t−n}; …; x_{t+n}] + b_n),     A_Ψ(x)_t = softmax(U h_t + c),

⊕ being concatenation and g = tanh.  The paper's two settings are N = {0, 1} ({1,3}-gram,
``windows = (1, 3)``) and N = {0, 2} ({1,5}-gram, ``windows = (1, 5)``).  Every position is
computed independently, so the network is fully parallel over the sentence.

Not in the paper: ``dilations = (d_1, …, d_k)`` stacks residual layers of width-3 convolutions
with dilation d_i on h (the iterated dilated CNN of Strubell et al., EMNLP 2017),

    h ← h + g(V_i [h_{t−d_i}; h_t; h_{t+d_i}] + e_i),     i = 1 … k  (h = 0 beyond the sentence),

so that each label reads ±(max n + Σ d_i) words, still fully parallel.  Entity types often
hang on words further away than a {1,3}-gram window sees.

Only real tokens are convolved: the sentences of a batch are laid end to end with
max(max n, max d_i) zero vectors between them (exactly what each sentence's own zero padding
would be; the gaps are zeroed again after each layer), so a batch of mostly short sentences
padded to one long one costs what its tokens cost.  Logits at padding positions are 0.
"""

from __future__ import annotations

import torch
from torch import nn

from ..encoding import EncodedBatch
from .base import InferenceNetwork, InfnetConfig


def dilated_stack(
    layers: nn.ModuleList, h: torch.Tensor, keep: torch.Tensor | None
) -> torch.Tensor:
    """The dilated residual layers ``layers`` on h [N, C, S] (``keep`` [N, 1, S]: 1 on real
    tokens, 0 on the gaps and padding, re-applied after each layer; None: no gaps)."""
    for conv in layers:
        h = h + torch.tanh(conv(h))
        if keep is not None:
            h = h * keep
    return h


class CNNInferenceNetwork(InferenceNetwork):
    """Window CNN tagger.  Shapes: ``logits(batch) -> [B, T, n_labels]``."""

    def __init__(self, config: InfnetConfig, n_labels: int, n_words: int, n_chars: int) -> None:
        super().__init__(config, n_labels, n_words, n_chars)
        d = self.inputs.output_size
        self.convs = nn.ModuleList(
            nn.Conv1d(d, config.hidden_size, kernel_size=w, padding=w // 2) for w in config.windows
        )
        width = config.hidden_size * len(config.windows)
        self.dilated = nn.ModuleList(
            nn.Conv1d(width, width, kernel_size=3, dilation=d, padding=d) for d in config.dilations
        )
        self.hidden_dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(width, n_labels)

    def logits(self, batch: EncodedBatch) -> torch.Tensor:
        x = self.inputs(batch)  # [B, T, D], zero at padding
        if batch.dense:  # no padding: each row is one sentence, convolved on its own
            seq = x.transpose(1, 2)  # [B, D, T]
            h = torch.cat([torch.tanh(conv(seq)) for conv in self.convs], dim=1)
            h = dilated_stack(self.dilated, h, None)
            return self.output(self.hidden_dropout(h.transpose(1, 2)))
        mask = batch.mask
        B, T, _ = x.shape
        gap = max(max(self.config.windows) // 2, max(self.config.dilations, default=0))
        lengths = mask.sum(dim=1)
        n_real = int(lengths.sum())
        # Position of each real token (row-major order of ``x[mask]``) in the packed sequence:
        # sentence b starts after the gap, the sentences before it and their gaps.
        spans = lengths + gap
        starts = gap + torch.cumsum(spans, 0) - spans
        first = torch.cumsum(lengths, 0) - lengths
        sentence = torch.repeat_interleave(torch.arange(B, device=x.device), lengths)
        within = torch.arange(n_real, device=x.device) - first[sentence]
        position = starts[sentence] + within
        packed = x.new_zeros(gap + int(spans.sum()), x.shape[-1])
        packed[position] = x[mask]
        seq = packed.t().unsqueeze(0)  # [1, D, N]
        h = torch.cat([torch.tanh(conv(seq)) for conv in self.convs], dim=1)
        if len(self.dilated):
            keep = x.new_zeros(1, 1, packed.shape[0])
            keep[0, 0, position] = 1.0
            h = dilated_stack(self.dilated, h * keep, keep)
        h = h[0].t()
        out = self.output(self.hidden_dropout(h[position]))  # [n_real, L]
        logits = out.new_zeros(B, T, out.shape[-1])
        logits[mask] = out
        return logits
