#!/usr/bin/env bash
# Issue 18, second target, written 2026-12-06 15:43 UTC: study24q.sh's second invocation
# again with code ce4e60d (/work/gridsrc9), which trains again a finished student whose
# teacher now holds other weights: at S1 the five `ours` runs (distilled on the EPYC from the
# earlier teachers) were reused by study24q.sh beside arms distilled from the Xeon teachers.
set -u
cd /work/main
export PYTHONPATH=/work/gridsrc9/src
C="compare --preset study --seeds 5 --student enet --teacher deeplabv3plus --out runs/compare-study-enet --jobs 2 --targets S1"
run() { OMP_NUM_THREADS=1 .venv/bin/crossdistill $C "$@"; date -u +"step done %FT%TZ"; }
date -u +"start %FT%TZ"
run --methods "none,kmm+lm,ours,ours[aam.stride=8]"
date -u +"end %FT%TZ"
