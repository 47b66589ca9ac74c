#!/usr/bin/env bash
# CoNLL-2003: train configs/ner.cfg (select on eng.testa), then `spacy evaluate` on eng.testb.
# Usage: bash recipes/ner.sh [CONLL_DIR] [OUTPUT_DIR] [extra `spacy train` overrides...]
set -euo pipefail
data=${1:-../shared/data/conll2003}
out=${2:-runs/ner}
shift 2 || shift $# || true
start=$(date +%s)
python -m spacy train configs/ner.cfg --output "$out" --paths.conll2003 "$data" "$@"
python -m spacy_infnet convert conll2003 "$out/testb.spacy" --path "$data" --split test --task ner
python -m spacy evaluate "$out/model-best" "$out/testb.spacy" --output "$out/testb.json"
python - "$out/testb.json" "$start" <<'PY'
import json, sys, time
m = json.load(open(sys.argv[1]))
print(f"eng.testb F1: {100 * m['ents_f']:.2f}  P {100 * m['ents_p']:.2f}  R {100 * m['ents_r']:.2f}"
      f"  ({m['speed']:.0f} words/s decoding)")
print(f"wall time (train + evaluate): {time.time() - int(sys.argv[2]):.0f} s")
PY
