#!/usr/bin/env python3
"""Print the markdown table of docs/RESULTS.md from docs/results/*.json.

Each JSON is a `results.json` written by `mmer train` (test split, model
selected on validation, mean ± sample std over seeds). Other reports in the
folder (e.g. `mmer bench emodb-loso`'s) are skipped with a note on stderr.
Usage: scripts/results_table.py [docs/results/*.json]
"""
import glob
import json
import sys


def cell(agg):
    if agg is None:
        return "—"
    std = agg.get("std")
    return f"{100 * agg['mean']:.2f} ± {100 * std:.2f}" if std is not None else f"{100 * agg['mean']:.2f}"


def main(paths):
    rows = []
    for path in sorted(paths):
        with open(path) as f:
            r = json.load(f)
        if "dataset" not in r or "model" not in r:
            print(f"skipped {path}: not a `mmer train` results.json", file=sys.stderr)
            continue
        test, valid = r.get("test") or {}, r.get("valid") or {}
        rows.append((
            path.split("/")[-1].removesuffix(".json"),
            r["dataset"],
            r.get("encoder") or "features",
            r["model"].removeprefix("erc-context-"),
            len(r["seeds"]),
            cell(test.get("weighted_f1")),
            cell(test.get("five_class_weighted_f1")),
            cell(test.get("accuracy")),
            cell(test.get("macro_f1")),
            cell(valid.get("weighted_f1")),
        ))
    print("| run | dataset | encoder | context | seeds | test wF1 | test 5-class wF1 | test acc | test macro-F1 | valid wF1 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")


if __name__ == "__main__":
    main(sys.argv[1:] or glob.glob("docs/results/*.json"))
