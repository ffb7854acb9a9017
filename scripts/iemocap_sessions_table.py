#!/usr/bin/env python3
"""Summarise scripts/run_iemocap_sessions.sh: per row, test weighted F1 per
fold (mean over seeds) and the cross-validated score — for each seed the mean
over the five folds, then mean ± std over seeds. Validation scores likewise.
Rows already in OUT_JSON whose runs are not under RUNS_DIR are kept, so rows
trained in different sessions share one file.

Usage: scripts/iemocap_sessions_table.py RUNS_DIR OUT_JSON
"""

import json
import pathlib
import statistics
import sys


def main():
    runs, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    summary = json.loads(out.read_text()) if out.is_file() else {}
    for row in sorted(p for p in runs.iterdir() if p.is_dir()):
        folds = {}
        for fold in sorted(row.glob("fold-*")):
            results = fold / "results.json"
            if not results.is_file():
                print(f"{results}: missing, row {row.name} skipped", file=sys.stderr)
                break
            r = json.loads(results.read_text())
            folds[fold.name] = {
                "test_size": r["split_sizes"]["test"],
                "test": r["test"]["weighted_f1"]["per_seed"],
                "valid": r["valid"]["weighted_f1"]["per_seed"],
                "best_epochs": [s["best_epoch"] for s in r["per_seed"]],
            }
        else:
            if len(folds) != 5:
                print(f"{row}: {len(folds)} folds, skipped", file=sys.stderr)
                continue
            seeds = len(next(iter(folds.values()))["test"])
            cv = {
                split: [statistics.mean(f[split][s] for f in folds.values()) for s in range(seeds)]
                for split in ("test", "valid")
            }
            summary[row.name] = {"folds": folds, "cross_validated": cv}
    out.write_text(json.dumps(summary, indent=2) + "\n")

    pct = lambda xs: f"{100 * statistics.mean(xs):.2f} ± {100 * statistics.stdev(xs):.2f}"
    print("| row | " + " | ".join(f"test Ses0{k}" for k in range(1, 6)) + " | test, 5-fold | valid, 5-fold |")
    print("|---" * 8 + "|")
    for name, s in summary.items():
        per_fold = [f"{100 * statistics.mean(f['test']):.2f}" for f in s["folds"].values()]
        cv = s["cross_validated"]
        print(f"| {name} | " + " | ".join(per_fold) + f" | {pct(cv['test'])} | {pct(cv['valid'])} |")


if __name__ == "__main__":
    main()
