"""Paired differences with 95 % CIs for results stored before `crossdistill compare` existed.

Reads a reproduce table (``docs/results/table3-recommended.json``: entries with ``row``,
``site``, ``seeds``, ``dice``) or the three-seed study rows (``docs/results/study-h100.jsonl``:
``target``, ``seed``, ``protocol``, ``variant``, ``dice``) and prints, for every row against
the baseline row, the per-target Student-t CI over seeds and the pooled bootstrap CI over
(target, seed) pairs — the statistics of ``crossdistill.compare.stats``.

    python benchmarks/paired_intervals.py docs/results/table3-recommended.json
    python benchmarks/paired_intervals.py docs/results/study-h100.jsonl --protocol cross-site
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from crossdistill.compare.stats import compare_arms

Values = dict[tuple[str, str], dict[str, dict[int, float]]]


def table_values(path: Path) -> Values:
    """``{(block, row): {site: {seed: dice}}}`` of a reproduce table's JSON (a block is a
    student of Table 2)."""
    values: Values = {}
    for e in json.loads(path.read_text(encoding="utf-8"))["entries"]:
        if e["site"] == "mean":  # the table's mean over sites, not a site
            continue
        for seed, dice in zip(e["seeds"], e["dice"], strict=True):
            key = (e["block"], e["row"])
            values.setdefault(key, {}).setdefault(e["site"], {})[seed] = dice
    return values


def study_values(path: Path, protocol: str) -> Values:
    """``{("enet", variant): {target: {seed: dice}}}`` of the study's lines under ``protocol``."""
    values: Values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r["protocol"] == protocol:
            key = ("enet", r["variant"])
            values.setdefault(key, {}).setdefault(r["target"], {})[r["seed"]] = r["dice"]
    return values


def _ci(low: float, high: float) -> str:
    return "n/a (1 seed)" if math.isnan(low) else f"[{low:+.3f}, {high:+.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--baseline", default="none")
    parser.add_argument("--protocol", default="cross-site")
    args = parser.parse_args()
    if args.path.suffix == ".jsonl":
        values = study_values(args.path, args.protocol)
        source = f"{args.path.name}, {args.protocol}"
    else:
        values = table_values(args.path)
        source = args.path.name
    print(f"# Paired differences against '{args.baseline}' ({source})\n")
    print("| student | row | target | n | Δ mean | 95 % CI | wins/ties/losses | verdict |")
    print("|---|---|---|---|---|---|---|---|")
    for (block, row), by_site in values.items():
        base = values.get((block, args.baseline))
        if row in (args.baseline, "teacher") or base is None:
            continue
        per_target, pooled = compare_arms(by_site, base)
        for target, d in [*per_target.items(), ("pooled", pooled)]:
            if d is None:
                continue
            print(
                f"| {block} | {row} | {target} | {d.n} | {d.mean:+.3f} | {_ci(d.low, d.high)} | "
                f"{d.wins}/{d.ties}/{d.losses} | {d.verdict} |"
            )


if __name__ == "__main__":
    main()
