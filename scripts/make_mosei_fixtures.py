#!/usr/bin/env python3
"""Write the tiny CMU-MOSEI test fixtures of `mmer_data::mosei`.

Writes crates/mmer-data/tests/fixtures/mosei/ (a few KB in all): files laid
out exactly like the two forms users have CMU-MOSEI in, filled with small
made-up values whose pattern the Rust tests check. No real data is used.

1. MMSA feature pickles (thuiar/MMSA `aligned_50.pkl` / `unaligned_50.pkl`,
   or what MMSA-FET's `run_dataset` writes): a dict with `train`, `valid`,
   `test` (and MMSA-FET's `config`), each a dict of numpy arrays:
   - mmsa_unaligned.pkl: as MMSA-FET writes (protocol 5, float64 features
     padded with zeros at the end, `<U` string arrays, `audio_lengths` /
     `vision_lengths`, `text_bert` [N, 3, T] with the attention mask in row
     1), plus an `emotion_labels` [N, 7] array (sentiment, then the six
     emotions: the "All Labels" order) that MMSA itself does not ship;
   - mmsa_aligned.pkl: as MMSA's own aligned_50.pkl (protocol 4, float32,
     object-dtype ids, no lengths, no emotion labels) with one -inf audio
     value, as MMSA's audio has;
   - mmsa_missing_key.pkl (valid has no `id`), mmsa_length_mismatch.pkl
     (train `audio` one row short), mmsa_bad_label.pkl (a negative emotion
     intensity in test).
2. CMU-MultimodalSDK computational sequences (HDF5, written with h5py the way
   the SDK's `write_CSD` writes them: `<root>/data/<entry>/features` and
   `.../intervals`, `<root>/metadata/<key>` as one JSON string each):
   - labels.csd ("All Labels", per video one row per segment:
     [sentiment, happy, sad, anger, surprise, disgust, fear]);
   - covarep.csd (audio, gzip level 9 and one chunk per dataset as the
     SDK's `deploy` writes, one NaN value);
   - facet_aligned.csd (face, already aligned to the labels by the SDK:
     entries `vid[i]`; vidC has none);
   - words.csd (fixed-length byte strings, `sp` marks silence);
   - folds.json and cmu_mosei_std_folds.py (the SDK's fold file format);
   - labels_negative.csd (a negative intensity for vidC),
     labels_missing_intervals.csd (vidB has no `intervals`),
     covarep_mismatch.csd (vidD: 10 feature rows, 9 intervals).

Usage: ~/.cache/mmer/bench-venv/bin/python scripts/make_mosei_fixtures.py
Needs numpy and h5py. Output is deterministic for given numpy/h5py versions.
"""

import json
import pickle
import sys
from pathlib import Path

import h5py
import numpy as np

OUT = Path(__file__).resolve().parent.parent / "crates/mmer-data/tests/fixtures/mosei"


# -- MMSA pickles ---------------------------------------------------------------

def pad(rows, length, dim, dtype):
    """Zero-padded [length, dim] array with `rows` at the start."""
    out = np.zeros((length, dim), dtype=dtype)
    out[: len(rows)] = rows
    return out


def mmsa_split(ids, texts, t_len, a_len, v_len, emotions, dtype, seq=(6, 8, 5)):
    """One split: features valued `100*i + 10*t + k` (utterance, frame, column)."""
    n = len(ids)
    t_max, a_max, v_max = seq

    def seqs(lengths, t, dim, base):
        return np.stack([
            pad(np.array([[base + 100 * i + 10 * f + k for k in range(dim)] for f in range(lengths[i])]).reshape(-1, dim),
                t, dim, dtype)
            for i in range(n)
        ])

    text_bert = np.zeros((n, 3, t_max), dtype=dtype)
    for i in range(n):
        text_bert[i, 0, : t_len[i]] = 101 + np.arange(t_len[i])
        text_bert[i, 1, : t_len[i]] = 1
    split = {
        "id": np.array(ids),
        "raw_text": np.array(texts),
        "text": seqs(t_len, t_max, 4, 0),
        "text_bert": text_bert,
        "audio": seqs(a_len, a_max, 3, 1000),
        "vision": seqs(v_len, v_max, 2, 2000),
        "annotations": np.array(["Neutral"] * n),
        "regression_labels": np.array([0.5 * i - 1 for i in range(n)], dtype=dtype),
        "audio_lengths": np.array(a_len),
        "vision_lengths": np.array(v_len),
    }
    if emotions is not None:
        split["emotion_labels"] = np.array(emotions, dtype=dtype)
    return split


def unaligned():
    third = 1 / 3
    return {
        "train": mmsa_split(
            ["vidA$_$1", "vidA$_$2", "vidB$_$0"],
            ["it was fine", "really good", "so sad"],
            [6, 4, 3], [8, 5, 2], [5, 0, 3],
            [[1, third, 0, 0, 0, 0, 0], [2, 2, 0, 0, third, 0, 0], [-1, 0, 3 + third, 1, 0, 0, 2]],
            np.float64,
        ),
        "valid": mmsa_split(
            ["vidC$_$0"], ["hmm"], [2], [3], [1], [[0, 0, 0, 0, 0, 0, 0]], np.float64,
        ),
        "test": mmsa_split(
            ["vidD$_$0", "vidD$_$3"], ["no way", "fine then"], [5, 6], [8, 1], [4, 5],
            [[-2, 0, 0, 2, 0, 1, third], [0, 0, 0, 0, 0, 0, 0]],
            np.float64,
        ),
        "config": {"audio": {"tool": "librosa"}, "text": {"model": "bert"}},
    }


def aligned():
    splits = {}
    for name, ids, t_len in [
        ("train", ["vidA$_$1", "vidB$_$0"], [5, 3]),
        ("valid", ["vidC$_$0"], [4]),
        ("test", ["vidD$_$0"], [2]),
    ]:
        s = mmsa_split(ids, ["w"] * len(ids), t_len, t_len, t_len, None, np.float32, seq=(5, 5, 5))
        for key in ("audio_lengths", "vision_lengths"):
            s.pop(key)
        s["id"] = np.array(ids, dtype=object)
        s["raw_text"] = np.array(s["raw_text"].tolist(), dtype=object)
        s["regression_labels"] = s["regression_labels"].reshape(-1, 1)
        s["classification_labels"] = np.zeros(len(ids), dtype=np.float32)
        splits[name] = s
    splits["train"]["audio"][1, 1, 2] = -np.inf
    return splits


def write_pickle(name, obj, protocol):
    with open(OUT / name, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


# -- CMU-MultimodalSDK computational sequences ----------------------------------

def write_csd(name, root, data, dims, gzip=False, metadata=True):
    """As mmsdk's write_CSD: data/<entry>/{features,intervals}, metadata/<key>[0] = JSON."""
    with h5py.File(OUT / name, "w") as f:
        group = f.create_group(root).create_group("data")
        for entry, parts in data.items():
            e = group.create_group(entry)
            for key, value in parts.items():
                if gzip:
                    e.create_dataset(key, data=value, compression="gzip", compression_opts=9, chunks=value.shape)
                else:
                    e.create_dataset(key, data=value)
        if not metadata:
            return
        meta = f[root].create_group("metadata")
        # The SDK writes eleven keys (featuresetMetadataTemplate); two keep
        # the fixtures small, and the loader reads none of them.
        for key, value in {"root name": root, "dimension names": dims}.items():
            meta.create_dataset(key, (1,), dtype=h5py.special_dtype(vlen=str))
            meta[key][0] = json.dumps(value)


def iv(pairs):
    return np.array(pairs, dtype=np.float64)


THIRD = 1 / 3
LABELS = {
    # vidA: three segments, the third of zero length (the SDK skips those).
    "vidA": {"features": iv([[1, THIRD, 0, 0, 0, 0, 0], [2, 2, 0, 0, THIRD, 0, 0], [0, 1, 0, 0, 0, 0, 0]]),
             "intervals": iv([[0, 2], [2, 4], [5, 5]])},
    # vidB: segments listed out of time order; one intensity above 3.
    "vidB": {"features": iv([[-1, 0, 3 + THIRD, 1, 0, 0, 2], [0, 0, 0, 0, 0, 0, 0]]),
             "intervals": iv([[3, 4.5], [0.5, 2]])},
    "vidC": {"features": iv([[0, 0, 0, 0, 0, 2 * THIRD, 0]]), "intervals": iv([[1, 3]])},
    "vidD": {"features": iv([[-2, 0, 0, 2, 0, 1, THIRD]]), "intervals": iv([[0, 1]])},
    # vidX: in no fold.
    "vidX": {"features": iv([[0, 1, 0, 0, 0, 0, 0]]), "intervals": iv([[0, 1]])},
}
LABEL_DIMS = ["sentiment", "happy", "sad", "anger", "surprise", "disgust", "fear"]


def frames(video, n, step, dim, base):
    """n frames of `step` seconds from 0, valued base + 100*video + 10*frame + column."""
    return {
        "features": np.array([[base + 100 * video + 10 * t + k for k in range(dim)] for t in range(n)], dtype=np.float64),
        "intervals": iv([[t * step, (t + 1) * step] for t in range(n)]),
    }


def covarep():
    data = {v: frames(i, 10, 0.5, 3, 0) for i, v in enumerate(["vidA", "vidB", "vidC", "vidD"])}
    data["vidB"]["features"][7, 1] = np.nan  # [3.5, 4.0] lies in vidB's first segment
    return data


def facet_aligned():
    """As the SDK's align("All Labels") leaves a feature sequence: entries vid[i]."""
    data = {}
    for i, v in enumerate(["vidA", "vidB", "vidD"]):
        for k, (start, end) in enumerate(LABELS[v]["intervals"]):
            if end - start < 1e-5:
                continue
            n = 2 + k
            step = (end - start) / n
            data[f"{v}[{k}]"] = {
                "features": np.array([[5000 + 100 * i + 10 * k + t, -t] for t in range(n)], dtype=np.float64),
                "intervals": iv([[start + t * step, start + (t + 1) * step] for t in range(n)]),
            }
    return data


def words():
    text = {
        "vidA": ["sp", "it", "was", "fine", "sp", "really", "good", "sp"],
        "vidB": ["sp", "hmm", "sp", "so", "sad", "sp", "sp", "sp", "sp"],
        "vidC": ["sp", "okay", "then", "sp"],
        "vidD": ["no", "way"],
    }
    return {
        v: {
            "features": np.array([[w.encode()] for w in ws]),
            "intervals": iv([[t * 0.5, (t + 1) * 0.5] for t in range(len(ws))]),
        }
        for v, ws in text.items()
    }


FOLDS = {"train": ["vidA", "vidB"], "valid": ["vidC"], "test": ["vidD"]}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()

    write_pickle("mmsa_unaligned.pkl", unaligned(), 5)
    write_pickle("mmsa_aligned.pkl", aligned(), 4)
    broken = unaligned()
    del broken["valid"]["id"]
    write_pickle("mmsa_missing_key.pkl", broken, 4)
    broken = unaligned()
    broken["train"]["audio"] = broken["train"]["audio"][:2]
    write_pickle("mmsa_length_mismatch.pkl", broken, 4)
    broken = unaligned()
    broken["test"]["emotion_labels"][1, 4] = -1
    write_pickle("mmsa_bad_label.pkl", broken, 4)

    write_csd("labels.csd", "All Labels", LABELS, LABEL_DIMS)
    write_csd("covarep.csd", "COVAREP", covarep(), [f"c{k}" for k in range(3)], gzip=True)
    write_csd("facet_aligned.csd", "FACET 4.2", facet_aligned(), [], metadata=False)
    write_csd("words.csd", "words", words(), [], metadata=False)
    # The broken variants hold only the videos their test needs, and no metadata.
    negative = {"vidC": {k: v.copy() for k, v in LABELS["vidC"].items()}}
    negative["vidC"]["features"][0, 3] = -THIRD
    write_csd("labels_negative.csd", "All Labels", negative, LABEL_DIMS, metadata=False)
    no_intervals = {v: dict(LABELS[v]) for v in ["vidA", "vidB"]}
    del no_intervals["vidB"]["intervals"]
    write_csd("labels_missing_intervals.csd", "All Labels", no_intervals, LABEL_DIMS, metadata=False)
    mismatch = {"vidD": covarep()["vidD"]}
    mismatch["vidD"]["intervals"] = mismatch["vidD"]["intervals"][:9]
    write_csd("covarep_mismatch.csd", "COVAREP", mismatch, [], metadata=False)

    (OUT / "folds.json").write_text(json.dumps(FOLDS, indent=1) + "\n")
    (OUT / "cmu_mosei_std_folds.py").write_text(
        "".join(f"standard_{split}_fold={ids!r}\n" for split, ids in
                [("train", FOLDS["train"]), ("test", FOLDS["test"]), ("valid", FOLDS["valid"])])
    )
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total} bytes, to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
