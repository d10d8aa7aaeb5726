#!/usr/bin/env bash
# Issue 17 stage B3 at S4: KMM and LM alone (after study24e.sh was stopped for the session's
# report at 19:54 UTC; its interrupted kmm runs resume).
set -u
cd /work/main
export PYTHONPATH=/work/gridsrc2/src  # the code of 6a0c838 (Dice-only validation, weights digests)
date -u +"start %FT%TZ"
M="none,kmm+lm,recommended,recommended@untrained,recommended@ground-truth"
M="$M,ours[aam.stride=8],ours[aam.on=features],ours,ours[aam.match=teacher]"
V="recommended:kmm+lm,ours:kmm+lm,ours[aam.stride=8]:kmm+lm,ours[aam.on=features]:kmm+lm,ours[aam.match=teacher]:kmm+lm"
for arm in kmm lm; do
  M="$M,$arm"
  OMP_NUM_THREADS=1 .venv/bin/crossdistill compare --preset study --targets S4 --seeds 5 \
    --student enet --teacher deeplabv3plus --out runs/compare-study-enet --jobs 2 \
    --methods "$M" --versus "$V"
done
date -u +"end %FT%TZ"
