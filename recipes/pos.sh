#!/usr/bin/env bash
# Main job: train the BLSTM-CRF+ energy on the embedded Twitter POS data (oct27 train+dev) with
# `spacy train`, select on oct27.test, then report DAILY547 accuracy with `spacy evaluate`.
# Usage: bash recipes/pos.sh [OUTPUT_DIR] [extra `spacy train` overrides...]
set -euo pipefail
out=${1:-runs/pos}
shift || true
start=$(date +%s)
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
python -m spacy train configs/pos.cfg --output "$out" "${vectors[@]}" "$@"
python -m spacy_infnet convert twitter_pos "$out/daily547.spacy" --split test --task tag
python -m spacy evaluate "$out/model-best" "$out/daily547.spacy" --output "$out/daily547.json"
python - "$out/daily547.json" "$start" <<'PY'
import json, sys, time
m = json.load(open(sys.argv[1]))
print(f"DAILY547 accuracy: {100 * m['tag_acc']:.2f}%  ({m['speed']:.0f} words/s decoding)")
print(f"wall time (train + evaluate): {time.time() - int(sys.argv[2]):.0f} s")
PY
