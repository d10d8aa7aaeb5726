#!/usr/bin/env bash
# Issue 18, second target, written 2026-12-06 14:46 UTC: AAM + KMM + LM in its four readings
# at S1 (RUNMC/ISBI), five seeds, 24 epochs, against w/o and KMM + LM. The S1 teachers' weights
# were lost with an earlier checkout, so they train again from their seeds on this CPU (Intel
# Xeon @ 2.80 GHz) and KMM + LM trains again with them; w/o is the five earlier runs (EPYC).
# Code snapshot 80d2487 (/work/gridsrc8; no code under src/ changed since).
# Order: the reading chosen on validation at S4 and the feature map first, then the two
# readings that collapsed at S4.
set -u
cd /work/main
export PYTHONPATH=/work/gridsrc8/src
C="compare --preset study --seeds 5 --student enet --teacher deeplabv3plus --out runs/compare-study-enet --jobs 2 --targets S1"
run() { OMP_NUM_THREADS=1 .venv/bin/crossdistill $C "$@"; date -u +"step done %FT%TZ"; }
date -u +"start %FT%TZ"
run --methods "none,kmm+lm,ours[aam.match=teacher],ours[aam.on=features]"
run --methods "none,kmm+lm,ours,ours[aam.stride=8]"
date -u +"end %FT%TZ"
