"""Small component configs shared by the tests (fast to train on a few hundred tweets)."""

SMALL_ENERGY = {
    "@architectures": "spacy_infnet.BLSTMCRF.v1",
    "word_dim": 32,
    "hidden_size": 32,
    "char_filters": 16,
    "dropout": 0.2,
}
SMALL_CNN = {
    "@architectures": "spacy_infnet.CNNInferenceNetwork.v1",
    "hidden_size": 48,
    "windows": [1, 3],
    "case_dim": 8,
}


def small_tagger(task="tag", energy=SMALL_ENERGY, infnet=SMALL_CNN, decoder=None, **stages):
    """A blank English pipeline with one untrained ``infnet_tagger`` of these settings
    (``stages``: settings of ``spacy_infnet.TwoStage.v1``; ``decoder``: a registered name)."""
    import spacy

    config = {
        "task": task,
        "energy": energy,
        "infnet": infnet,
        "stages": {"@misc": "spacy_infnet.TwoStage.v1", **stages},
    }
    if decoder is not None:
        config["decoder"] = {"@decoders": decoder}
    nlp = spacy.blank("en")
    nlp.add_pipe("infnet_tagger", config=config)
    return nlp
