#!/usr/bin/env bash
# Issue 17: finish LM alone at S4, then S1: controls of recommended, KMM, LM, ours (five seeds).
set -u
cd /work/main
export PYTHONPATH=/work/gridsrc3/src  # the code of 345d0b1
date -u +"start %FT%TZ"
M="none,kmm+lm,recommended,recommended@untrained,recommended@ground-truth"
M4="$M,ours[aam.stride=8],ours[aam.on=features],ours,ours[aam.match=teacher],kmm,lm"
V="recommended:kmm+lm,ours:kmm+lm,ours[aam.stride=8]:kmm+lm,ours[aam.on=features]:kmm+lm,ours[aam.match=teacher]:kmm+lm"
OMP_NUM_THREADS=1 .venv/bin/crossdistill compare --preset study --targets S4 --seeds 5 \
  --student enet --teacher deeplabv3plus --out runs/compare-study-enet --jobs 2 \
  --methods "$M4" --versus "$V"
date -u +"S4 done %FT%TZ"
for M1 in "$M" "$M,kmm,lm" "$M,kmm,lm,ours"; do
  OMP_NUM_THREADS=1 .venv/bin/crossdistill compare --preset study --targets S1 --seeds 5 \
    --student enet --teacher deeplabv3plus --out runs/compare-study-enet --jobs 2 \
    --methods "$M1" --versus "recommended:kmm+lm,ours:kmm+lm"
  date -u +"S1 step done %FT%TZ"
done
date -u +"end %FT%TZ"
