"""BLSTM inference network (Tu & Gimpel 2019, §4.1).

A bidirectional LSTM tagger with H units per direction and 1 or 2 layers:

    A_Ψ(x)_t = softmax(U [→h_t; ←h_t] + c).

Sequences are packed, so padding never enters the recurrence.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..encoding import EncodedBatch
from .base import InferenceNetwork, InfnetConfig


def run_blstm(lstm: nn.LSTM, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Run a batch-first (B)LSTM over the real positions of ``x`` [B, T, D] → [B, T, out]."""
    lengths = mask.sum(dim=1).clamp(min=1).cpu()
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, _ = lstm(packed)
    h, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return h


class BLSTMInferenceNetwork(InferenceNetwork):
    """BLSTM tagger.  Shapes: ``logits(batch) -> [B, T, n_labels]``."""

    def __init__(self, config: InfnetConfig, n_labels: int, n_words: int, n_chars: int) -> None:
        super().__init__(config, n_labels, n_words, n_chars)
        self.lstm = nn.LSTM(
            self.inputs.output_size,
            config.hidden_size,
            num_layers=config.n_layers,
            bidirectional=True,
            batch_first=True,
        )
        self.hidden_dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(2 * config.hidden_size, n_labels)

    def logits(self, batch: EncodedBatch) -> torch.Tensor:
        h = run_blstm(self.lstm, self.inputs(batch), batch.mask)
        return self.output(self.hidden_dropout(h))
