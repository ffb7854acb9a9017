"""mmer.Predictor on lists of dicts and DataFrames: the CLI's answers, in
the caller's structure and order."""

from __future__ import annotations

import json
import threading
import time

import pytest

import mmer

from conftest import EXAMPLE, MODEL, records, run_mmer

TOLERANCE = 1e-5


def test_predicts_a_list_of_dicts_as_the_cli_does(predictor: mmer.Predictor) -> None:
    given = records()
    answer = predictor.predict(given)
    cli = [
        json.loads(line)
        for line in run_mmer(
            "predict", "--model", str(MODEL), "--format", "jsonl", str(EXAMPLE)
        ).splitlines()
    ]
    assert len(answer) == len(given) == len(cli)
    by_turn = {(p["dialogue"], p["turn"]): p for p in cli}
    for record, turn in zip(given, answer):
        expected = by_turn[(record["dialogue"], record["turn"])]
        assert turn["emotion"] == expected["emotion"]
        assert turn["confidence"] == pytest.approx(expected["confidence"], abs=TOLERANCE)
        assert list(turn["probabilities"]) == list(expected["probabilities"])
        for name, p in expected["probabilities"].items():
            assert turn["probabilities"][name] == pytest.approx(p, abs=TOLERANCE)


def test_answers_keep_the_records_order_and_fields(predictor: mmer.Predictor) -> None:
    given = records()
    shuffled = given[::-1]
    answer = predictor.predict(shuffled)
    in_order = {(t["dialogue"], t["turn"]): t for t in predictor.predict(given)}
    for record, turn in zip(shuffled, answer):
        assert {k: turn[k] for k in record} == record
        assert set(turn) == set(record) | {"emotion", "confidence", "probabilities"}
        same = in_order[(record["dialogue"], record["turn"])]
        assert turn["probabilities"] == same["probabilities"]
        assert turn["emotion"] in predictor.classes
        assert turn["confidence"] == max(turn["probabilities"].values())
        assert sum(turn["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert given == records(), "the input is not modified"


def test_numpy_values_paths_and_tuples_are_accepted(predictor: mmer.Predictor) -> None:
    np = pytest.importorskip("numpy")
    given = records()
    converted = [
        {**r, "turn": np.int64(r["turn"]), "label": None, "speaker": np.str_(r["speaker"])}
        for r in given
    ]
    plain = predictor.predict(given)
    answer = predictor.predict(tuple(converted))
    assert [t["probabilities"] for t in answer] == [t["probabilities"] for t in plain]


def test_predicts_a_dataframe_with_a_column_per_class(predictor: mmer.Predictor) -> None:
    pd = pytest.importorskip("pandas")
    given = records()
    frame = pd.DataFrame(given)
    before = frame.copy()
    out = predictor.predict(frame)
    assert isinstance(out, pd.DataFrame)
    pd.testing.assert_frame_equal(frame, before)
    assert list(out.columns) == list(frame.columns) + ["emotion", "confidence"] + [
        f"p_{c}" for c in predictor.classes
    ]
    pd.testing.assert_frame_equal(out[list(frame.columns)], frame)
    as_list = predictor.predict(given)
    for (_, row), turn in zip(out.iterrows(), as_list):
        assert row["emotion"] == turn["emotion"]
        assert row["confidence"] == turn["confidence"]
        for name, p in turn["probabilities"].items():
            assert row[f"p_{name}"] == p


def test_dataframe_missing_values_are_missing_keys(predictor: mmer.Predictor) -> None:
    pd = pytest.importorskip("pandas")
    given = records()
    given[2]["label"] = None
    frame = pd.DataFrame(given)
    frame.loc[3, "label"] = float("nan")
    out = predictor.predict(frame)
    assert len(out) == len(given)
    # With only the required columns, too.
    out = predictor.predict(frame[["dialogue", "turn", "speaker", "text"]])
    assert out["emotion"].isin(predictor.classes).all()


def test_classes_and_info(predictor: mmer.Predictor) -> None:
    info = predictor.info
    assert predictor.classes == [
        "neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"
    ]
    assert info["labels"]["classes"] == predictor.classes
    assert info["labels"]["multi_label"] is False
    assert info["corpus"] == "meld"
    assert info["text_encoder"] == "minilm"
    assert info["modalities"] == ["text"]
    assert isinstance(info["seed"], int)
    assert info["model_dir"] == str(MODEL)
    assert info["version"] == mmer.__version__
    assert "text-meld-minilm" in repr(predictor)


def test_prediction_releases_the_gil(predictor: mmer.Predictor) -> None:
    # Enough turns that the call takes a while; a Python thread must run
    # meanwhile.
    given = [
        {"dialogue": f"d{d}", "turn": t, "speaker": "AB"[t % 2], "text": f"Line {t} of talk {d}."}
        for d in range(20)
        for t in range(20)
    ]
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    thread = threading.Thread(target=count)
    thread.start()
    try:
        time.sleep(0.01)
        started, before = time.perf_counter(), ticks
        predictor.predict(given)
        elapsed, during = time.perf_counter() - started, ticks - before
    finally:
        stop.set()
        thread.join()
    assert elapsed > 0.05, "too quick to tell"
    assert during >= 10, f"{during} ticks in {elapsed:.2f} s: the GIL was held"
