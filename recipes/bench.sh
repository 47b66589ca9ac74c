#!/usr/bin/env bash
# The benchmark tables and figures in results/ (README "Benchmarks"): every decoder on the
# Table 1 CNN {1,3} pipelines (speed, accuracy/F1, energy, search error; Figure 2) and the §6.2
# search-error-vs-likelihood analysis on Twitter POS.  CPU, one torch thread; run it with nothing
# else on the machine.  Viterbi against pytorch-crf and torch-struct: recipes/bench_viterbi.sh.
# Usage: bash recipes/bench.sh [POS_PIPELINE] [NER_PIPELINE] [CONLL_DIR] [DEVICE]
set -euo pipefail
pos=${1:-runs/table1_pos/cnn13_energy/model-best}
ner=${2:-runs/table1_ner_v2/cnn13_energy/model-best}
conll=${3:-../shared/data/conll2003}
device=${4:-cpu}
tag=$([ "$device" = cpu ] && echo cpu || echo gpu)
common=(--decoders viterbi,gd,infnet,tailored,warm_gd --gd-steps 5,10,20,50,100
        --tune-learning-rates --batch-size 10 --device "$device" --threads 1)

python -m spacy_infnet bench "$pos" --dataset twitter_pos "${common[@]}" --likelihood \
  --output "results/bench_pos_${tag}.json"
python -m spacy_infnet bench "$ner" --dataset conll2003 --path "$conll" "${common[@]}" \
  --tune-limit 1000 --output "results/bench_ner_${tag}.json"
