#!/usr/bin/env bash
# Train a config with `spacy train` (model selection on the dev split), export the test split
# as a DocBin and score model-best on it with `spacy evaluate`; prints the metric and wall time.
# Usage: bash recipes/train_and_evaluate.sh CONFIG DATASET TASK OUTPUT_DIR [DATA_PATH] -- [spacy train overrides...]
#   TASK: "ner" (reports entity F1) or "tag" (reports tag accuracy)
set -euo pipefail
config=$1 dataset=$2 task=$3 out=$4
shift 4
data=""
if [ $# -gt 0 ] && [ "$1" != "--" ]; then data=$1; shift; fi
if [ $# -gt 0 ] && [ "$1" == "--" ]; then shift; fi
path_args=()
[ -n "$data" ] && path_args=(--path "$data")
start=$(date +%s)
python -m spacy train "$config" --output "$out" "$@"
python -m spacy_infnet convert "$dataset" "$out/test.spacy" "${path_args[@]}" --split test --task "$task"
python -m spacy evaluate "$out/model-best" "$out/test.spacy" --output "$out/test.json"
python - "$out/test.json" "$start" "$dataset" "$task" <<'PY'
import json, sys, time
m, dataset, task = json.load(open(sys.argv[1])), sys.argv[3], sys.argv[4]
if task == "ner":
    metric = f"F1 {100 * m['ents_f']:.2f}  P {100 * m['ents_p']:.2f}  R {100 * m['ents_r']:.2f}"
else:
    metric = f"accuracy {100 * m['tag_acc']:.2f}%"
print(f"{dataset} test {metric}  ({m['speed']:.0f} words/s decoding, spacy evaluate)")
print(f"wall time (train + evaluate): {time.time() - int(sys.argv[2]):.0f} s")
PY
