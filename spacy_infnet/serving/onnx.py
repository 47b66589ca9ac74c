"""The inference network A_Ψ(x) (Tu & Gimpel 2019, §4) as an ONNX graph, run by onnxruntime.

:func:`export_infnet` writes ``model.infnet`` (eval mode: no dropout) as one ONNX graph from the
encoder's lookups to the logits [B, T, L]; :class:`OnnxInfnet` runs it on an
:class:`~spacy_infnet.core.encoding.EncodedBatch`; :func:`tags_from_logits` turns the logits into
tags exactly as :class:`~spacy_infnet.core.decoders.InferenceNetworkDecoder` does (per-position
argmax, or constrained rounding); :func:`attach_onnx` sets it as
the model's ``onnx_runner``, which the infnet decoder runs with ``backend = "onnx"``.

Graph inputs (all with dynamic batch B, length T and character C axes), in this order, only
those the network reads:

    word_ids [B, T] int64, always
    char_ids [B, T, C] int64, with a character CNN
    case_ids [B, T] int64, with a case embedding (``case_dim`` > 0)
    mask [B, T] bool, always
    pretrained [B, T, D] float32 and pretrained_mask [B, T] bool, when the network reads the
        encoder's pretrained vectors (``InputEmbedding.reads_vectors``, true for every network
        distilled from a BLSTM-CRF energy, whether or not a table is attached now); a batch
        without vectors is fed zeros and an all-False mask, which gives the same numbers.

Output: ``logits`` [B, T, L] float32, 0 at padding positions for a CNN (as in PyTorch).

The graph is built from export-friendly twins of the PyTorch modules that compute the same
function without data-dependent indexing (which the exporters cannot trace): the character CNN
runs densely over all B·T rows with padding characters at −∞ before the max and padding tokens'
rows set to 0 (PyTorch convolves each distinct real token once); the CNN convolves the padded
batch, whose padding vectors are zero, as its packed sequence with zero gaps is; the BLSTM runs
one ONNX LSTM per direction and layer, the backward one over each sentence reversed within its
length (PyTorch packs the sequences); the seq2seq decoder's greedy loop is a scripted function
that the graph keeps as an ONNX Loop over T (its argmax feedback means a rounding difference at
a near-tie can change the rest of that sentence).  Piece-embedding networks are refused.

The exporter is PyTorch's TorchScript-based one (``torch.onnx.export(..., dynamo=False)``), which
needs no package beyond ``onnx``; running needs ``onnxruntime``.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.decoders.infnet import round_logits
from ..core.encoding import N_CASE_CLASSES, EncodedBatch
from ..core.features import CharCNN
from ..core.infnets import (
    BLSTMInferenceNetwork,
    CNNInferenceNetwork,
    InferenceNetwork,
    InputEmbedding,
    Seq2SeqInferenceNetwork,
)
from ..core.infnets.cnn import dilated_stack
from ..fileio import atomic_write

#: Every graph input, in graph order (a graph has the subset its network reads).
INPUT_NAMES = ("word_ids", "char_ids", "case_ids", "mask", "pretrained", "pretrained_mask")
OUTPUT_NAME = "logits"
#: Prefix of the metadata keys written into the ONNX model.
META = "spacy_infnet."
_DYNAMIC_AXES = {
    "word_ids": {0: "batch", 1: "length"},
    "char_ids": {0: "batch", 1: "length", 2: "chars"},
    "case_ids": {0: "batch", 1: "length"},
    "mask": {0: "batch", 1: "length"},
    "pretrained": {0: "batch", 1: "length"},
    "pretrained_mask": {0: "batch", 1: "length"},
    OUTPUT_NAME: {0: "batch", 1: "length"},
}


# -- export-friendly twins of the PyTorch modules ----------------------------------------------
class DenseCharCNN(nn.Module):
    """:class:`~spacy_infnet.core.features.CharCNN` in eval mode, computed densely over every
    [B·T, C] row (no ``torch.unique``, no boolean indexing); shares ``cnn``'s parameters.

    Each row's filters are maxed over its real characters only (padding at −∞ before the max),
    and all-padding rows (padding tokens) give 0, as in ``CharCNN``.  The padding character's
    embedding (row 0, ``padding_idx``) is the zero vector, so convolving the columns beyond a
    word's end equals ``CharCNN``'s convolving the batch cut to its longest word.

    Shapes: ``forward(char_ids [B, T, C] int64) -> [B, T, n_filters]``.
    """

    def __init__(self, cnn: CharCNN) -> None:
        super().__init__()
        self.embed = cnn.embed
        self.conv = cnn.conv

    def forward(self, char_ids: torch.Tensor) -> torch.Tensor:
        flat = char_ids.reshape(-1, char_ids.shape[2])  # [N, C]
        pad = flat == 0
        h = self.conv(self.embed(flat).transpose(1, 2))  # [N, F, C]
        h = h.masked_fill(pad.unsqueeze(1), float("-inf")).amax(dim=2)  # [N, F]
        real = (~pad).any(dim=1, keepdim=True)
        h = torch.where(real, h, torch.zeros_like(h))
        return h.reshape(char_ids.shape[0], char_ids.shape[1], h.shape[-1])


class _Inputs(nn.Module):
    """:class:`~spacy_infnet.core.infnets.InputEmbedding` in eval mode (no piece mode), from
    named tensors; shares its parameters.  ``forward(x) -> [B, T, output_size]``, zero at
    padding."""

    def __init__(self, inputs: InputEmbedding) -> None:
        super().__init__()
        self.embed = inputs.embed
        self.reads_vectors = bool(inputs.reads_vectors)
        self.char_cnn = None if inputs.char_cnn is None else DenseCharCNN(inputs.char_cnn)
        self.case_embed = inputs.case_embed

    @property
    def input_names(self) -> tuple[str, ...]:
        reads = {
            "word_ids": True,
            "char_ids": self.char_cnn is not None,
            "case_ids": self.case_embed is not None,
            "mask": True,
            "pretrained": self.reads_vectors,
            "pretrained_mask": self.reads_vectors,
        }
        return tuple(name for name in INPUT_NAMES if reads[name])

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        words = self.embed(x["word_ids"])
        if self.reads_vectors:
            vectors = x["pretrained"].to(words.dtype)
            words = torch.where(x["pretrained_mask"].unsqueeze(-1), vectors, words)
        parts = [words]
        if self.char_cnn is not None:
            parts.append(self.char_cnn(x["char_ids"]))
        if self.case_embed is not None:
            parts.append(self.case_embed(x["case_ids"]))
        out = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
        return out * x["mask"].unsqueeze(-1).to(out.dtype)


class _ExportCNN(nn.Module):
    """:class:`~spacy_infnet.core.infnets.CNNInferenceNetwork` over the padded batch."""

    def __init__(self, net: CNNInferenceNetwork) -> None:
        super().__init__()
        self.inputs = _Inputs(net.inputs)
        self.convs = net.convs
        self.dilated = net.dilated
        self.output = net.output

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        seq = self.inputs(x).transpose(1, 2)  # [B, D, T], zero at padding
        h = torch.cat([torch.tanh(conv(seq)) for conv in self.convs], dim=1)
        if len(self.dilated):  # padding zeroed before and after each dilated layer
            keep = x["mask"].unsqueeze(1).to(h.dtype)
            h = dilated_stack(self.dilated, h * keep, keep)
        logits = self.output(h.transpose(1, 2))
        return logits.masked_fill(~x["mask"].unsqueeze(-1), 0.0)


def _unidirectional(lstm: nn.LSTM, layer: int, suffix: str) -> nn.LSTM:
    """A one-layer, one-direction batch-first LSTM holding a copy of ``lstm``'s parameters of
    ``layer`` and direction ``suffix`` ("" forward, "_reverse" backward)."""
    size = lstm.input_size if layer == 0 else 2 * lstm.hidden_size
    out = nn.LSTM(size, lstm.hidden_size, batch_first=True, bias=lstm.bias)
    with torch.no_grad():
        for kind in ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if lstm.bias else ()):
            getattr(out, f"{kind}_l0").copy_(getattr(lstm, f"{kind}_l{layer}{suffix}"))
    return out.to(lstm.weight_ih_l0.device).eval()


class _PaddedBLSTM(nn.Module):
    """A batch-first bidirectional ``nn.LSTM`` run on left-aligned padded sequences as on packed
    ones: the backward direction reads each sentence reversed within its length, so padding
    enters neither direction's states at real positions.  Outputs at padding are 0 (as
    ``pad_packed_sequence`` gives).  ``forward(x [B, T, D], mask [B, T]) -> [B, T, 2H]``."""

    def __init__(self, lstm: nn.LSTM) -> None:
        super().__init__()
        if not (lstm.bidirectional and lstm.batch_first) or lstm.proj_size:
            raise ValueError("only batch-first bidirectional LSTMs without projections export")
        self.forward_layers = nn.ModuleList(
            _unidirectional(lstm, k, "") for k in range(lstm.num_layers)
        )
        self.backward_layers = nn.ModuleList(
            _unidirectional(lstm, k, "_reverse") for k in range(lstm.num_layers)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # run_blstm packs with lengths clamped to ≥ 1 (an empty row reads one padding vector)
        lengths = mask.to(torch.long).sum(dim=1, keepdim=True).clamp(min=1)  # [B, 1]
        t = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)  # [1, T]
        real = t < lengths
        reverse = torch.where(real, lengths - 1 - t, t).unsqueeze(-1)  # an involution
        for fwd, bwd in zip(self.forward_layers, self.backward_layers):
            ahead = fwd(x)[0]
            flipped = torch.gather(x, 1, reverse.expand(-1, -1, x.shape[-1]))
            back = bwd(flipped)[0]
            back = torch.gather(back, 1, reverse.expand(-1, -1, back.shape[-1]))
            x = torch.cat([ahead, back], dim=-1)
        return x.masked_fill(~real.unsqueeze(-1), 0.0)


class _ExportBLSTM(nn.Module):
    """:class:`~spacy_infnet.core.infnets.BLSTMInferenceNetwork` over the padded batch."""

    def __init__(self, net: BLSTMInferenceNetwork) -> None:
        super().__init__()
        self.inputs = _Inputs(net.inputs)
        self.lstm = _PaddedBLSTM(net.lstm)
        self.output = net.output

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.output(self.lstm(self.inputs(x), x["mask"]))


def _greedy_steps(
    s: torch.Tensor,
    label_embed: torch.Tensor,
    w_ih: torch.Tensor,
    w_hh: torch.Tensor,
    bias: torch.Tensor,
    w_out: torch.Tensor,
    b_out: torch.Tensor,
    n_labels: int,
) -> torch.Tensor:
    """The seq2seq decoder's T steps (an ONNX Loop once exported): ``s`` [B, T, 2H] encoder
    states → logits [B, T, n_labels], each step reading the embedding of the previous step's
    argmax (start symbol ``n_labels``) into an LSTM cell (gates i, f, g, o, as ``nn.LSTMCell``)."""
    B = s.size(0)
    T = s.size(1)
    H = w_hh.size(1)
    h = torch.zeros(B, H, dtype=s.dtype, device=s.device)
    c = torch.zeros(B, H, dtype=s.dtype, device=s.device)
    prev = torch.full([B], n_labels, dtype=torch.long, device=s.device)
    out = torch.zeros(B, 0, n_labels, dtype=s.dtype, device=s.device)
    for t in range(T):
        gates = label_embed[prev] @ w_ih.t() + h @ w_hh.t() + bias
        i, f, g, o = gates.chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        logit = torch.cat([h, s[:, t]], -1) @ w_out.t() + b_out
        out = torch.cat([out, logit.unsqueeze(1)], 1)
        prev = logit.argmax(-1)
    return out


@functools.cache
def _greedy_decoder() -> Any:
    """:func:`_greedy_steps` scripted (once, on first use), so that tracing keeps its loop."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated
        return torch.jit.script(_greedy_steps)


class _ExportSeq2Seq(nn.Module):
    """:class:`~spacy_infnet.core.infnets.Seq2SeqInferenceNetwork` over the padded batch (the
    decoder loop is scripted, so the graph keeps it as a loop over T)."""

    def __init__(self, net: Seq2SeqInferenceNetwork) -> None:
        super().__init__()
        self.inputs = _Inputs(net.inputs)
        self.encoder = _PaddedBLSTM(net.encoder)
        self.label_embed = net.label_embed
        self.decoder = net.decoder
        self.output = net.output
        self.n_labels = net.n_labels

    def forward(self, x: dict[str, torch.Tensor]) -> torch.Tensor:
        s = self.encoder(self.inputs(x), x["mask"])
        cell = self.decoder
        bias = (
            cell.bias_ih + cell.bias_hh
            if cell.bias
            else torch.zeros(4 * cell.hidden_size, dtype=s.dtype, device=s.device)
        )
        return _greedy_decoder()(
            s,
            self.label_embed.weight,
            cell.weight_ih,
            cell.weight_hh,
            bias,
            self.output.weight,
            self.output.bias,
            self.n_labels,
        )


#: The export-friendly twin of each inference network class.
_TWINS: dict[type, type[nn.Module]] = {
    CNNInferenceNetwork: _ExportCNN,
    BLSTMInferenceNetwork: _ExportBLSTM,
    Seq2SeqInferenceNetwork: _ExportSeq2Seq,
}


class ExportableInfnet(nn.Module):
    """An inference network as a function of positional tensors (:attr:`input_names`, the graph's
    inputs) to its logits [B, T, L]: what :func:`export_infnet` traces.  Shares ``net``'s
    parameters (the BLSTM's are copied); use it in eval mode.

    Raises:
        ValueError: a piece-embedding network, or an architecture other than cnn, blstm and
            seq2seq.
    """

    def __init__(self, net: InferenceNetwork) -> None:
        super().__init__()
        if net.inputs.piece_mode:
            raise ValueError(
                "ONNX export of a piece-embedding inference network (piece_embeddings = true) "
                "is not supported: its inputs are a transformer tokenizer's subword pieces"
            )
        twin = _TWINS.get(type(net))
        if twin is None:
            raise ValueError(
                f"ONNX export supports the cnn, blstm and seq2seq inference networks, not "
                f"{type(net).__name__} ({net.config.architecture!r})"
            )
        self.body: nn.Module = twin(net)
        self.input_names = self.body.inputs.input_names
        self.n_labels = net.n_labels

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.body(dict(zip(self.input_names, tensors)))


# -- export --------------------------------------------------------------------------------------
def onnx_input_names(net: InferenceNetwork) -> tuple[str, ...]:
    """The graph inputs :func:`export_infnet` gives ``net`` (a subset of :data:`INPUT_NAMES`).

    Raises:
        ValueError: an architecture that does not export (see :class:`ExportableInfnet`).
    """
    return ExportableInfnet(net).input_names


def weights_digest(net: InferenceNetwork) -> str:
    """SHA-256 (hex) of ``net``'s parameters and buffers (names, shapes, dtypes, bytes): the
    export records it, so that :meth:`OnnxInfnet.check` can tell a stale file."""
    digest = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tuple(value.shape)}:{value.dtype};".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _example(
    net: InferenceNetwork, names: Sequence[str]
) -> tuple[EncodedBatch, list[torch.Tensor]]:
    """A small random padded batch (B = 3, T = 6, C = 5; one sentence of length 1) for tracing,
    as an EncodedBatch for ``net`` and as the graph's input tensors."""
    gen = torch.Generator().manual_seed(0)
    B, T, C = 3, 6, 5
    lengths = torch.tensor([T, 1, 4])
    mask = torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)
    n_words = net.inputs.embed.num_embeddings
    word_ids = torch.randint(1, max(n_words, 2), (B, T), generator=gen) * mask
    char_ids = torch.zeros((B, T, 1), dtype=torch.long)
    if net.inputs.char_cnn is not None:
        n_chars = net.inputs.char_cnn.embed.num_embeddings
        chars = torch.randint(1, max(n_chars, 2), (B, T, C), generator=gen)
        word_lengths = torch.randint(1, C + 1, (B, T, 1), generator=gen)
        char_ids = chars * (torch.arange(C) < word_lengths) * mask.unsqueeze(-1)
    case_ids = torch.randint(1, N_CASE_CLASSES, (B, T), generator=gen) * mask
    dim = net.inputs.embed.embedding_dim
    pretrained_mask = (torch.rand((B, T), generator=gen) < 0.3) & mask
    pretrained = torch.randn((B, T, dim), generator=gen) * pretrained_mask.unsqueeze(-1)
    batch = EncodedBatch(
        word_ids, char_ids, mask, case_ids, pretrained=pretrained, pretrained_mask=pretrained_mask
    )
    values = {
        "word_ids": word_ids,
        "char_ids": char_ids,
        "case_ids": case_ids,
        "mask": mask,
        "pretrained": pretrained,
        "pretrained_mask": pretrained_mask,
    }
    return batch, [values[name] for name in names]


def export_infnet(model: Any, path: Path | str, opset: int | None = None) -> Path:
    """Write ``model.infnet`` (an :class:`~spacy_infnet.core.model.InfnetModel`'s, in eval
    mode) to ``path`` as an ONNX graph: inputs as the module docstring lists
    (:func:`onnx_input_names`), output ``logits`` [B, T, L] float32, with dynamic batch, length
    and character axes.

    The model is not changed (a CPU copy is exported).  The file is written atomically (a
    temporary file in ``path``'s directory, then ``os.replace``) after ``onnx.checker`` has
    accepted the graph and the traced function has matched the network on a random padded batch.
    Its metadata (``spacy_infnet.*`` keys) hold the labels, the inputs, the architecture and
    :func:`weights_digest`.

    Args:
        model: an InfnetModel (or anything with ``infnet`` and ``labels``).
        path: the ``.onnx`` file to write (its directory must exist).
        opset: the ONNX opset (None: the exporter's default).

    Returns:
        ``path``.

    Raises:
        ValueError: no inference network, or one that does not export (piece embeddings).
        RuntimeError: the export-friendly twin differs from the network (a bug).
        ImportError: ``onnx`` is not installed.
    """
    import onnx

    path = Path(path)
    if getattr(model, "infnet", None) is None:
        raise ValueError("ONNX export needs a model with an inference network; this one has none")
    net = copy.deepcopy(model.infnet).cpu().eval()
    twin = ExportableInfnet(net).eval()
    names = twin.input_names
    batch, tensors = _example(net, names)
    with torch.no_grad():
        expected = net(batch)
        traced = twin(*tensors)
    real = batch.mask
    gap = float((expected[real] - traced[real]).abs().max())
    if gap > 1e-4:
        raise RuntimeError(f"the ONNX twin of the inference network differs by {gap:.2e}")
    labels = [str(label) for label in getattr(model, "labels", ())]
    meta = {
        "labels": json.dumps(labels, ensure_ascii=False),
        "n_labels": str(net.n_labels),
        "inputs": json.dumps(list(names)),
        "architecture": net.config.architecture,
        "infnet_config": json.dumps(net.config.to_dict()),
        "weights_sha256": weights_digest(model.infnet),
    }
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as work:
        raw = Path(work) / "raw.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer notes
            torch.onnx.export(
                twin,
                tuple(tensors),
                str(raw),
                dynamo=False,
                input_names=list(names),
                output_names=[OUTPUT_NAME],
                dynamic_axes={k: v for k, v in _DYNAMIC_AXES.items() if k in (*names, OUTPUT_NAME)},
                opset_version=opset,
                do_constant_folding=True,
            )
        graph = onnx.load(str(raw))
        graph.producer_name = "spacy_infnet"
        for key, value in meta.items():
            entry = graph.metadata_props.add()
            entry.key, entry.value = META + key, value
        onnx.checker.check_model(graph, full_check=True)
        # a model file is readable by others (mkstemp's files are private)
        atomic_write(path, graph.SerializeToString(), mode=0o644)
    return path


# -- running ------------------------------------------------------------------------------------
class OnnxInfnet:
    """An exported inference network (:func:`export_infnet`) in an onnxruntime session
    (CPUExecutionProvider, ``threads`` intra-op threads, 1 inter-op thread, every graph
    optimisation).

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads.
        labels: the labels the caller's model has (optional): checked against the file's.

    Attributes:
        path, input_names (the graph's inputs), labels (the file's, in tensor order),
        n_labels, vector_dim (the width of ``pretrained``, None when the graph reads none),
        metadata (the ``spacy_infnet.*`` entries, without the prefix).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not an ONNX model onnxruntime can load, is not an exported
            inference network, or has labels other than ``labels`` (each message one line
            naming the file).
        ImportError: ``onnxruntime`` is not installed.
    """

    def __init__(
        self, path: Path | str, threads: int = 1, labels: Sequence[str] | None = None
    ) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no ONNX inference network at {path}")
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise ImportError("running an ONNX inference network needs onnxruntime") from err
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own Fail / InvalidProtobuf types
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ValueError(f"{path} is not an ONNX model onnxruntime can load: {first}") from err
        self.path = path
        self.session = session
        self.threads = threads
        props = session.get_modelmeta().custom_metadata_map
        self.metadata = {k[len(META) :]: v for k, v in props.items() if k.startswith(META)}
        self.input_names = tuple(i.name for i in session.get_inputs())
        outputs = [o.name for o in session.get_outputs()]
        if (
            OUTPUT_NAME not in outputs
            or not set(self.input_names) <= set(INPUT_NAMES)
            or "n_labels" not in self.metadata
        ):
            raise ValueError(
                f"{path} is not an exported inference network (inputs {list(self.input_names)}, "
                f"outputs {outputs}): write one with spacy_infnet.serving.export_infnet"
            )
        self.n_labels = int(self.metadata["n_labels"])
        self.labels = tuple(json.loads(self.metadata.get("labels", "[]")))
        self.vector_dim: int | None = None
        for i in session.get_inputs():
            if i.name == "pretrained":
                self.vector_dim = int(i.shape[-1])
        if labels is not None:
            self.check_labels(labels)

    def check_labels(self, labels: Sequence[str]) -> None:
        """Check that the file's labels are ``labels`` (count, then names and order).

        Raises:
            ValueError: one line naming the file and both label counts (or the first label
                that differs).
        """
        labels = tuple(str(label) for label in labels)
        if len(labels) != self.n_labels:
            raise ValueError(
                f"{self.path}: the ONNX inference network has {self.n_labels} labels, the model "
                f"has {len(labels)}: export it again from this model"
            )
        if self.labels and self.labels != labels:
            k = next(i for i, (a, b) in enumerate(zip(self.labels, labels)) if a != b)
            raise ValueError(
                f"{self.path}: the ONNX inference network's label {k} is {self.labels[k]!r}, the "
                f"model's is {labels[k]!r}: export it again from this model"
            )

    def check(self, model: Any) -> None:
        """Check that this file is ``model.infnet`` exported: same labels and weights
        (:func:`weights_digest`).

        Raises:
            ValueError: one line naming the file: no inference network, other labels, or other
                weights (a stale export).
        """
        if getattr(model, "infnet", None) is None:
            raise ValueError(f"{self.path}: the model has no inference network to compare with")
        self.check_labels(getattr(model, "labels", None) or model.energy.labels)
        saved = self.metadata.get("weights_sha256")
        if saved is not None and saved != weights_digest(model.infnet):
            raise ValueError(
                f"{self.path}: the ONNX inference network's weights are not the model's "
                "(a stale export): export it again from this model"
            )

    def feeds(self, batch: EncodedBatch) -> dict[str, np.ndarray]:
        """The graph inputs of ``batch`` as numpy arrays (zeros and an all-False mask for
        ``pretrained`` when the batch has no vectors).

        Raises:
            ValueError: the graph reads case classes and the batch has none, or the batch's
                pretrained vectors have another width than the graph's.
        """
        out: dict[str, np.ndarray] = {}
        B, T = batch.word_ids.shape
        for name in self.input_names:
            if name == "pretrained":
                if batch.pretrained is None:
                    out[name] = np.zeros((B, T, self.vector_dim), dtype=np.float32)
                    continue
                if batch.pretrained.shape[-1] != self.vector_dim:
                    raise ValueError(
                        f"{self.path}: the batch's pretrained vectors have dimension "
                        f"{batch.pretrained.shape[-1]}, the ONNX network reads {self.vector_dim}"
                    )
                out[name] = _numpy(batch.pretrained, np.float32)
            elif name == "pretrained_mask":
                out[name] = (
                    np.zeros((B, T), dtype=bool)
                    if batch.pretrained_mask is None
                    else _numpy(batch.pretrained_mask, bool)
                )
            elif name == "case_ids":
                if batch.case_ids is None:
                    raise ValueError(
                        f"{self.path}: this inference network reads case classes: encode with "
                        "case_ids"
                    )
                out[name] = _numpy(batch.case_ids, np.int64)
            elif name == "mask":
                out[name] = _numpy(batch.mask, bool)
            else:
                out[name] = _numpy(getattr(batch, name), np.int64)
        return out

    def logits(self, batch: EncodedBatch) -> np.ndarray:
        """A_Ψ's logits [B, T, L] float32 of ``batch`` (values at padding are meaningless, 0
        for a CNN).  Encode with characters (``chars=True``) when the network has a character
        CNN.

        Raises:
            ValueError: see :meth:`feeds`.
        """
        B, T = batch.word_ids.shape
        if B == 0:
            return np.zeros((0, T, self.n_labels), dtype=np.float32)
        return self.session.run([OUTPUT_NAME], self.feeds(batch))[0]


def _numpy(tensor: torch.Tensor, dtype: Any) -> np.ndarray:
    if tensor.device.type != "cpu" or tensor.requires_grad:
        tensor = tensor.detach().cpu()
    array = tensor.numpy()  # shares the CPU tensor's memory: no copy for one sentence
    return array if array.dtype == dtype else array.astype(dtype)


def tags_from_logits(
    logits: np.ndarray | torch.Tensor,
    mask: torch.Tensor,
    rounding: str = "argmax",
    energy: Any = None,
) -> torch.Tensor:
    """Tags [B, T] long (0 at padding) from logits [B, T, L] (numpy, as onnxruntime returns
    them) by :func:`~spacy_infnet.core.decoders.infnet.round_logits`, the infnet decoder's own
    rounding.  The tags are on ``mask``'s device.

    Raises:
        ValueError: an unknown ``rounding``; constrained rounding without ``energy``.
    """
    if rounding == "constrained" and energy is None:
        raise ValueError("constrained rounding needs the energy (its tag-scheme constraints)")
    return round_logits(energy, torch.as_tensor(logits).to(mask.device), mask, rounding)


def attach_onnx(model: Any, path: Path | str | None = None, threads: int = 1) -> OnnxInfnet:
    """Give ``model`` (an :class:`~spacy_infnet.core.model.InfnetModel`) its inference network
    as an onnxruntime session, ``model.onnx_runner``, which the infnet decoder's ``backend =
    "onnx"`` runs.  An existing file at ``path`` is loaded and checked against the model
    (:meth:`OnnxInfnet.check`); otherwise Ψ is exported there (:func:`export_infnet`; with
    ``path`` None, to a temporary file that is removed once loaded).

    Raises:
        ValueError: no trained inference network, a stale or foreign file (naming it), or a
            network :func:`export_infnet` refuses.
        ImportError: onnx or onnxruntime is not installed (``pip install spacy-infnet[onnx]``).
    """
    if path is not None and Path(path).is_file():
        runner = OnnxInfnet(path, threads)
        runner.check(model)
    elif path is not None:
        runner = OnnxInfnet(export_infnet(model, path), threads, labels=model.labels)
    else:
        with tempfile.TemporaryDirectory(prefix="spacy-infnet-onnx-") as tmp:
            runner = OnnxInfnet(export_infnet(model, Path(tmp) / "infnet.onnx"), threads)
    model.onnx_runner = runner
    return runner
