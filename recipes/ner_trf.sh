#!/usr/bin/env bash
# CoNLL-2003 with the transformer energy (configs/ner_trf.cfg): train both stages (select on
# the first 1,000 eng.testa sentences), score model-best on eng.testb with its inference network
# and with Viterbi, then time both decoders through nlp.pipe on the same testb docs in one run.
# Usage: bash recipes/ner_trf.sh [CONLL_DIR] [OUTPUT_DIR] [extra `spacy train` overrides...]
set -euo pipefail
data=${1:-../shared/data/conll2003}
out=${2:-runs/ner_trf}
shift 2 || shift $# || true
bash "$(dirname "$0")/train_and_evaluate.sh" configs/ner_trf.cfg conll2003 ner "$out" "$data" -- \
  --paths.conll2003 "$data" "$@"
python "$(dirname "$0")/pipe_speed.py" "$out/model-best" "$out/test.spacy" --threads 1 \
  --output "$out/speed.json"
