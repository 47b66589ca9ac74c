#!/usr/bin/env bash
# The CoNLL-2003 model card in results/model_card_ner_conll03.md: train configs/ner.cfg on a
# short schedule (2 energy epochs, 1 inference-network epoch), benchmark every decoder on
# eng.testb (CPU, one thread) and export the pipeline as a Hub repository with that card.
# Usage: bash recipes/hub_card.sh [CONLL_DIR] [OUTPUT_DIR]
set -euo pipefail
data=${1:-../shared/data/conll2003}
out=${2:-runs/ner_card}
OMP_NUM_THREADS=1 bash "$(dirname "$0")/ner.sh" "$data" "$out" \
  --components.infnet_tagger.stages.energy_max_epochs 2 --training.max_epochs 3
python -m spacy_infnet bench "$out/model-best" --dataset conll2003 --path "$data" \
  --decoders viterbi,gd,infnet,tailored,warm_gd --batch-size 10 --threads 1 \
  --output "$out/bench.json"
python -m spacy_infnet export "$out/model-best" "$out/hub" --bench "$out/bench.json" \
  --repo-id spacy-infnet/ner-conll03-cnn13 --license mit
cp "$out/hub/README.md" results/model_card_ner_conll03.md
