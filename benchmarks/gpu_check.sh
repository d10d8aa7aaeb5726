#!/usr/bin/env bash
# A few minutes on one CUDA GPU (issue 9): training throughput (slices/s) of the teacher and the
# student at 384², batch 16, with and without mixed precision and channels-last; the
# distillation step with and without the teacher-output cache; peak GPU memory; the teacher's
# achieved FLOP/s against the GPU's peak. Prints a table, then one JSON object (also written to
# OUT/gpu_check.json).
#
#   PYTHONPATH=src bash benchmarks/gpu_check.sh [--out DIR] [--steps N] [--compile]
#   PYTHONPATH=src bash benchmarks/gpu_check.sh --quick    # CPU dry run at a tiny size
#
# Needs only the package (PYTHONPATH=src) and its dependencies; PYTHON picks the interpreter.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python}"
quick=0
for arg in "$@"; do
    [[ "$arg" == "--quick" ]] && quick=1
done

"$python" - "$quick" <<'PY'
import sys

import torch

import crossdistill

quick = sys.argv[1] == "1"
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, crossdistill from "
      f"{crossdistill.__file__}", flush=True)
if not quick and not torch.cuda.is_available():
    sys.exit("gpu_check: torch sees no CUDA device (torch built for CUDA? a GPU visible?); "
             "--quick runs the CPU dry run")
if not quick:
    print(f"GPU: {torch.cuda.get_device_name()}, CUDA {torch.version.cuda}", flush=True)
PY

exec "$python" "$here/gpu_check.py" "$@"
