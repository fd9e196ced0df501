#!/usr/bin/env bash
# The CPU benchmarks on a second, quiet machine (the lent accelerator machine, whose CPU cores are idle):
# prototypes of the per-step speedups, then the side-by-side table. Uses that machine's python3 and torch,
# with minidl from this checkout on PYTHONPATH. Writes everything under $OUT (or ./bench-out).
set -u
OUT=${OUT:-bench-out}; mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD" PYTHONUNBUFFERED=1
PY=${PY:-python3}
{ grep -m1 "model name" /proc/cpuinfo; nproc; $PY -c "import torch, minidl; print('torch', torch.__version__, 'threads', torch.get_num_threads())"; } 2>&1 | tee "$OUT/machine.txt"
for suite in sgd1 adam32 infer1 infer1024; do
  steps=2000; [ "$suite" = adam32 ] && steps=500; [ "$suite" = infer1024 ] && steps=500
  timeout 120 $PY -m benchmarks.prototypes --suite "$suite" --rounds 9 --steps $steps 2>&1
done | tee "$OUT/prototypes.txt"
timeout 60 $PY -m benchmarks.prototypes --suite sgd1 --rounds 5 --steps 1000 --threads "$(nproc)" 2>&1 | tee "$OUT/prototypes-allthreads.txt"
$PY -m benchmarks.prototypes --count 2>&1 | cut -c1-400 > "$OUT/opcounts.txt"
timeout "${RUN_LIMIT:-330}" $PY -m benchmarks.run --reps "${REPS:-3}" --out "$OUT/results" 2>&1 | tee "$OUT/run.log"
ls -la "$OUT"
