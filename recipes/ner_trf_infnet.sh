#!/usr/bin/env bash
# Stage 2 only: distil configs/ner_trf.cfg's inference network from an already trained
# transformer energy (e.g. runs/ner_trf/model-best from recipes/ner_trf.sh), then score it on
# eng.testb (argmax and constrained rounding, with Viterbi on the same energy) and time the
# decoders through nlp.pipe on the same testb docs in one run, on one thread.
# Usage: bash recipes/ner_trf_infnet.sh ENERGY_PIPELINE [CONLL_DIR] [OUTPUT_DIR] [extra `spacy train` overrides...]
set -euo pipefail
energy=$1
data=${2:-../shared/data/conll2003}
out=${3:-runs/ner_trf_infnet}
shift 3 || shift $# || true
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
start=$(date +%s)
python -m spacy train configs/ner_trf.cfg --output "$out" --paths.conll2003 "$data" \
  --paths.energy_source "$energy" --training.max_epochs 3 "$@"
echo "stage 2 wall time: $(( $(date +%s) - start )) s"
python -m spacy_infnet convert conll2003 "$out/test.spacy" --path "$data" --split test --task ner
for decoder in infnet infnet_constrained viterbi; do
  python -m spacy_infnet evaluate "$out/model-best" "$out/test.spacy" --decoder "$decoder" \
    --output "$out/test_$decoder.json" > /dev/null
  python -c "import json,sys; m=json.load(open(sys.argv[1])); print(f'testb {sys.argv[2]}: F1 {100*m[\"ents_f\"]:.2f}')" \
    "$out/test_$decoder.json" "$decoder"
done
python "$(dirname "$0")/pipe_speed.py" "$out/model-best" "$out/test.spacy" \
  --decoders viterbi,infnet,infnet_constrained --threads 1 --output "$out/speed.json"
