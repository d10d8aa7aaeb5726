#!/usr/bin/env bash
# Issue #17/#18, queued after runs/study24.sh (stage A: w/o, KMM+LM, recommended at S1 and S4,
# five seeds, 24-epoch ENet students). Each stage passes every arm run so far, so the plan and
# the report in runs/compare-study-enet always cover all of them; finished runs are reused.
#   B1: both controls of the preset that is better on validation (pooled val Δ to w/o);
#   B2: the paper's method (ours) and its AAM readings (issue 18): stride 8, features, relational;
#   B3: KMM and LM alone.
set -u
cd /work/main
while pgrep -f "runs/study24.sh" >/dev/null; do sleep 30; done
date -u +"start %FT%TZ"
# Teachers restored from docs/results carry summaries but no checkpoints: retrain them (the CPU
# runs are deterministic, so they come out the same) for the students still to distil.
for d in runs/compare-study-enet/runs/*/seed*/teacher-*; do
  [ -e "$d/checkpoints/best.safetensors" ] || { echo "retrain $d"; rm -rf "$d"; }
done
BEST=$(.venv/bin/python - <<'PY'
import json
try:
    d = json.load(open("runs/compare-study-enet/compare.json"))
    val = {c["a"]: c["pooled"]["mean"] for c in d["comparisons"]
           if c["b"] == "w/o" and c["metric"] == "val" and c["a"] in ("kmm+lm", "recommended")}
    print(max(val, key=val.get))
except Exception:
    print("kmm+lm")
PY
)
echo "better on validation: $BEST"
run() {
  OMP_NUM_THREADS=1 .venv/bin/crossdistill compare --preset study --targets S1,S4 --seeds 5 \
    --student enet --teacher deeplabv3plus --out runs/compare-study-enet --jobs 2 \
    --methods "$1" --versus recommended:kmm+lm
}
M="none,kmm+lm,recommended,$BEST@untrained,$BEST@ground-truth"
run "$M"
M="$M,ours,ours[aam.stride=8],ours[aam.on=features],ours[aam.match=teacher]"
run "$M"
run "$M,kmm,lm"
date -u +"end %FT%TZ"
