#!/usr/bin/env bash
# Issue 18, written 2026-12-06; runs after study24l.sh (same code snapshot, 0bae303).
# The rows of Table 3 that contain AAM and have not run yet, at S4 (five seeds, 24 epochs):
# AAM + LM and AAM + KMM in each of the four readings, and AAM alone at full resolution and at
# stride 8 (AAM alone in the features and relational readings, and AAM + KMM + LM in all four,
# are in docs/results/compare-aam-s4/).
set -u
cd /work/main
while pgrep -f "runs/study24l.sh" > /dev/null; do sleep 60; done
export PYTHONPATH=/work/gridsrc4/src  # the code of 0bae303 for the training runs (ENet only)
C="compare --preset study --seeds 5 --student enet --teacher deeplabv3plus --out runs/compare-study-enet --jobs 2 --targets S4"
run() { OMP_NUM_THREADS=1 .venv/bin/crossdistill $C "$@"; date -u +"step done %FT%TZ"; }
keep() { mkdir -p $1; cp runs/compare-study-enet/compare.{md,csv,json} runs/compare-study-enet/{forest-val,forest-test,curves-val}.png $1/; }
date -u +"start %FT%TZ"
for reading in "[aam.on=features]" "[aam.match=teacher]" "" "[aam.stride=8]"; do
  run --methods "none,kmm+lm,aam+lm$reading,aam+kmm$reading"
done
run --methods "none,aam,aam[aam.stride=8]"
ALL="none,kmm+lm,kmm,lm"
VS=""
for reading in "[aam.on=features]" "[aam.match=teacher]" "" "[aam.stride=8]"; do
  ALL="$ALL,aam$reading,aam+lm$reading,aam+kmm$reading,ours$reading"
  VS="$VS,aam+lm$reading:lm,aam+kmm$reading:kmm,ours$reading:kmm+lm"
done
run --methods "$ALL" --versus "${VS#,}"
keep docs/results/compare-aam-s4/all-rows
date -u +"end %FT%TZ"
