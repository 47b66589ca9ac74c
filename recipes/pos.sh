#!/usr/bin/env bash
# Main job: train the BLSTM-CRF+ energy on the embedded Twitter POS data (oct27 train+dev) with
# `spacy train`, select on oct27.test, then report DAILY547 accuracy with `spacy evaluate`.
# Usage: bash recipes/pos.sh [OUTPUT_DIR] [extra `spacy train` overrides...]
set -euo pipefail
out=${1:-runs/pos}
shift || true
# The paper uses pretrained vectors; the only ones here are a 2,717-word GloVe prefix in
# ../shared/data/embeddings. Use it when present, else train without pretrained vectors.
glove=${GLOVE:-../shared/data/embeddings/glove.6B.100d.PARTIAL_top2717.dataset_vocab.txt}
vectors=()
if [ -f "$glove" ]; then
  echo "using pretrained word vectors: $glove"
  vectors=(--paths.word_vectors "$glove")
else
  echo "no pretrained word vectors found at $glove: training without them"
fi
bash "$(dirname "$0")/train_and_evaluate.sh" configs/pos.cfg twitter_pos tag "$out" -- \
  "${vectors[@]}" "$@"
