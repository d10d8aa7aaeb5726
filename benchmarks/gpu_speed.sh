#!/usr/bin/env bash
# Issue 20's GPU figures in one short run (about 5–8 minutes on an H100-class GPU):
#   1. AAM at 16 × 2 × 384², eager, fused (aam.fused: torch.compile) and the naive unfold
#      version — losses.py --device cuda --json (checks the fused values and gradients first);
#   2. training slices/s of the teacher and the student (ENet) at 384², batch 16, eager and
#      compiled with CUDA graphs (train.compile: reduce-overhead) — gpu_check.py --compile.
# Writes OUT/losses.json and OUT/gpu_check.json (OUT defaults to /tmp/crossdistill-gpu-speed).
# --quick: the same steps on the CPU at a tiny size (about 20 min on a 2-core CPU: Inductor
# compiles the AAM and both networks in C++),
# to check the script before spending GPU time.
#
#   PYTHONPATH=src bash benchmarks/gpu_speed.sh [--quick] [OUT]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python}"
quick=0
if [[ "${1:-}" == "--quick" ]]; then
    quick=1
    shift
fi
out="${1:-/tmp/crossdistill-gpu-speed}"
mkdir -p "$out"
if (( quick )); then
    "$python" "$here/losses.py" --device cpu --batch 2 --size 64 --repeats 1 --json \
        | tee "$out/losses.json"
    bash "$here/gpu_check.sh" --quick --out "$out" --compile reduce-overhead
else
    "$python" "$here/losses.py" --device cuda --json | tee "$out/losses.json"
    bash "$here/gpu_check.sh" --out "$out" --compile reduce-overhead
fi
