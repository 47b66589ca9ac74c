"""Loading the pipeline that tags a corpus, with its decoder and confidence settings, and
feeding it records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .records import Record


@dataclass(frozen=True)
class TaggerSettings:
    """What the output depends on, besides the input.

    Attributes:
        pipeline: a trained pipeline directory.
        component: the name of its ``infnet_tagger``.
        decoder: a short decoder name of ``spacy_infnet.pipeline.registry.DECODERS``, or None
            for the pipeline's configured decoder.
        confidence: compute and write probabilities (the component's ``confidence = true``).
    """

    pipeline: str
    component: str = "infnet_tagger"
    decoder: str | None = None
    confidence: bool = False

    def check(self) -> None:
        """Raises:
        FileNotFoundError: the pipeline directory or its weights file does not exist.
        ValueError: an unknown decoder name.
        """
        from ..pipeline.checksum import weights_path
        from ..pipeline.registry import decoder_block

        if not Path(self.pipeline).is_dir():
            raise FileNotFoundError(
                f"pipeline directory {self.pipeline} does not exist (pass a trained pipeline "
                "such as runs/pos/model-best)"
            )
        if not weights_path(self.pipeline, self.component).is_file():
            raise FileNotFoundError(
                f"{weights_path(self.pipeline, self.component)} does not exist: "
                f"{self.pipeline} has no trained infnet_tagger named {self.component!r}"
            )
        if self.decoder is not None:
            decoder_block(self.decoder)

    def overrides(self) -> dict[str, Any]:
        """The config overrides of ``spacy.load``."""
        from ..pipeline.registry import decoder_block

        block: dict[str, Any] = {"confidence": self.confidence}
        if self.decoder is not None:
            block["decoder"] = decoder_block(self.decoder)
        return {"components": {self.component: block}}

    def load(self, gpu_id: int = -1):
        """``(nlp, task)``: the pipeline (on GPU ``gpu_id`` if ≥ 0, through spaCy's
        ``require_gpu``) and its component's task, ``"tag"`` or ``"ner"``.

        Raises:
            the errors of :meth:`check`; ValueError: no such component.
        """
        import spacy

        self.check()
        if gpu_id >= 0:
            spacy.require_gpu(gpu_id)
        nlp = spacy.load(self.pipeline, config=self.overrides())
        if self.component not in nlp.pipe_names:
            raise ValueError(
                f"{self.pipeline} has no component {self.component!r}: it has {nlp.pipe_names}"
            )
        return nlp, nlp.get_pipe(self.component).task


def pipe_input(record: Record, vocab):
    """What ``nlp.pipe`` takes for a good record: its text, or a ``Doc`` of its words."""
    from .output import words_doc

    return record.text if record.words is None else words_doc(vocab, record.words)
