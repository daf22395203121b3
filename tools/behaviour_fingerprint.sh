#!/usr/bin/env bash
# What a refactoring must not change, written to one folder so that two checkouts can be compared with `diff -r`:
# every command's --help, and the sha256 of the weights and the predictions of two tiny runs (the embedded sample,
# and PEYMA for one epoch when ../shared has it). Deterministic on one machine: same seed, one thread.
#
#   tools/behaviour_fingerprint.sh OUT_DIR      # e.g. before and after a change, then: diff -r BEFORE AFTER
set -euo pipefail
OUT=${1:?usage: tools/behaviour_fingerprint.sh OUT_DIR}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PARSNER=${PARSNER:-$REPO/.venv/bin/parsner}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export COLUMNS=100  # argparse wraps --help to the terminal's width
[ -e "$OUT" ] && { echo "$OUT exists; give a new folder" >&2; exit 2; }
mkdir -p "$OUT/help"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

"$PARSNER" --help > "$OUT/help/parsner.txt"
for cmd in data pretrain train distill eval predict export serve benchmark quickstart env; do
  "$PARSNER" "$cmd" --help > "$OUT/help/$cmd.txt"
done
for sub in build stats audit; do
  "$PARSNER" data "$sub" --help > "$OUT/help/data-$sub.txt" 2>/dev/null || true
done

run() {  # NAME DATA_ARGS... -- TRAIN_OVERRIDES...
  local name=$1; shift
  local data=()
  while [ "$1" != "--" ]; do data+=("$1"); shift; done; shift
  "$PARSNER" data build "${data[@]}" --out "$WORK/$name-data" -q
  "$PARSNER" train --config "$REPO/training/sample.yaml" --set "data=$WORK/$name-data" "$@" \
      --out "$WORK/$name-run" > "$WORK/$name-train.log" 2>&1
  "$PARSNER" eval --model "$WORK/$name-run" --data "$WORK/$name-data" --split test \
      --out "$WORK/$name-eval" > /dev/null 2>&1
  ( cd "$WORK" && sha256sum "$name-run/model.safetensors" "$name-eval/predictions.conll" ) >> "$OUT/sha256.txt"
  "$PARSNER" predict --model "$WORK/$name-run" --format jsonl \
      "علی رضایی دیروز در دانشگاه تهران با نمایندگان سازمان ملل دیدار کرد." > "$OUT/$name-predict.jsonl"
}

run sample --corpus sample -- --set epochs=6
SHARED=${PARSNER_SHARED:-$REPO/../shared}
if [ -d "$SHARED/data/peyma" ]; then
  run peyma --corpus peyma --data-dir "$SHARED/data" -- --set epochs=1 --set batch_size=32
else
  echo "no PEYMA at $SHARED/data/peyma: the sample run only" >&2
fi
cat "$OUT/sha256.txt"
