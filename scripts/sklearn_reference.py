#!/usr/bin/env python3
"""Regenerate crates/mmer-eval/tests/fixtures/sklearn_reference.json.

The Rust metrics in mmer-eval promise scikit-learn semantics:

    f1_score(y_true, y_pred, labels=range(C), average=..., zero_division=0)

(and the same for precision/recall/support, confusion_matrix(labels=range(C)),
hamming_loss and accuracy_score on multi-label indicator matrices). This script
evaluates scikit-learn on the fixed label vectors written out below and stores
vectors plus expected numbers; crates/mmer-eval/tests/sklearn_parity.rs checks
the Rust implementation against them to 1e-9.

The vectors are literals (not drawn from an RNG) so the fixture is reproducible
with any numpy version. The multi-label probability cases ("multi_label_scores")
are drawn with Python's random.Random(seed).random(), whose sequence Python
guarantees stable across versions, and every probability is rounded to an f32
(the Rust side takes f32) before anything is computed from it. For those cases
the script stores, per case:

- roc_auc: sklearn's roc_auc_score per label (None where the label has one
  class, where sklearn raises);
- ece: the expected calibration error of a plain numpy implementation of the
  binning documented in mmer_eval::multi_label::expected_calibration_error
  (bin k holds k/B < p <= (k+1)/B, the first bin also holds 0);
- thresholds: a plain-Python implementation of tune_thresholds (max F1 over
  the distinct probabilities plus 0.5, ties to the candidate closest to 0.5,
  then the lower; 0.5 for a label with no positive);
- sklearn's metrics of the bits decided with those thresholds (p >= t), and of
  the two trivial baselines (every probability 1.0; every probability the
  label's frequency in a separate "train" block of rows), thresholds 0.5.

Usage, from the repository root:

    pip install scikit-learn numpy
    python3 scripts/sklearn_reference.py
"""

import json
import math
import pathlib
import random
from fractions import Fraction

import numpy as np
import sklearn
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    hamming_loss,
    precision_recall_fscore_support,
    roc_auc_score,
)

OUT = (
    pathlib.Path(__file__).resolve().parent.parent
    / "crates/mmer-eval/tests/fixtures/sklearn_reference.json"
)

# MELD integer order: neutral0 surprise1 fear2 sadness3 joy4 disgust5 anger6.
MELD_FIVE = [0, 1, 3, 4, 6]

SINGLE_LABEL = [
    {
        # 7 MELD classes; disgust (5) occurs in neither vector, sadness (3) is
        # true but never predicted, fear (2) is rare and over-predicted.
        # Fear carries support, so the 5-class weighted F1 differs from the
        # 7-class one.
        "name": "meld7_absent_classes",
        "num_classes": 7,
        "y_true": [0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 1, 1, 1, 1, 3, 3, 3, 4, 4,
                   4, 4, 4, 4, 4, 6, 6, 6, 6, 0, 0, 1, 4, 6, 3, 2, 4, 4, 6, 0],
        "y_pred": [0, 0, 0, 0, 0, 0, 4, 4, 1, 2, 1, 1, 0, 4, 2, 0, 0, 4, 4, 4,
                   4, 4, 0, 6, 1, 6, 6, 0, 2, 0, 0, 1, 4, 6, 0, 6, 4, 4, 6, 0],
        "subsets": [MELD_FIVE, [2, 5], [5], [1, 3]],
    },
    {
        # IEMOCAP's 6 classes (hap0 sad1 neu2 ang3 exc4 fru5), all present.
        "name": "iemocap6",
        "num_classes": 6,
        "y_true": [0, 1, 2, 3, 4, 5, 2, 2, 5, 5, 3, 1, 1, 4, 4, 0, 2, 5, 3, 3,
                   2, 1, 4, 0, 5, 5, 2, 2, 1, 3, 4, 4, 0, 2, 5, 1, 3, 2, 2, 5,
                   4, 1, 0, 3, 5, 2, 2, 4, 1, 5],
        "y_pred": [4, 1, 2, 5, 4, 5, 2, 5, 5, 3, 3, 2, 1, 0, 4, 0, 2, 2, 5, 3,
                   1, 1, 4, 4, 5, 2, 2, 3, 1, 3, 4, 0, 4, 2, 5, 2, 3, 2, 5, 5,
                   4, 1, 0, 5, 2, 2, 1, 4, 1, 5],
        "subsets": [[0, 4], [1, 2, 3, 5]],
    },
    {
        # Disgust (5) is predicted but never true; most classes are absent.
        "name": "meld7_only_predicted",
        "num_classes": 7,
        "y_true": [0, 0, 1, 1],
        "y_pred": [5, 0, 1, 5],
        "subsets": [MELD_FIVE, [5], [2, 3]],
    },
    {
        # Degenerate binary: class 1 never occurs, so its P/R/F1 hit the
        # zero_division=0 branch while class 0 is perfect.
        "name": "binary_degenerate",
        "num_classes": 2,
        "y_true": [0, 0, 0],
        "y_pred": [0, 0, 0],
        "subsets": [[1], [0, 1]],
    },
    {
        # A single wrong prediction: every class has F1 0.
        "name": "binary_single_wrong",
        "num_classes": 2,
        "y_true": [1],
        "y_pred": [0],
        "subsets": [[0]],
    },
]

MULTI_LABEL_TRUE = [
    [1, 0, 0, 1, 0, 0],
    [0, 1, 0, 0, 0, 0],
    [1, 1, 0, 0, 1, 0],
    [0, 0, 0, 0, 0, 0],
    [1, 0, 0, 0, 1, 0],
    [0, 0, 0, 1, 1, 0],
    [1, 0, 1, 0, 0, 0],
    [0, 1, 0, 1, 0, 0],
    [1, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 1, 0],
    [1, 1, 1, 1, 1, 0],
    [0, 0, 0, 1, 0, 0],
]

MULTI_LABEL = [
    {
        # 6 labels (label 5 never true); the predictor says "yes" to everything.
        "name": "multilabel6_all_positive",
        "num_labels": 6,
        "y_true": MULTI_LABEL_TRUE,
        "y_pred": [[1] * 6 for _ in MULTI_LABEL_TRUE],
    },
    {
        # Same truth, a mixed predictor that never predicts labels 2 and 5
        # (label 5: zero_division on P, R and F1; label 2: R = 0, P undefined).
        "name": "multilabel6_mixed",
        "num_labels": 6,
        "y_true": MULTI_LABEL_TRUE,
        "y_pred": [
            [1, 0, 0, 0, 0, 0],
            [0, 1, 0, 1, 0, 0],
            [1, 0, 0, 0, 1, 0],
            [0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 1, 0],
            [0, 0, 0, 1, 1, 0],
            [1, 0, 0, 0, 0, 0],
            [0, 1, 0, 0, 0, 0],
            [1, 0, 0, 0, 1, 0],
            [0, 0, 0, 0, 1, 0],
            [1, 1, 0, 1, 1, 0],
            [1, 0, 0, 1, 0, 0],
        ],
    },
    {
        # Nothing true, nothing predicted: every F1 is the zero_division value.
        "name": "multilabel3_all_negative",
        "num_labels": 3,
        "y_true": [[0, 0, 0], [0, 0, 0]],
        "y_pred": [[0, 0, 0], [0, 0, 0]],
    },
]

# Per-seed values for the seed aggregation (mean and sample std, ddof=1).
AGGREGATE = [
    [0.6512, 0.6431, 0.6587, 0.6499, 0.6550],
    [0.5, 0.75],
    [0.1, 0.1, 0.1],
]


# Multi-label probability cases: per label, the rate of "present" and how the
# probability is drawn. "smooth": 0.6·u + 0.35·y quantised to 2^-16; "eighths":
# the same rounded to k/8 (many ties, values on bin boundaries); "hundredths":
# rounded to two decimals (ties, and values that are not exact in f32); "never"
# / "always": the label is never / always present. Every 17th draw of a smooth
# label is forced to 0.0 or 1.0 so the end bins are exercised.
SCORE_CASES = [
    {
        "name": "scores3_eighths",
        "seed": 20251,
        "rows": 40,
        "train_rows": 30,
        "labels": [(0.4, "smooth"), (0.5, "eighths"), (0.2, "smooth")],
    },
    {
        "name": "scores5_never",
        "seed": 20252,
        "rows": 120,
        "train_rows": 60,
        "labels": [
            (0.3, "smooth"),
            (0.6, "hundredths"),
            (0.0, "never"),
            (0.15, "smooth"),
            (0.5, "eighths"),
        ],
    },
    {
        "name": "scores6_always",
        "seed": 20253,
        "rows": 200,
        "train_rows": 80,
        "labels": [
            (0.1, "smooth"),
            (0.7, "smooth"),
            (1.0, "always"),
            (0.35, "hundredths"),
            (0.5, "smooth"),
            (0.05, "eighths"),
        ],
    },
    {
        # Seed picked so that tuning ties: label 0's best F1 is reached at
        # 0.375, 0.625 and 0.75 (0.375 and 0.625 equally close to 0.5 → the
        # lower), label 2's at 0.55, 0.58 and 0.70 (→ 0.55, the closest).
        "name": "scores4_threshold_ties",
        "seed": 320,
        "rows": 40,
        "train_rows": 20,
        "labels": [
            (0.3, "eighths"),
            (0.5, "eighths"),
            (0.4, "hundredths"),
            (0.25, "eighths"),
        ],
    },
]

# Bin counts of the stored ECEs: 15 is what MultiLabelScores uses; 8 and 10
# put k/8 and k/10 values exactly on bin boundaries.
ECE_BINS = [15, 10, 8]


def f32(x):
    """x rounded to the nearest f32, as a Python float."""
    return float(np.float32(x))


def draw_probability(rng, y, kind, draw):
    u = rng.random()
    if kind in ("never", "always"):
        return f32(math.floor((0.3 * u + 0.6 * y * u) * 2**16) / 2**16)
    raw = 0.6 * u + 0.35 * y
    if kind == "smooth":
        if draw % 17 == 0:
            return 1.0 if y else 0.0
        return math.floor(raw * 2**16) / 2**16
    if kind == "eighths":
        return round(raw * 8) / 8
    if kind == "hundredths":
        return f32(round(raw, 2))
    raise ValueError(kind)


def draw_scores(case):
    rng = random.Random(case["seed"])
    n_labels = len(case["labels"])

    def gold_row():
        return [
            1 if kind == "always" else int(kind != "never" and rng.random() < rate)
            for rate, kind in case["labels"]
        ]

    train = [gold_row() for _ in range(case["train_rows"])]
    y_true, probs = [], []
    for i in range(case["rows"]):
        y = gold_row()
        y_true.append(y)
        probs.append(
            [
                draw_probability(rng, y[l], case["labels"][l][1], i * n_labels + l)
                for l in range(n_labels)
            ]
        )
    return train, y_true, probs


def ece(y_true, probs, bins):
    """ECE over every (sample, label) probability, bin k holding
    k/B < p <= (k+1)/B and the first bin also p = 0."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(probs, dtype=np.float64).ravel()
    idx = np.clip(np.ceil(p * bins).astype(np.int64) - 1, 0, bins - 1)
    total = 0.0
    for k in range(bins):
        in_bin = idx == k
        if in_bin.any():
            weight = in_bin.sum() / p.size
            total += weight * abs(y[in_bin].mean() - p[in_bin].mean())
    return float(total)


def tune_threshold(y, p):
    """The F1-maximising threshold (predict p >= t) of one label."""
    positives = sum(y)
    if positives == 0:
        return 0.5
    best_key, best_t = None, None
    for t in sorted(set(p) | {0.5}):
        tp = sum(1 for yi, pi in zip(y, p) if yi and pi >= t)
        predicted = sum(1 for pi in p if pi >= t)
        key = (-Fraction(2 * tp, positives + predicted), abs(t - 0.5), t)
        if best_key is None or key < best_key:
            best_key, best_t = key, t
    return best_t


def scored(y_true, probs, thresholds):
    """What MultiLabelScores holds, computed by sklearn / numpy / Python."""
    yt = np.array(y_true)
    pr = np.array(probs, dtype=np.float64)
    decided = (pr >= np.array(thresholds, dtype=np.float64)).astype(int)
    labels = list(range(yt.shape[1]))
    # roc_auc_score raises for a label with one class: None there.
    auc = [
        float(roc_auc_score(yt[:, l], pr[:, l]))
        if 0 < yt[:, l].sum() < len(yt)
        else None
        for l in labels
    ]
    defined = [a for a in auc if a is not None]

    def f1(avg):
        return float(f1_score(yt, decided, labels=labels, average=avg, zero_division=0))

    return {
        "thresholds": [float(t) for t in thresholds],
        "roc_auc": auc,
        "mean_roc_auc": float(np.mean(defined)) if defined else None,
        "ece": [{"bins": b, "ece": ece(y_true, probs, b)} for b in ECE_BINS],
        "decided": decided.tolist(),
        "weighted_f1": f1("weighted"),
        "macro_f1": f1("macro"),
        "micro_f1": f1("micro"),
        "hamming_loss": float(hamming_loss(yt, decided)),
        "subset_accuracy": float(accuracy_score(yt, decided)),
        "f1": floats(
            f1_score(yt, decided, labels=labels, average=None, zero_division=0)
        ),
    }


def scores_case(case):
    train, y_true, probs = draw_scores(case)
    n_labels = len(case["labels"])
    thresholds = [
        tune_threshold([r[l] for r in y_true], [r[l] for r in probs])
        for l in range(n_labels)
    ]
    prior = [float(np.mean([r[l] for r in train])) for l in range(n_labels)]
    prior_probs = [[f32(q) for q in prior] for _ in y_true]
    return {
        "name": case["name"],
        "num_labels": n_labels,
        "y_true": y_true,
        "probs": probs,
        "tuned": scored(y_true, probs, thresholds),
        "train_y_true": train,
        "prior": prior,
        "prior_baseline": scored(y_true, prior_probs, [0.5] * n_labels),
        "all_positive_baseline": scored(
            y_true, [[1.0] * n_labels for _ in y_true], [0.5] * n_labels
        ),
    }


def floats(xs):
    return [float(x) for x in xs]


def single_label_case(case):
    yt, yp, c = case["y_true"], case["y_pred"], case["num_classes"]
    labels = list(range(c))
    p, r, f, s = precision_recall_fscore_support(
        yt, yp, labels=labels, average=None, zero_division=0
    )
    return {
        **case,
        "accuracy": float(accuracy_score(yt, yp)),
        "weighted_f1": float(
            f1_score(yt, yp, labels=labels, average="weighted", zero_division=0)
        ),
        "macro_f1": float(
            f1_score(yt, yp, labels=labels, average="macro", zero_division=0)
        ),
        "precision": floats(p),
        "recall": floats(r),
        "f1": floats(f),
        "support": [int(x) for x in s],
        "confusion": confusion_matrix(yt, yp, labels=labels).tolist(),
        "subsets": [
            {
                "classes": sub,
                "weighted_f1": float(
                    f1_score(yt, yp, labels=sub, average="weighted", zero_division=0)
                ),
            }
            for sub in case["subsets"]
        ],
    }


def multi_label_case(case):
    yt = np.array(case["y_true"])
    yp = np.array(case["y_pred"])
    labels = list(range(case["num_labels"]))
    p, r, f, s = precision_recall_fscore_support(
        yt, yp, labels=labels, average=None, zero_division=0
    )

    def f1(avg):
        return float(f1_score(yt, yp, labels=labels, average=avg, zero_division=0))

    return {
        **case,
        "weighted_f1": f1("weighted"),
        "macro_f1": f1("macro"),
        "micro_f1": f1("micro"),
        "hamming_loss": float(hamming_loss(yt, yp)),
        "subset_accuracy": float(accuracy_score(yt, yp)),
        "precision": floats(p),
        "recall": floats(r),
        "f1": floats(f),
        "support": [int(x) for x in s],
    }


def main():
    out = {
        "generator": "scripts/sklearn_reference.py",
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "single_label": [single_label_case(c) for c in SINGLE_LABEL],
        "multi_label": [multi_label_case(c) for c in MULTI_LABEL],
        "aggregate": [
            {
                "values": v,
                "mean": float(np.mean(v)),
                "std": float(np.std(v, ddof=1)),
            }
            for v in AGGREGATE
        ],
        "multi_label_scores": [scores_case(c) for c in SCORE_CASES],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
