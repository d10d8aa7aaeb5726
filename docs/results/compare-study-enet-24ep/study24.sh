#!/usr/bin/env bash
# Issue #17, the ENet study re-run with 24-epoch students (teachers reused): S1 and S4,
# five seeds, w/o, KMM+LM and the recommended preset first.
set -u
cd /work/main
date -u +"start %FT%TZ"
OMP_NUM_THREADS=1 .venv/bin/crossdistill compare --preset study --targets S1,S4 --seeds 5 \
  --student enet --teacher deeplabv3plus --methods none,kmm+lm,recommended \
  --out runs/compare-study-enet --jobs 2
date -u +"end %FT%TZ"
