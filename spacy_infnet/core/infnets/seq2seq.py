"""Sequence-to-sequence inference network with fixed position attention (Tu & Gimpel 2019,
§4.1, following Goyal et al. 2018).

A BLSTM encoder gives states s_t.  An LSTM decoder reads, at step t, the embedding of the label
it predicted at step t−1 (a start symbol at t = 1):

    h_t = LSTM(h_{t−1}, emb(ŷ_{t−1})),   ŷ_{t−1} = argmax_i P(y_{t−1} = i | ŷ_{<t−1}, x),
    P(y_t | ŷ_{<t}, x) = softmax(W_s [h_t; s_t] + b),

"fixed position attention" meaning the decoder attends to exactly the encoder state of its own
position t.  The local loss is the sum of log losses conditioned on the previously *predicted*
labels (no teacher forcing), which is :func:`token_cross_entropy` of these logits.  The argmax
feedback is not differentiated; gradients reach Ψ through every P(y_t | ·).
"""

from __future__ import annotations

import torch
from torch import nn

from ..encoding import EncodedBatch
from ..features import run_blstm, unrolled_lstm_cell
from .base import InferenceNetwork, InfnetConfig


class Seq2SeqInferenceNetwork(InferenceNetwork):
    """Seq2seq tagger.  Shapes: ``logits(batch) -> [B, T, n_labels]``; the decoder runs T steps."""

    def __init__(self, config: InfnetConfig, n_labels: int, n_words: int, n_chars: int) -> None:
        super().__init__(config, n_labels, n_words, n_chars)
        H = config.hidden_size
        self.encoder = nn.LSTM(
            self.inputs.output_size,
            H,
            num_layers=config.n_layers,
            bidirectional=True,
            batch_first=True,
        )
        # Label n_labels is the start symbol.
        self.label_embed = nn.Embedding(n_labels + 1, config.label_dim)
        self.decoder = nn.LSTMCell(config.label_dim, H)
        self.hidden_dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(H + 2 * H, n_labels)

    def logits(self, batch: EncodedBatch) -> torch.Tensor:
        s = self.hidden_dropout(
            run_blstm(self.encoder, self.inputs(batch), batch.mask, batch.dense)
        )
        B, T, _ = s.shape
        H = self.config.hidden_size
        h = s.new_zeros(B, H)
        c = s.new_zeros(B, H)
        prev = torch.full((B,), self.n_labels, dtype=torch.long, device=s.device)
        # Dense batches may be vmapped (instance tailoring): the fused cell has no batching rule.
        step = unrolled_lstm_cell if batch.dense else nn.LSTMCell.__call__
        out = []
        for t in range(T):
            h, c = step(self.decoder, self.label_embed(prev), (h, c))
            logit = self.output(torch.cat([self.hidden_dropout(h), s[:, t]], dim=-1))
            out.append(logit)
            prev = logit.detach().argmax(dim=-1)
        if not out:
            return s.new_zeros(B, 0, self.n_labels)
        return torch.stack(out, dim=1)
