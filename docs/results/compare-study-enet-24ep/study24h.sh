#!/usr/bin/env bash
# Queued behind study24g.sh. (1) Issue 17: the report of every arm at S1 and S4 together
# (nothing left to train; the checkout's code); (2) issue 18: the AAM-alone row of Table 3 in the two readings
# that do not collapse (features, relational), S4, five seeds.
set -u
cd /work/main
while pgrep -f "bash runs/study24g.sh" > /dev/null; do sleep 30; done
date -u +"start %FT%TZ"
OMP_NUM_THREADS=1 .venv/bin/crossdistill compare --preset study --targets S1,S4 --seeds 5 \
  --student enet --teacher deeplabv3plus --out runs/compare-study-enet --jobs 2 \
  --methods "none,kmm+lm,recommended,recommended@untrained,recommended@ground-truth,kmm,lm,ours" \
  --versus "recommended:kmm+lm,ours:kmm+lm"
dest=docs/results/compare-study-enet-24ep/s1-s4-all
mkdir -p $dest
cp runs/compare-study-enet/compare.{md,csv,json} runs/compare-study-enet/{forest-val,forest-test,curves-val}.png $dest/
date -u +"S1,S4 report %FT%TZ"
export PYTHONPATH=/work/gridsrc3/src  # the code of 345d0b1 for the training runs
M="none,kmm+lm,ours[aam.on=features],ours[aam.match=teacher]"
for arm in "aam[aam.on=features]" "aam[aam.match=teacher]"; do
  M="$M,$arm"
  OMP_NUM_THREADS=1 .venv/bin/crossdistill compare --preset study --targets S4 --seeds 5 \
    --student enet --teacher deeplabv3plus --out runs/compare-study-enet --jobs 2 \
    --methods "$M" --versus "aam[aam.on=features]:kmm+lm,aam[aam.match=teacher]:kmm+lm"
  date -u +"step done %FT%TZ"
done
date -u +"end %FT%TZ"
