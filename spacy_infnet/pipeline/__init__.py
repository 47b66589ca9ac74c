"""spaCy adapter: the ``infnet_tagger`` component, registry functions, readers and scorers."""

from .component import InfnetTagger, make_infnet_tagger
from .readers import create_dataset_corpus, dataset_examples

__all__ = ["InfnetTagger", "create_dataset_corpus", "dataset_examples", "make_infnet_tagger"]
