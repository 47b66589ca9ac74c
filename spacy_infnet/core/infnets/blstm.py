"""BLSTM inference network (Tu & Gimpel 2019, §4.1).

A bidirectional LSTM tagger with H units per direction and 1 or 2 layers:

    A_Ψ(x)_t = softmax(U [→h_t; ←h_t] + c).

Sequences are packed, so padding never enters the recurrence.
"""

from __future__ import annotations

import torch
from torch import nn

from ..encoding import EncodedBatch
from ..features import run_blstm
from .base import InferenceNetwork, InfnetConfig


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
        h = run_blstm(self.lstm, self.inputs(batch), batch.mask, batch.dense)
        return self.output(self.hidden_dropout(h))

    def load_energy_network(self, energy: nn.Module) -> None:
        """Copy a BLSTM-CRF energy's word embeddings, char CNN, BLSTM and emission layer.

        Afterwards A_Ψ(x) = softmax(u_iᵀ f(x, t)), the energy's emissions alone; stage 2 then
        teaches Ψ what the transitions add.  ``energy`` is a
        :class:`~spacy_infnet.core.energy.BLSTMCRFEnergy`.

        Raises:
            ValueError: the shapes differ: Ψ needs the energy's hidden_size, n_layers, char
                CNN settings, and case_dim = 0.
        """
        features = energy.features
        pairs = [
            (self.inputs.embed, features.embed),
            (self.lstm, features.lstm),
            (self.output, energy.emission),
        ]
        if (self.inputs.char_cnn is None) != (features.char_cnn is None):
            raise ValueError(
                "infnet_init = 'energy': the inference network and the energy must both have "
                "or both lack a char CNN"
            )
        if self.inputs.char_cnn is not None:
            pairs.append((self.inputs.char_cnn, features.char_cnn))
        if self.inputs.case_embed is not None:
            raise ValueError(
                "infnet_init = 'energy' needs case_dim = 0 (the energy has no case input)"
            )
        for own, theirs in pairs:
            mine = own.state_dict()
            source = theirs.state_dict()
            bad = [
                f"{k}: energy {tuple(source[k].shape) if k in source else 'missing'}, "
                f"inference network {tuple(v.shape)}"
                for k, v in mine.items()
                if k not in source or source[k].shape != v.shape
            ]
            if bad:
                raise ValueError(
                    "infnet_init = 'energy': the BLSTM inference network's shapes differ from "
                    f"the energy's ({'; '.join(bad)}); give it the energy's hidden_size, "
                    "n_layers and char settings"
                )
        with torch.no_grad():
            for own, theirs in pairs:
                own.load_state_dict(theirs.state_dict())
