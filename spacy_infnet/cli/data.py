"""``convert``: one split of a dataset as a spaCy DocBin (``.spacy``), e.g. for
``spacy evaluate`` or ``python -m spacy_infnet evaluate``."""

from pathlib import Path
from typing import Annotated

from wasabi import msg

from ._util import (
    Arg,
    Dataset,
    DatasetArg,
    DocumentsOpt,
    Opt,
    OptionOpt,
    PathOpt,
    SchemeOpt,
    SplitOpt,
    user_errors,
)


@user_errors("convert")
def convert_cli(
    name: DatasetArg,
    output: Annotated[Path, Arg(help="output .spacy file", show_default=False)],
    path: PathOpt = None,
    option: OptionOpt = None,
    split: SplitOpt = "test",
    task: Annotated[str, Opt(help="ner (doc.ents from the tags) or tag (token.tag_)")] = "ner",
    scheme: SchemeOpt = None,
    lang: Annotated[str, Opt(help="language of the blank pipeline that makes the docs")] = "en",
    documents: DocumentsOpt = False,
) -> None:
    """Write one split of a dataset as a spaCy DocBin (.spacy)."""
    import spacy
    from spacy.tokens import DocBin

    data = Dataset.from_cli(name, path, option, split, scheme)
    if task not in ("ner", "tag"):
        raise ValueError(f"unknown task {task!r}: expected 'ner' or 'tag'")
    nlp = spacy.blank(lang)
    docbin = DocBin(store_user_data=False)
    n_docs = n_tokens = 0
    for eg in data.examples(nlp, task, documents=documents):
        docbin.add(eg.reference)
        n_docs += 1
        n_tokens += len(eg.reference)
    output.parent.mkdir(parents=True, exist_ok=True)
    docbin.to_disk(output)
    msg.good(f"wrote {n_docs} docs ({n_tokens} tokens) of {data.name}/{data.split} to {output}")
