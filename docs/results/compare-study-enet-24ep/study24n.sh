#!/usr/bin/env bash
# Issue 18, written 2026-12-06 09:40 UTC; runs after study24m.sh. Code snapshot 06c1d77
# (/work/gridsrc7: list-valued term options; ENet training unchanged since 0bae303).
# AAM's options that the paper preset leaves at one value, at S4 (five seeds, 24 epochs), in the
# full method (AAM + KMM + LM): neighbourhood sizes 1-3 with adaptive (learned) size weights, as
# in Adaptive Affinity Fields; the margin at 1 instead of 3, on the probabilities and on the
# feature map. Against w/o and KMM + LM (both already trained).
set -u
cd /work/main
while pgrep -f "runs/study24m.sh" > /dev/null; do sleep 60; done
export PYTHONPATH=/work/gridsrc7/src
V="ours[aam.sizes=[1,2,3],aam.adaptive=true]"
M="none,kmm+lm,$V,ours[aam.margin=1],ours[aam.on=features,aam.margin=1]"
VS="$V:kmm+lm,ours[aam.margin=1]:kmm+lm,ours[aam.on=features,aam.margin=1]:kmm+lm"
date -u +"start %FT%TZ"
OMP_NUM_THREADS=1 .venv/bin/crossdistill compare --preset study --seeds 5 --student enet \
  --teacher deeplabv3plus --out runs/compare-study-enet --jobs 2 --targets S4 \
  --methods "$M" --versus "$VS"
D=docs/results/compare-aam-s4/margin-sizes
mkdir -p $D
cp runs/compare-study-enet/compare.{md,csv,json} runs/compare-study-enet/{forest-val,forest-test,curves-val}.png $D/
date -u +"end %FT%TZ"
