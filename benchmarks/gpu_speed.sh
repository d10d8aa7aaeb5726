#!/usr/bin/env bash
# Issue 20's GPU figures in one short run (about 5–8 minutes on an H100-class GPU):
#   1. training slices/s of the teacher and the student (ENet) at 384², batch 16, eager and
#      compiled with CUDA graphs (train.compile: reduce-overhead) — gpu_check.py --compile;
#   2. AAM at 16 × 2 × 384², eager, fused (aam.fused: torch.compile) and the naive unfold
#      version — losses.py --device cuda --json (checks the fused values and gradients first).
# Writes OUT/gpu_check.json and OUT/losses.json (OUT defaults to /tmp/crossdistill-gpu-speed).
#
#   PYTHONPATH=src bash benchmarks/gpu_speed.sh [OUT]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python}"
out="${1:-/tmp/crossdistill-gpu-speed}"
mkdir -p "$out"
"$python" "$here/losses.py" --device cuda --json | tee "$out/losses.json"
bash "$here/gpu_check.sh" --out "$out" --compile reduce-overhead
