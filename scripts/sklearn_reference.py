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
with any numpy version. Usage, from the repository root:

    pip install scikit-learn numpy
    python3 scripts/sklearn_reference.py
"""

import json
import pathlib

import numpy as np
import sklearn
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    hamming_loss,
    precision_recall_fscore_support,
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
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
