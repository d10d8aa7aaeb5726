#!/usr/bin/env bash
# (study24e: the same as study24d with the code of b6625c0: Dice-only validation, weights
# digests.) Replaces study24c.sh's queue after its first invocation (S4, B1 controls): stage B2 one
# AAM reading at a time, so that each finishes all five seeds before the next starts
# (a session ends before all of them can run): stride 8 (the reading an independent check
# found least collapsed), feature maps, the paper's full-resolution AAM, the relational one;
# then B3 (KMM, LM alone).
set -u
cd /work/main
export PYTHONPATH=/work/gridsrc2/src  # the grid runs the code of its start, not later edits
while pgrep -f "crossdistill compare --preset study --targets S4" >/dev/null; do sleep 30; done
date -u +"start %FT%TZ"
run() {
  OMP_NUM_THREADS=1 .venv/bin/crossdistill compare --preset study --targets S4 --seeds 5 \
    --student enet --teacher deeplabv3plus --out runs/compare-study-enet --jobs 2 \
    --methods "$1" --versus recommended:kmm+lm
}
M="none,kmm+lm,recommended,recommended@untrained,recommended@ground-truth"
for arm in "ours[aam.stride=8]" "ours[aam.on=features]" ours "ours[aam.match=teacher]" kmm lm; do
  M="$M,$arm"
  run "$M"
done
date -u +"end %FT%TZ"
