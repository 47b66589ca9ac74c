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


#: ``spacy train configs/pos.cfg`` overrides for a small, fast run on real tweets (the Twitter POS
#: copy embedded in the package: 300 training and 100 dev tweets, no word vectors, small
#: networks, batches of 10: 30 updates an epoch), with checkpoints through the config's
#: ``spacy_infnet.atomic_checkpoints.v1``.  140 updates with 8 evaluations take about 8 s on one
#: CPU thread, start-up included.
SMALL_TRAIN = {
    "paths.vectors": "null",
    "corpora.train.limit": "300",
    "corpora.dev.limit": "100",
    "training.batcher.size": "10",
    "training.optimizer.learn_rate": "0.01",
    "training.logger.progress_bar": "null",
    "components.infnet_tagger.energy.word_dim": "32",
    "components.infnet_tagger.energy.hidden_size": "32",
    "components.infnet_tagger.energy.char_filters": "16",
    "components.infnet_tagger.infnet.hidden_size": "48",
    "components.infnet_tagger.infnet.char_filters": "16",
}


def small_train_command(output, *, seed=0, **overrides):
    """The ``python -m spacy train`` command line of a small two-stage POS run (:data:`SMALL_TRAIN`)
    into ``output``; ``overrides``: more settings, dots written as ``__``
    (``training__max_steps=60``)."""
    import sys
    from pathlib import Path

    config = Path(__file__).resolve().parents[1] / "configs" / "pos.cfg"
    settings = {**SMALL_TRAIN, "system.seed": str(seed)}
    settings.update({k.replace("__", "."): str(v) for k, v in overrides.items()})
    args = [sys.executable, "-m", "spacy", "train", str(config), "--output", str(output)]
    for key, value in settings.items():
        args += [f"--{key}", value]
    return args


def train_briefly(nlp, examples, epochs, learn_rate, batch_size, dev=None):
    """Seed 0, ``nlp.initialize`` on ``examples``, then ``epochs`` passes of minibatch updates
    at ``learn_rate``, each followed by ``nlp.evaluate(dev)`` when ``dev`` is given (the
    component switches stage on its dev scores).  Returns ``nlp``."""
    import spacy

    spacy.util.fix_random_seed(0)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = learn_rate
    for _ in range(epochs):
        for batch in spacy.util.minibatch(examples, size=batch_size):
            nlp.update(batch, sgd=optimizer)
        if dev is not None:
            nlp.evaluate(dev)
    return nlp
