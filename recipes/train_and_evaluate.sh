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
# The same pipeline's energy decoded exactly (Viterbi), for comparison with its own decoder.
python -m spacy_infnet evaluate "$out/model-best" "$out/test.spacy" --decoder viterbi --output "$out/test_viterbi.json" > /dev/null
python - "$out" "$start" "$dataset" "$task" <<'PY'
import json, sys, time
out, dataset, task = sys.argv[1], sys.argv[3], sys.argv[4]
def metric(m):
    if task == "ner":
        return f"F1 {100 * m['ents_f']:.2f}  P {100 * m['ents_p']:.2f}  R {100 * m['ents_r']:.2f}"
    return f"accuracy {100 * m['tag_acc']:.2f}%"
m, v = json.load(open(f"{out}/test.json")), json.load(open(f"{out}/test_viterbi.json"))
print(f"{dataset} test, configured decoder: {metric(m)}  ({m['speed']:.0f} words/s, spacy evaluate)")
print(f"{dataset} test, Viterbi on the same energy: {metric(v)}  ({v['speed']:.0f} words/s)")
print(f"wall time (train + evaluate): {time.time() - int(sys.argv[2]):.0f} s")
PY
