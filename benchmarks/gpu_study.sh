#!/usr/bin/env bash
# The demo-scale distillation study (docs/distillation-study.md) and the SAML ablation on one
# GPU, as parallel processes that share it. Each run is a demo run with device=cuda.
#
#   bash benchmarks/gpu_study.sh OUT [BUDGET_SECONDS]
#
# No run starts after BUDGET_SECONDS (runs in flight finish); a rerun reuses finished runs.
# Writes OUT/study.jsonl and OUT/saml.jsonl; report with
#   python benchmarks/distill_study.py --out OUT --report docs/figures
set -euo pipefail
out=${1:?usage: gpu_study.sh OUT [BUDGET_SECONDS]}
budget=${2:-300}
export PYTHONPATH=$PWD/src:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$out"
python3 -c "import sys; from demo_runs import prepare_bench; prepare_bench(__import__('pathlib').Path(sys.argv[1]), False)" "$out"
study=(python3 benchmarks/distill_study.py --out "$out" --device cuda --budget "$budget")
# three targets, both protocols, the Table 3 terms and the recommended preset
"${study[@]}" --jobs 18 --targets S1,S4,S5 --variants none,recommended,ours,kmm,lm,aam \
    >"$out/study-diagnosis.log" 2>&1 &
# the other three targets: the recommended preset against w/o, cross-site
"${study[@]}" --jobs 9 --targets S2,S3,S6 --protocols cross-site --variants none,recommended \
    >"$out/study-targets.log" 2>&1 &
python3 benchmarks/saml_ablation.py --out "$out" --device cuda --jobs 6 --target S4 --variants saml,no_compact,no_smooth,no_shape --budget "$budget" \
    >"$out/saml.log" 2>&1 &
status=0
for job in $(jobs -p); do wait "$job" || status=1; done
grep -h '^{' "$out"/study-*.log | wc -l | xargs echo "study rows:"
tail -n 8 "$out/saml.log"
exit $status
