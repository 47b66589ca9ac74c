#!/usr/bin/env bash
# GPU: train configs/ner_trf.cfg (transformer energy, then the CNN inference network) on CUDA
# device 0, selecting on all of eng.testa, and score eng.testb with the inference network (argmax
# and constrained rounding) and with Viterbi on the same energy (all on the GPU).  Prints the
# training wall time.
# CONFIG=configs/ner_trf_blstm.cfg picks another config.
# Usage: bash recipes/ner_trf_gpu.sh [CONLL_DIR] [OUTPUT_DIR] [extra `spacy train` overrides...]
set -euo pipefail
data=${1:-../shared/data/conll2003}
out=${2:-runs/ner_trf_gpu}
shift 2 || shift $# || true
start=$(date +%s)
python -m spacy train "${CONFIG:-configs/ner_trf.cfg}" --output "$out" --gpu-id 0 \
  --paths.conll2003 "$data" --paths.dev_limit 0 "$@"
echo "training wall time: $(( $(date +%s) - start )) s"
python -m spacy_infnet convert conll2003 "$out/test.spacy" --path "$data" --split test --task ner
for decoder in infnet infnet_constrained viterbi; do
  python -m spacy_infnet evaluate "$out/model-best" "$out/test.spacy" --gpu-id 0 \
    --decoder "$decoder" --output "$out/test_$decoder.json" > /dev/null
  python -c "import json,sys; m=json.load(open(sys.argv[1])); print(f\"testb {sys.argv[2]}: F1 {100*m['ents_f']:.2f} P {100*m['ents_p']:.2f} R {100*m['ents_r']:.2f} ({m['speed']:.0f} words/s)\")" "$out/test_$decoder.json" "$decoder"
done
