#!/usr/bin/env python3
"""Classical reference classifiers on mmer's EmoDB features (issue 4).

Answers one question about the EmoDB leave-one-speaker-out gap: is it the
classifier (mmer's MLP) or the features? Runs the same protocol as `mmer bench
emodb-loso` — fold k tests speaker k, selects the hyper-parameter on speaker
k + 1, trains on the other eight, pools the ten folds' predictions — with
scikit-learn's RBF and linear SVMs and logistic regression, on the features
that `mmer bench emodb-loso --features-out emodb.csv` wrote, with and without
per-speaker z-scoring. Deterministic (no seeds involved).

Usage:
  mmer bench emodb-loso --seeds 0 --max-epochs 1 --features-out emodb.csv
  python3 scripts/emodb_sklearn_reference.py emodb.csv      # needs numpy, scikit-learn
"""

import csv
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

MODELS = {
    "SVM, RBF kernel (C ∈ 0.3…30)": lambda: [SVC(C=c, gamma="scale") for c in (0.3, 1, 3, 10, 30)],
    "SVM, linear (C ∈ 0.001…1)": lambda: [SVC(C=c, kernel="linear") for c in (0.001, 0.01, 0.1, 1)],
    "logistic regression (C ∈ 0.01…1)": lambda: [LogisticRegression(C=c, max_iter=5000) for c in (0.01, 0.1, 1)],
}


def load(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    features = np.array([[float(v) for v in r[3:]] for r in rows])
    return features, np.array([r[2] for r in rows]), np.array([r[1] for r in rows])


def per_speaker_z(x, speakers):
    x = x.copy()
    for s in np.unique(speakers):
        m = speakers == s
        x[m] = (x[m] - x[m].mean(0)) / np.maximum(x[m].std(0), 1e-6)
    return x


def loso(x, y, speakers, candidates):
    order = sorted(np.unique(speakers))
    predicted = np.empty(len(y), dtype=object)
    for k, test in enumerate(order):
        valid = order[(k + 1) % len(order)]
        train = (speakers != test) & (speakers != valid)
        scaler = StandardScaler().fit(x[train])
        best = None
        for model in candidates():
            model.fit(scaler.transform(x[train]), y[train])
            score = accuracy_score(y[speakers == valid], model.predict(scaler.transform(x[speakers == valid])))
            if best is None or score > best[0]:
                best = (score, model)
        predicted[speakers == test] = best[1].predict(scaler.transform(x[speakers == test]))
    return accuracy_score(y, predicted), f1_score(y, predicted, average="weighted")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    x, y, speakers = load(sys.argv[1])
    print(f"{len(y)} clips, {x.shape[1]} features, {len(np.unique(speakers))} speakers")
    print("| classifier | accuracy | weighted F1 | accuracy, speaker-norm | weighted F1, speaker-norm |")
    print("|---|---|---|---|---|")
    normed = per_speaker_z(x, speakers)
    for name, candidates in MODELS.items():
        acc, wf1 = loso(x, y, speakers, candidates)
        acc_n, wf1_n = loso(normed, y, speakers, candidates)
        print(f"| {name} | {acc * 100:.2f} | {wf1 * 100:.2f} | {acc_n * 100:.2f} | {wf1_n * 100:.2f} |", flush=True)


if __name__ == "__main__":
    main()
