#!/usr/bin/env python3
"""Markdown tables of the multi-label runs (issue 16) from their results.json.

    python3 scripts/multilabel_table.py docs/results/multilabel-synthetic-*.json --against concat_bce
    python3 scripts/multilabel_table.py docs/results/multilabel-elderreact-*.json \
        --logreg docs/results/elderreact-logreg.json

One row per run (the file name after its last "multilabel-<set>-" is the
row name) with the fused head at threshold 0.5 and at per-label thresholds
tuned on validation, each run's peers (`--peers`), and the two trivial
baselines (deterministic; taken from the first file). `--against RUN` adds
each row's macro-F1 gap to RUN in units of RUN's seed std and Welch's t.
"""

import argparse
import json
import math
import statistics
from pathlib import Path

METRICS = [
    ("macro F1", lambda s: s["report"]["macro_f1"]),
    ("weighted F1", lambda s: s["report"]["weighted_f1"]),
    ("micro F1", lambda s: s["report"]["micro_f1"]),
    ("subset acc.", lambda s: s["report"]["subset_accuracy"]),
    ("Hamming", lambda s: s["report"]["hamming_loss"]),
    ("mean ROC-AUC", lambda s: s["mean_roc_auc"]),
    ("ECE", lambda s: s["expected_calibration_error"]),
]


def fmt(values):
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    mean = 100 * statistics.mean(values)
    if len(values) == 1:
        return f"{mean:.2f}"
    return f"{mean:.2f} ± {100 * statistics.stdev(values):.2f}"


def heads(results, split, peer=None):
    """Per-seed (at_half, tuned) scores of the fused head or one peer."""
    out = []
    for seed in results["per_seed"]:
        if peer is None:
            head = seed[split]
        else:
            head = next(p for p in seed["peers"] if p["modality"] == peer)[split]
        out.append((head["at_half"], head["tuned"]))
    return out


def row(name, per_seed, metrics):
    cells = [name]
    for _, get in metrics:
        cells.append(fmt([get(h[0]) for h in per_seed]))
    cells.append(fmt([h[1]["report"]["macro_f1"] for h in per_seed]))
    cells.append(fmt([h[1]["report"]["weighted_f1"] for h in per_seed]))
    return cells


def welch(a, b):
    ma, mb = statistics.mean(a), statistics.mean(b)
    va, vb = statistics.variance(a), statistics.variance(b)
    return (ma - mb) / math.sqrt(va / len(a) + vb / len(b))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--split", default="test", choices=["test", "valid"])
    parser.add_argument("--against", help="row name to compare macro F1 against")
    parser.add_argument("--peers", action="store_true", help="also a row per peer")
    parser.add_argument("--logreg", type=Path, help="scripts/elderreact_logreg.py output")
    args = parser.parse_args()
    runs = {}
    for path in args.files:
        name = path.stem.split("-", 2)[-1] if path.stem.count("-") >= 2 else path.stem
        runs[name] = json.loads(path.read_text())
    first = next(iter(runs.values()))
    header = ["model"] + [m for m, _ in METRICS] + ["macro F1 (tuned)", "weighted F1 (tuned)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    seeds = {}
    for name, results in runs.items():
        per_seed = heads(results, args.split)
        seeds[name] = [h[0]["report"]["macro_f1"] for h in per_seed]
        lines.append("| " + " | ".join(row(f"{name} ({len(per_seed)} seeds)", per_seed, METRICS)) + " |")
        if args.peers:
            for peer in results["peers"]:
                p = heads(results, args.split, peer["modality"])
                lines.append("| " + " | ".join(row(f"{name}: {peer['modality']} peer", p, METRICS)) + " |")
    if args.logreg:
        lr = json.loads(args.logreg.read_text())[args.split]
        cells = ["per-label logistic regression (deterministic)"]
        for metric, _ in METRICS:
            key = {"macro F1": "macro_f1", "weighted F1": "weighted_f1", "micro F1": "micro_f1",
                   "mean ROC-AUC": "mean_roc_auc"}.get(metric)
            cells.append(f"{100 * lr['at_half'][key]:.2f}" if key else "—")
        cells += [f"{100 * lr['tuned']['macro_f1']:.2f}", f"{100 * lr['tuned']['weighted_f1']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    base = first["baselines"]
    for name, key in [("predict every label", "all_positive"), ("predict the training prior", "prior")]:
        cells = [name] + [fmt([get(base[key])]) for _, get in METRICS] + ["—", "—"]
        lines.append("| " + " | ".join(cells) + " |")
    print("\n".join(lines))
    if args.against:
        ref = seeds[args.against]
        sd = statistics.stdev(ref)
        print(f"\nmacro F1 at 0.5 against {args.against} ({100 * statistics.mean(ref):.2f} ± {100 * sd:.2f}):\n")
        print("| model | gap | gap / std of the reference | Welch t |\n|---|---|---|---|")
        for name, values in seeds.items():
            if name == args.against:
                continue
            gap = statistics.mean(values) - statistics.mean(ref)
            print(f"| {name} | {100 * gap:+.2f} | {gap / sd:+.1f} | {welch(values, ref):+.1f} |")
    all_pos = base["all_positive"]["report"]["macro_f1"]
    for name, values in seeds.items():
        if len(values) > 1:
            sd = statistics.stdev(values)
            print(f"\n{name}: macro F1 − predict-every-label = {100 * (statistics.mean(values) - all_pos):+.2f}"
                  f" ({(statistics.mean(values) - all_pos) / sd:+.1f} std)")


if __name__ == "__main__":
    main()
