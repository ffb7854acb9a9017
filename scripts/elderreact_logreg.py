#!/usr/bin/env python3
"""ElderReact audio: a per-label logistic regression, the linear reference
beside SeMuL-PCD's audio peer (issue 16; docs/RESULTS.md, "Multi-label").

Reads the shared ElderReact files exactly as `mmer_data::elderreact` does
(148 COVAREP statistics per clip; a non-finite value is replaced by its
column's mean over the train split), z-scores with train statistics, fits
one L2 logistic regression per label (scikit-learn, lbfgs), picks C from
{0.001, 0.01, 0.1, 1, 10} on the dev split's macro F1 at threshold 0.5, tunes
per-label thresholds on dev with mmer's rule (the label's F1-maximising
candidate among its dev probabilities and 0.5, ties to the one closest to
0.5), and scores test at 0.5 and at the tuned thresholds. Deterministic.

    ~/.cache/mmer/bench-venv/bin/python scripts/elderreact_logreg.py \
        [--data ../shared/data/elderreact] [--out docs/results/elderreact-logreg.json] \
        [--features all|baseline72]

`--features baseline72` keeps the 36 statistics the dataset's own baseline
used from each half (means 0-35, stds 74-109) instead of all 148.
"""

import argparse
import json
import math
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score

CLASSES = ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]
SPLITS = {"train": "train", "valid": "dev", "test": "test"}


def read_split(data: Path, name: str):
    labels = {}
    for line in (data / f"{name}_labels.txt").read_text().splitlines():
        if not line.strip():
            continue
        fields = line.split()
        labels[fields[0].removesuffix(".mp4")] = [int(x) for x in fields[1:7]]
    rows, gold = [], []
    for line in (data / f"{name}_audio.txt").read_text().splitlines():
        if not line.strip():
            continue
        clip, *values = line.split()
        rows.append([float(v) for v in values])
        gold.append(labels[clip])
    return np.array(rows, dtype=np.float64), np.array(gold, dtype=bool)


def tune(gold: np.ndarray, probs: np.ndarray) -> list[float]:
    thresholds = []
    for label in range(gold.shape[1]):
        y, p = gold[:, label], probs[:, label]
        if not y.any():
            thresholds.append(0.5)
            continue
        best = None
        for t in sorted(set(p.tolist()) | {0.5}):
            f1 = f1_score(y, p >= t, zero_division=0)
            key = (f1, -abs(t - 0.5))
            if best is None or key > best[0]:
                best = (key, t)
        thresholds.append(best[1])
    return thresholds


def scores(gold: np.ndarray, probs: np.ndarray, thresholds) -> dict:
    decided = probs >= np.array(thresholds)[None, :]
    aucs = [
        roc_auc_score(gold[:, l], probs[:, l]) if 0 < gold[:, l].sum() < len(gold) else None
        for l in range(gold.shape[1])
    ]
    defined = [a for a in aucs if a is not None]
    return {
        "macro_f1": f1_score(gold, decided, average="macro", zero_division=0),
        "weighted_f1": f1_score(gold, decided, average="weighted", zero_division=0),
        "micro_f1": f1_score(gold, decided, average="micro", zero_division=0),
        "per_label_f1": f1_score(gold, decided, average=None, zero_division=0).tolist(),
        "roc_auc": aucs,
        "mean_roc_auc": sum(defined) / len(defined) if defined else None,
        "thresholds": [float(t) for t in thresholds],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/elderreact"))
    parser.add_argument("--out", type=Path, default=Path("docs/results/elderreact-logreg.json"))
    parser.add_argument("--features", choices=["all", "baseline72"], default="all")
    args = parser.parse_args()
    x, y = {}, {}
    for split, name in SPLITS.items():
        x[split], y[split] = read_split(args.data, name)
    train_mean = np.nanmean(np.where(np.isfinite(x["train"]), x["train"], np.nan), axis=0)
    replaced = 0
    for split in x:
        bad = ~np.isfinite(x[split])
        replaced += int(bad.sum())
        x[split] = np.where(bad, train_mean[None, :], x[split])
    if args.features == "baseline72":
        columns = list(range(36)) + list(range(74, 110))
        x = {s: v[:, columns] for s, v in x.items()}
    mean, std = x["train"].mean(axis=0), x["train"].std(axis=0)
    std[std == 0] = 1.0
    z = {s: (v - mean) / std for s, v in x.items()}

    def fit(c: float):
        models = [
            LogisticRegression(C=c, max_iter=5000).fit(z["train"], y["train"][:, l])
            for l in range(len(CLASSES))
        ]
        return lambda v: np.stack([m.predict_proba(v)[:, 1] for m in models], axis=1)

    grid = [0.001, 0.01, 0.1, 1.0, 10.0]
    by_c = {}
    for c in grid:
        predict = fit(c)
        valid = predict(z["valid"])
        by_c[c] = (f1_score(y["valid"], valid >= 0.5, average="macro", zero_division=0), predict)
    best_c = max(grid, key=lambda c: (by_c[c][0], -c))
    predict = by_c[best_c][1]
    valid_probs, test_probs = predict(z["valid"]), predict(z["test"])
    tuned = tune(y["valid"], valid_probs)
    result = {
        "model": "per-label logistic regression (scikit-learn, L2, lbfgs) on z-scored COVAREP statistics",
        "features": args.features,
        "classes": CLASSES,
        "split_sizes": {s: int(len(v)) for s, v in y.items()},
        "non_finite_values_replaced": replaced,
        "c_grid_valid_macro_f1": {str(c): by_c[c][0] for c in grid},
        "c": best_c,
        "valid": {"at_half": scores(y["valid"], valid_probs, [0.5] * 6), "tuned": scores(y["valid"], valid_probs, tuned)},
        "test": {"at_half": scores(y["test"], test_probs, [0.5] * 6), "tuned": scores(y["test"], test_probs, tuned)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name in ["at_half", "tuned"]:
        t = result["test"][name]
        print(
            f"test {name}: macro F1 {100 * t['macro_f1']:.2f}  weighted F1 {100 * t['weighted_f1']:.2f}"
            f"  mean ROC-AUC {100 * t['mean_roc_auc']:.2f}"
        )
    print(f"C = {best_c}; written {args.out}")


if __name__ == "__main__":
    main()
