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
