#!/usr/bin/env bash
# Issue 18, written 2026-12-06 11:40 UTC, replaces study24m.sh/study24n.sh after the checkout
# lost runs/ (their finished runs are kept; teachers retrain from their seeds). Code snapshot
# 80d2487 (/work/gridsrc8; ENet training unchanged since 0bae303). S4, five seeds, 24 epochs.
# Order: the rows of Table 3 with AAM in the two readings that do not collapse, then AAM's
# margin and adaptive sizes in the full method, then the collapsing readings' rows.
set -u
cd /work/main
export PYTHONPATH=/work/gridsrc8/src
C="compare --preset study --seeds 5 --student enet --teacher deeplabv3plus --out runs/compare-study-enet --jobs 2 --targets S4"
run() { OMP_NUM_THREADS=1 .venv/bin/crossdistill $C "$@"; date -u +"step done %FT%TZ"; }
date -u +"start %FT%TZ"
for reading in "[aam.on=features]" "[aam.match=teacher]"; do
  run --methods "none,kmm+lm,aam+lm$reading,aam+kmm$reading"
done
V="ours[aam.sizes=[1,2,3],aam.adaptive=true]"
run --methods "none,kmm+lm,$V,ours[aam.margin=1],ours[aam.on=features,aam.margin=1]"
for reading in "" "[aam.stride=8]"; do
  run --methods "none,kmm+lm,aam+lm$reading,aam+kmm$reading"
done
run --methods "none,aam,aam[aam.stride=8]"
date -u +"end %FT%TZ"
