#!/usr/bin/env bash
# Our Viterbi against pytorch-crf and torch-struct (results/bench_viterbi_cpu*.{json,md}; README
# "Benchmarks"): random potentials for L = 17, 25, 321, 400 and the potentials of three trained
# BLSTM-CRF+ energies (Twitter POS, L = 25; CoNLL-2003, L = 17; UD EWT UPOS|FEATS, L = 321), for
# batches of 1, 10, 100 and 1000 sentences.  CPU, one torch thread: run it with nothing else on
# the machine.  The peers come with the [dev] extra (pip install -e ".[dev]").
#
# The energies are trained here for a fixed number of steps (STEPS, default 1500: about one
# epoch of CoNLL-2003 or EWT, ten of Twitter POS) unless runs/bv_{pos,ner,morph}/model-best
# exist: Viterbi's speed depends on L and the sentence lengths, not on how well the energy is
# trained.
# Usage: bash recipes/bench_viterbi.sh [CONLL_DIR] [UD_EWT_DIR]
set -euo pipefail
conll=${1:-../shared/data/conll2003}
ud=${2:-../shared/data/ud_english_ewt}
steps=${STEPS:-1500}

train() {  # CONFIG OUT [overrides...]
  local config=$1 out=$2
  shift 2
  [ -d "$out/model-best" ] && return 0
  OMP_NUM_THREADS=1 python -m spacy train "$config" --output "$out" \
    --training.max_steps "$steps" "$@"
}
train configs/pos.cfg runs/bv_pos
train configs/ner.cfg runs/bv_ner --paths.conll2003 "$conll"
train configs/morph.cfg runs/bv_morph --paths.ud_ewt "$ud"

pipelines=(--pipeline runs/bv_pos/model-best --pipeline-data twitter_pos
           --pipeline runs/bv_ner/model-best --pipeline-data "conll2003:$conll"
           --pipeline runs/bv_morph/model-best --pipeline-data "ud_ewt:$ud")

# The whole grid, with the default guards: torch-struct chunked under 2 GiB, and any peer whose
# first run of a cell takes (or is on course to take) over 120 s is shown as skipped.
python -m spacy_infnet bench-viterbi --threads 1 "${pipelines[@]}" \
  --output results/bench_viterbi_cpu.json

