#!/usr/bin/env bash
# Issue 17, session of 2026-12-06 02:45 UTC; continues study24i.sh (same code snapshot, 0bae303).
# S5's w/o and KMM first, then KMM's control (its untrained teacher) at S3 and S5, so that the
# four-target control report of the best preset comes first; then the other presets at S3 and
# S5 one method at a time (`ours`, which collapses everywhere else, last).
set -u
cd /work/main
export PYTHONPATH=/work/gridsrc4/src  # the code of 0bae303 for the training runs
C="compare --preset study --seeds 5 --student enet --teacher deeplabv3plus --out runs/compare-study-enet --jobs 2"
run() { OMP_NUM_THREADS=1 .venv/bin/crossdistill $C "$@"; date -u +"step done %FT%TZ"; }
keep() { mkdir -p $1; cp runs/compare-study-enet/compare.{md,csv,json} runs/compare-study-enet/{forest-val,forest-test,curves-val}.png $1/; }
date -u +"start %FT%TZ"
run --targets S3,S5 --methods "none,kmm"
run --targets S3,S5 --methods "none,kmm,kmm@untrained" --versus "kmm:kmm@untrained"
run --targets S1,S3,S4,S5 --methods "none,kmm,kmm@untrained" --versus "kmm:kmm@untrained"
keep docs/results/compare-study-enet-24ep/s1-s3-s4-s5-kmm
for m in kmm+lm recommended lm ours; do run --targets S3,S5 --methods "none,$m"; done
run --targets S1,S3,S4,S5 \
  --methods "none,kmm+lm,recommended,kmm,kmm@untrained,lm,ours" \
  --versus "kmm:kmm@untrained,recommended:kmm+lm"
keep docs/results/compare-study-enet-24ep/s1-s3-s4-s5
date -u +"end %FT%TZ"
