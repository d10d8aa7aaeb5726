#!/usr/bin/env bash
# Issue 18, written 2026-12-06 14:22 UTC: the last invocation of study24o.sh (AAM alone at
# full resolution and at stride 8, S4, five seeds), which the session end interrupted.
# Same code snapshot 80d2487 (/work/gridsrc8), same machine model (Intel Xeon @ 2.80 GHz).
set -u
cd /work/main
export PYTHONPATH=/work/gridsrc8/src
C="compare --preset study --seeds 5 --student enet --teacher deeplabv3plus --out runs/compare-study-enet --jobs 2 --targets S4"
run() { OMP_NUM_THREADS=1 .venv/bin/crossdistill $C "$@"; date -u +"step done %FT%TZ"; }
date -u +"start %FT%TZ"
run --methods "none,aam,aam[aam.stride=8]"
date -u +"end %FT%TZ"
