#!/usr/bin/env bash
# One prepared run for a lent GPU machine (Ray is not installed there; algorithms/ runs as plain torch).
# 1. gpu_check.py alone on the GPU (throughput vs a bare loop, bf16 autocast);
# 2. then, side by side and only for the time left of the 5 minutes (BUDGET_S, default 290 s): the
#    digits methods benchmark on the GPU and the feature-table benchmarks on the CPU cores. Results land in $OUT
#    (JSON lines are flushed as trials finish, so the time limit keeps every finished trial).
set -uo pipefail
OUT="${OUT:-/tmp/adaptune-device}"
mkdir -p "$OUT" /tmp/pkg/adaptune
ln -sfn "$PWD/algorithms" /tmp/pkg/adaptune/algorithms   # the package layout without installing anything
export PYTHONPATH=/tmp/pkg PYTHONUNBUFFERED=1
PY="${PY:-python3}"
GPU_WORKERS="${GPU_WORKERS:-6}"
CPU_WORKERS="${CPU_WORKERS:-9}"
CONFIGS="${CONFIGS:-3}"
FEATURE_GROUPS="${FEATURE_GROUPS:-amazon}"  # surf runs on the 2-core dev machine meanwhile
BUDGET_S="${BUDGET_S:-290}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/card.txt"
"$PY" benchmarks/gpu_check.py --out "$OUT/gpu.md" 2>&1 | tee "$OUT/gpu_check.log"
LEFT=$((BUDGET_S - SECONDS))
if [ "$LEFT" -lt 30 ]; then echo "no time left for the methods benchmarks ($LEFT s)"; exit 0; fi
timeout "$LEFT" "$PY" benchmarks/methods_bench.py run --group digits --device cuda --amp --workers "$GPU_WORKERS" \
  --configs "$CONFIGS" --out "$OUT/digits.jsonl" > "$OUT/digits.log" 2>&1 &
timeout "$LEFT" "$PY" benchmarks/methods_bench.py run --group "$FEATURE_GROUPS" --device cpu --workers "$CPU_WORKERS" \
  --configs "$CONFIGS" --out "$OUT/feature_tables.jsonl" > "$OUT/feature_tables.log" 2>&1 &
wait
tail -n 3 "$OUT"/*.log
