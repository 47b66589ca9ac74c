#!/usr/bin/env bash
# UD English EWT, tags = UPOS|FEATS (large label set): train configs/morph.cfg, evaluate on test.
# Usage: bash recipes/morph.sh [UD_DIR] [OUTPUT_DIR] [extra `spacy train` overrides...]
set -euo pipefail
data=${1:-../shared/data/ud_english_ewt}
out=${2:-runs/morph}
shift 2 || shift $# || true
start=$(date +%s)
python -m spacy train configs/morph.cfg --output "$out" --paths.ud_ewt "$data" "$@"
python -m spacy_infnet convert ud_ewt "$out/test.spacy" --path "$data" --split test --task tag
python -m spacy evaluate "$out/model-best" "$out/test.spacy" --output "$out/test.json"
python - "$out/test.json" "$start" <<'PY'
import json, sys, time
m = json.load(open(sys.argv[1]))
print(f"UD EWT test UPOS|FEATS accuracy: {100 * m['tag_acc']:.2f}%  ({m['speed']:.0f} words/s decoding)")
print(f"wall time (train + evaluate): {time.time() - int(sys.argv[2]):.0f} s")
PY
