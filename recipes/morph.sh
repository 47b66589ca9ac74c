#!/usr/bin/env bash
# UD English EWT, tags = UPOS|FEATS (large label set): train configs/morph.cfg, evaluate on test.
# Usage: bash recipes/morph.sh [UD_DIR] [OUTPUT_DIR] [extra `spacy train` overrides...]
set -euo pipefail
data=${1:-../shared/data/ud_english_ewt}
out=${2:-runs/morph}
shift 2 || shift $# || true
bash "$(dirname "$0")/train_and_evaluate.sh" configs/morph.cfg ud_ewt tag "$out" "$data" -- \
  --paths.ud_ewt "$data" "$@"
