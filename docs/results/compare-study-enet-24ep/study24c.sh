#!/usr/bin/env bash
# Issue #17/#18 stage B at S4 (UCL) first: its teachers still have their checkpoints here, so
# nothing is retrained. B1: both controls of `recommended` (better on pooled validation in
# stage A); B2: ours and its AAM readings (issue 18); B3: KMM and LM alone.
set -u
cd /work/main
date -u +"start %FT%TZ"
export PYTHONPATH=/work/gridsrc/src  # the grid runs the code of its start, not edits made meanwhile
run() {
  OMP_NUM_THREADS=1 .venv/bin/crossdistill compare --preset study --targets S4 --seeds 5 \
    --student enet --teacher deeplabv3plus --out runs/compare-study-enet --jobs 2 \
    --methods "$1" --versus recommended:kmm+lm
}
M="none,kmm+lm,recommended,recommended@untrained,recommended@ground-truth"
run "$M"
M="$M,ours,ours[aam.stride=8],ours[aam.on=features],ours[aam.match=teacher]"
run "$M"
run "$M,kmm,lm"
date -u +"end %FT%TZ"
