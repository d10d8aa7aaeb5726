#!/usr/bin/env bash
# Issue 17, session of 2026-12-06 05:47 UTC; follows study24k.sh. Code snapshot fbca4fa
# (/work/gridsrc6): in training the ENet runs' code (0bae303) but for ESPNet's classifier head; ESPNet runs
# of two earlier starts (authors' head; head with a bias only) were deleted: some died.
# The other students at two targets (S1, S4), whose DeepLabV3+ 1/8 teachers and teacher-output
# cache the ENet runs already made: w/o, KMM (the best arm on the four targets' validation Dice)
# and `recommended` (the shipped preset). ESPNet 1/2 (26x, 24 epochs) first, then ERFNet 1/8
# (34x, 48 epochs).
set -u
cd /work/main
while pgrep -f "runs/study24k.sh" > /dev/null; do sleep 60; done
export PYTHONPATH=/work/gridsrc6/src  # the code of fbca4fa for the training runs
C="compare --preset study --seeds 5 --teacher deeplabv3plus --out runs/compare-study-enet --jobs 2"
run() { OMP_NUM_THREADS=1 .venv/bin/crossdistill $C "$@"; date -u +"step done %FT%TZ"; }
keep() { mkdir -p $1; cp runs/compare-study-enet/compare.{md,csv,json} runs/compare-study-enet/{forest-val,forest-test,curves-val}.png $1/; }
date -u +"start %FT%TZ"
for s in espnet erfnet; do
  run --student $s --targets S1,S4 --methods "none,kmm,recommended"
  keep docs/results/compare-study-enet-24ep/s1-s4-$s
done
date -u +"end %FT%TZ"
