#!/usr/bin/env bash
# One prepared run for a GPU machine where Ray is not installed (algorithms/ runs as plain torch). Run it from the
# repository root: bash benchmarks/device_run.sh
# 1. benchmarks.image_throughput alone on the GPU (at most 200 s): ResNet-50 fine-tuning from an image folder made
#    on the spot, trial loop vs a bare loop on the same DataLoader (bf16 autocast, channels_last, pinned memory);
# 2. benchmarks.gpu_check alone on the GPU (throughput vs a bare loop, bf16 autocast);
# 3. then, side by side and only for what is left of BUDGET_S seconds (default 290, counted from the start, so steps
#    1 and 2 use part of it): the digits methods benchmark on the GPU and the feature-table benchmarks on the CPU
#    cores. Results land in $OUT (default adaptune-runs/device); JSON lines are flushed as trials finish, so the time
#    limit keeps every finished trial.
set -uo pipefail
OUT="${OUT:-adaptune-runs/device}"
mkdir -p "$OUT"
# The adaptune.algorithms package layout without installing anything: a throwaway folder whose adaptune/algorithms
# links to this checkout's algorithms/. `python -m` puts the repository root (the benchmarks package) on the path.
PACKAGE_ROOT="$(mktemp -d)"
trap 'rm -rf "$PACKAGE_ROOT"' EXIT
mkdir -p "$PACKAGE_ROOT/adaptune"
ln -s "$PWD/algorithms" "$PACKAGE_ROOT/adaptune/algorithms"
export PYTHONPATH="$PACKAGE_ROOT" PYTHONUNBUFFERED=1
PY="${PY:-python3}"
GPU_WORKERS="${GPU_WORKERS:-6}"
CPU_WORKERS="${CPU_WORKERS:-9}"
CONFIGS="${CONFIGS:-3}"
FEATURE_GROUPS="${FEATURE_GROUPS:-amazon}"  # surf is small enough for a 2-core CPU machine
BUDGET_S="${BUDGET_S:-290}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/card.txt"
# -k: SIGKILL 10 s after SIGTERM if the run has not ended by then; the page is rewritten after each method.
timeout -k 10 200 "$PY" -m benchmarks.image_throughput --out "$OUT/image_throughput.md" 2>&1 \
  | tee "$OUT/image_throughput.log"
"$PY" -m benchmarks.gpu_check --out "$OUT/gpu.md" 2>&1 | tee "$OUT/gpu_check.log"
LEFT=$((BUDGET_S - SECONDS))
if [ "$LEFT" -lt 30 ]; then echo "no time left for the methods benchmarks ($LEFT s)"; exit 0; fi
timeout "$LEFT" "$PY" -m benchmarks.methods_bench run --group digits --device cuda --amp --workers "$GPU_WORKERS" \
  --configs "$CONFIGS" --out "$OUT/digits.jsonl" > "$OUT/digits.log" 2>&1 &
timeout "$LEFT" "$PY" -m benchmarks.methods_bench run --group "$FEATURE_GROUPS" --device cpu --workers "$CPU_WORKERS" \
  --configs "$CONFIGS" --out "$OUT/feature_tables.jsonl" > "$OUT/feature_tables.log" 2>&1 &
wait
tail -n 3 "$OUT"/*.log
