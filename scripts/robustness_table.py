#!/usr/bin/env python3
"""Print docs/RESULTS.md's missing-modality tables from `mmer robustness --out`.

The thesis-style table (full, T+A, T+V, A+V, No Face, No Body; test wF1 %,
mean ± sample std over seeds) for every run in the JSON, the majority-class
row, and — with --against RUN — each run's gap to that run per condition:
the gap over the larger standard deviation, Welch's t, and the paired t over
the seeds both runs share (same seed, same data, so the seed-to-seed
variation common to both cancels). With --sweep, the missing-rate table.

With --ceiling CEILING.json (`mmer robustness --rates 0` of runs trained on
fewer modalities, scripts/run_robustness_ceiling.sh), a row "trained on the
condition's modalities": for each condition, the full score of the ceiling
run whose modalities are the ones the condition leaves.

Multi-label reports are tabled by macro F1 (their headline metric), others
by weighted F1; the trivial baseline row is the report's own (majority
class, or every label).

With --seeds, every run is restricted to those seeds (mean and std
recomputed from the per-seed values), to compare runs with different seed
counts on the seeds they share.

Usage: scripts/robustness_table.py REPORT.json [--against RUN] [--sweep] [--seeds 0,1,2]
       (RUN: a run directory's last component, e.g. man_af)
"""
import argparse
import json
import math
from pathlib import Path

# The thesis's rows (Table 5.6), as conditions of `mmer robustness`.
THESIS_ROWS = [
    ("full", "full"),
    ("T+A (no face, no body)", "no face + body"),
    ("T+V (no audio)", "no audio"),
    ("A+V (no text)", "no text"),
    ("No Face", "no face"),
    ("No Body", "no body"),
]


def cell(score):
    std = score.get("std")
    return f"{score['mean']:.2f} ± {std:.2f}" if std is not None else f"{score['mean']:.2f}"


def welch_t(a, b):
    va, vb = a["std"] ** 2 / len(a["per_seed"]), b["std"] ** 2 / len(b["per_seed"])
    return (a["mean"] - b["mean"]) / math.sqrt(va + vb)


def paired_t(a, b, seeds_a, seeds_b):
    shared = [s for s in seeds_a if s in seeds_b]
    diffs = [a["per_seed"][seeds_a.index(s)] - b["per_seed"][seeds_b.index(s)] for s in shared]
    if len(diffs) < 2:
        return None, len(diffs)
    mean = sum(diffs) / len(diffs)
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
    return (mean / (sd / math.sqrt(len(diffs))) if sd > 0 else math.inf), len(diffs)


def restrict(report, seeds):
    """The report with every score recomputed over `seeds` only."""
    missing = [s for s in seeds if s not in report["seeds"]]
    if missing:
        raise SystemExit(f"error: {report['run']} has no seed(s) {missing}")
    keep = [report["seeds"].index(s) for s in seeds]

    def score(agg):
        values = [agg["per_seed"][k] for k in keep]
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else None
        return {"mean": mean, "std": std, "per_seed": values}

    out = dict(report, seeds=seeds)
    rescore = lambda c: {k: score(v) if k in METRICS else v for k, v in c.items()}
    out["conditions"] = [rescore(c) for c in report["conditions"]]
    out["sweep"] = [rescore(p) for p in report["sweep"]]
    return out


METRICS = ("weighted_f1", "accuracy", "macro_f1")


def headline(score):
    """Macro F1 for a multi-label report, weighted F1 otherwise."""
    return score.get("macro_f1") or score["weighted_f1"]


def baseline(report):
    """The report's trivial baseline (`majority_baseline` in older files)."""
    return report.get("baseline") or dict(report["majority_baseline"], name="majority class")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report")
    parser.add_argument("--against", help="run to compare every other run with")
    parser.add_argument("--sweep", action="store_true", help="also print the missing-rate sweep")
    parser.add_argument("--seeds", help="comma-separated seeds every run is restricted to")
    parser.add_argument("--ceiling", help="robustness report of runs trained on each condition's modalities")
    args = parser.parse_args()
    reports = json.loads(Path(args.report).read_text(encoding="utf-8"))
    if args.seeds:
        reports = [restrict(r, [int(s) for s in args.seeds.split(",")]) for r in reports]
    name = lambda r: Path(r["run"]).name
    scores = {name(r): {c["name"]: headline(c) for c in r["conditions"]} for r in reports}
    seeds = {name(r): r["seeds"] for r in reports}

    print("| run | seeds | " + " | ".join(label for label, _ in THESIS_ROWS) + " |")
    print("|---|---|" + "---|" * len(THESIS_ROWS))
    for r in reports:
        row = [cell(scores[name(r)][c]) if c in scores[name(r)] else "—" for _, c in THESIS_ROWS]
        print(f"| {name(r)} | {len(r['seeds'])} | " + " | ".join(row) + " |")
    if args.ceiling:
        ceilings = json.loads(Path(args.ceiling).read_text(encoding="utf-8"))
        ceiling = {
            frozenset(r["modalities"]): next(c for c in r["conditions"] if c["name"] == "full")
            for r in ceilings
        }
        row = []
        for _, c in THESIS_ROWS:
            removed = set() if c == "full" else set(c.removeprefix("no ").split(" + "))
            kept = frozenset(m for m in reports[0]["modalities"] if m not in removed)
            row.append(cell(headline(ceiling[kept])) if kept in ceiling else "—")
        seed_counts = "/".join(sorted({str(len(r["seeds"])) for r in ceilings}))
        print(f"| trained on the condition's modalities | {seed_counts} | " + " | ".join(row) + " |")
    trivial = baseline(reports[0])
    value = headline(trivial)["mean"]
    print(f"| {trivial['name']} | — | " + " | ".join(f"{value:.2f}" for _ in THESIS_ROWS) + " |")

    if args.against:
        base = args.against
        if base not in scores:
            raise SystemExit(f"error: no run named {base!r} in {args.report} (runs: {', '.join(scores)})")
        for other in (n for n in scores if n != base):
            print(f"\n{other} − {base}:\n")
            print("| condition | gap | larger std | gap / larger std | Welch t | paired t (seeds) |")
            print("|---|---|---|---|---|---|")
            for label, c in THESIS_ROWS:
                a, b = scores[other].get(c), scores[base].get(c)
                if a is None or b is None or a["std"] is None or b["std"] is None:
                    continue
                gap, larger = a["mean"] - b["mean"], max(a["std"], b["std"])
                t, n = paired_t(a, b, seeds[other], seeds[base])
                paired = f"{t:+.1f} ({n})" if t is not None else "—"
                print(f"| {label} | {gap:+.2f} | {larger:.2f} | {gap / larger:+.1f} | {welch_t(a, b):+.1f} | {paired} |")

    if args.sweep:
        print("\n| missing rate | " + " | ".join(name(r) for r in reports) + " |")
        print("|---|" + "---|" * len(reports))
        for k, point in enumerate(reports[0]["sweep"]):
            row = [cell(headline(r["sweep"][k])) for r in reports]
            print(f"| {point['rate']:.1f} ({point['removed_share']:.2f} removed) | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
