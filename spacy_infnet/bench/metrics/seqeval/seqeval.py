"""seqeval as a local ``evaluate`` metric module, shipped inside spacy_infnet.

The Hugging Face Hub copy of the seqeval metric cannot be fetched offline; this module is loaded
from the installed package instead::

    import evaluate
    from spacy_infnet.bench.metrics import SEQEVAL_PATH
    metric = evaluate.load(str(SEQEVAL_PATH))
    metric.compute(predictions=[["B-PER", "E-PER", "O"]], references=[["B-PER", "E-PER", "O"]])

Inputs are label strings per sentence.  ``task="ner"`` scores entity chunks with seqeval (default
mode: conlleval's chunking, which accepts IOB1/IOB2/BIOES prefixes; ``mode="strict"`` with a
``scheme`` for strict matching) and reports token accuracy as well; ``task="tag"`` reports token
accuracy only (POS, supertags).  ``unknown_label`` (e.g. the CCG supertag ``"*"``) marks gold
tokens that count as wrong whatever is predicted (Tu & Gimpel 2019, §5: "*" is always wrong).

Returns ``overall_precision``, ``overall_recall``, ``overall_f1``, ``overall_accuracy`` (NER) or
``overall_accuracy`` (tags), fractions in [0, 1]; NER adds one ``{precision, recall, f1,
number}`` dict per entity type.
"""

import datasets
import evaluate
from seqeval.metrics import accuracy_score, classification_report

_DESCRIPTION = __doc__
_CITATION = """\
@inproceedings{ramshaw-marcus-1995-text, title = "Text Chunking using Transformation-Based
Learning", author = "Ramshaw, Lance and Marcus, Mitch", year = "1995"}
@misc{seqeval, title={{seqeval}: A Python framework for sequence labeling evaluation},
author={Hiroki Nakayama}, year={2018}, url={https://github.com/chakki-works/seqeval}}
"""
_KWARGS_DESCRIPTION = """
Args:
    predictions: list of predicted label sequences (list of list of str).
    references: list of gold label sequences, same lengths.
    task: "ner" (entity P/R/F1 and token accuracy) or "tag" (token accuracy).
    suffix, scheme, mode, zero_division: passed to seqeval (NER only).
    unknown_label: gold label that is always counted wrong (e.g. "*"), or None.
Returns:
    overall_accuracy (and, for NER, overall_precision / overall_recall / overall_f1 and one
    dict per entity type), fractions in [0, 1].
Raises:
    ValueError: unknown task, or a prediction and its reference differ in length.
"""

#: Replaces predictions at unknown-label positions, so they can never match.
_NEVER = "\x00never-correct\x00"


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Seqeval(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            homepage="https://github.com/chakki-works/seqeval",
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string")),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
        )

    def _compute(
        self,
        predictions,
        references,
        task="ner",
        suffix=False,
        scheme=None,
        mode=None,
        zero_division="warn",
        unknown_label=None,
    ):
        if task not in ("ner", "tag"):
            raise ValueError(f"seqeval: unknown task {task!r}: expected 'ner' or 'tag'")
        predictions = [list(p) for p in predictions]
        references = [list(r) for r in references]
        for i, (p, r) in enumerate(zip(predictions, references)):
            if len(p) != len(r):
                raise ValueError(
                    f"seqeval: sentence {i} has {len(p)} predicted and {len(r)} gold labels"
                )
            if unknown_label is not None:
                predictions[i] = [_NEVER if g == unknown_label else t for t, g in zip(p, r)]
        out = {"overall_accuracy": float(accuracy_score(y_true=references, y_pred=predictions))}
        if task == "tag":
            return out
        if scheme is not None:
            import importlib

            scheme = getattr(importlib.import_module("seqeval.scheme"), scheme)
        report = classification_report(
            y_true=references,
            y_pred=predictions,
            suffix=suffix,
            output_dict=True,
            scheme=scheme,
            mode=mode,
            zero_division=zero_division,
        )
        micro = report.pop("micro avg")
        for key in ("macro avg", "weighted avg"):
            report.pop(key, None)
        for entity, scores in report.items():
            out[entity] = {
                "precision": float(scores["precision"]),
                "recall": float(scores["recall"]),
                "f1": float(scores["f1-score"]),
                "number": int(scores["support"]),
            }
        out["overall_precision"] = float(micro["precision"])
        out["overall_recall"] = float(micro["recall"])
        out["overall_f1"] = float(micro["f1-score"])
        return out
