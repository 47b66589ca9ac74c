#!/usr/bin/env bash
# CoNLL-2003: train configs/ner.cfg (select on eng.testa), then `spacy evaluate` on eng.testb.
# Usage: bash recipes/ner.sh [CONLL_DIR] [OUTPUT_DIR] [extra `spacy train` overrides...]
set -euo pipefail
data=${1:-../shared/data/conll2003}
out=${2:-runs/ner}
shift 2 || shift $# || true
bash "$(dirname "$0")/train_and_evaluate.sh" configs/ner.cfg conll2003 ner "$out" "$data" -- \
  --paths.conll2003 "$data" "$@"
