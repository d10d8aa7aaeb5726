#!/usr/bin/env bash
# Issue 17, session of 2026-12-05 23:40 UTC. (1) The controls of KMM alone (the preset with the
# highest pooled validation mean) at S1 and S4, five seeds; then the report of every arm at S1+S4.
# KMM reads no teacher logits, so its ground-truth control is its untrained one (the same
# features, nothing else read): measured identical at S1 seed 0, not run again.
# (2) S3 and S5: w/o and KMM first, then the other presets, then KMM's controls.
set -u
cd /work/main
export PYTHONPATH=/work/gridsrc4/src  # the code of 0bae303 for the training runs
C="compare --preset study --seeds 5 --student enet --teacher deeplabv3plus --out runs/compare-study-enet --jobs 2"
run() { OMP_NUM_THREADS=1 .venv/bin/crossdistill $C "$@"; date -u +"step done %FT%TZ"; }
keep() { mkdir -p $1; cp runs/compare-study-enet/compare.{md,csv,json} runs/compare-study-enet/{forest-val,forest-test,curves-val}.png $1/; }
date -u +"start %FT%TZ"
run --targets S1,S4 --methods "none,kmm,kmm@untrained" --versus "kmm:kmm@untrained"
run --targets S1,S4 \
  --methods "none,kmm+lm,recommended,recommended@untrained,recommended@ground-truth,kmm,kmm@untrained,lm,ours" \
  --versus "kmm:kmm@untrained,recommended:kmm+lm,ours:kmm+lm"
keep docs/results/compare-study-enet-24ep/s1-s4-all
run --targets S3,S5 --methods "none,kmm"
run --targets S3,S5 --methods "none,kmm,kmm+lm,recommended,lm,ours"
run --targets S3,S5 --methods "none,kmm,kmm@untrained" --versus "kmm:kmm@untrained"
run --targets S1,S3,S4,S5 \
  --methods "none,kmm+lm,recommended,kmm,kmm@untrained,lm,ours" \
  --versus "kmm:kmm@untrained,recommended:kmm+lm"
keep docs/results/compare-study-enet-24ep/s1-s3-s4-s5
date -u +"end %FT%TZ"
