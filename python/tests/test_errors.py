"""Bad input raises TypeError (wrong Python types) or mmer.MmerError (what
mmer refuses, with mmer's message, naming the record or row by index) and
never takes the interpreter down."""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import pytest

import mmer
from mmer import _mmer

from conftest import MODEL, MODELS_DIR, records


def test_mmer_error_is_a_value_error() -> None:
    assert issubclass(mmer.MmerError, ValueError)
    assert mmer.MmerError.__module__ == "mmer"


@pytest.mark.parametrize("conversation", ["text", b"bytes", {"dialogue": "d"}, 42, None, iter([])])
def test_a_conversation_that_is_neither_a_list_nor_a_dataframe(
    predictor: mmer.Predictor, conversation: Any
) -> None:
    with pytest.raises(TypeError, match="conversation must be a list of dicts or a pandas DataFrame"):
        predictor.predict(conversation)


def test_a_record_that_is_not_a_dict(predictor: mmer.Predictor) -> None:
    with pytest.raises(TypeError, match="^record 1 is a str, not a dict$"):
        predictor.predict([records()[0], "oops"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="^record 0 is a list, not a dict$"):
        predictor.predict([["d", 0, "A", "x"]])  # type: ignore[list-item]


def test_values_json_cannot_hold(predictor: mmer.Predictor) -> None:
    good = records()[0]
    with pytest.raises(TypeError, match=r"^record 1, 'text': a object cannot be a field"):
        predictor.predict([good, {**good, "turn": 1, "text": object()}])
    with pytest.raises(TypeError, match=r"^record 0, 'label': a set cannot be a field"):
        predictor.predict([{**good, "label": {"joy"}}])
    with pytest.raises(TypeError, match=r"^record 0: key 3 is a int, not a str$"):
        predictor.predict([{**good, 3: "x"}])  # type: ignore[dict-item,misc]


def test_an_infinite_time_is_refused(predictor: mmer.Predictor) -> None:
    good = records()[0]
    with pytest.raises(mmer.MmerError, match=r"^record 0, 'start': inf is not a finite number$"):
        predictor.predict([{**good, "video": "v.mp4", "start": math.inf, "end": 1.0}])


def error_of(predictor: mmer.Predictor, conversation: Any) -> str:
    with pytest.raises(mmer.MmerError) as caught:
        predictor.predict(conversation)
    return str(caught.value)


def one(**fields: Any) -> list[dict[str, Any]]:
    """A two-turn conversation whose second record has ``fields`` changed
    (a field set to ``...`` is left out)."""
    first = {"dialogue": "d", "turn": 0, "speaker": "A", "text": "Hi."}
    second = {"dialogue": "d", "turn": 1, "speaker": "B", "text": "Hello.", **fields}
    return [first, {k: v for k, v in second.items() if v is not ...}]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"turn": "one"}, 'record 1: dialogue "d" turn "one": invalid type: string "one", expected u64'),
        ({"turn": 1.5}, 'record 1: dialogue "d" turn 1.5: invalid type: floating point `1.5`, expected u64'),
        ({"turn": -1}, 'record 1: dialogue "d" turn -1: invalid value: integer `-1`, expected u64'),
        ({"turn": True}, 'record 1: dialogue "d" turn true: invalid type: boolean `true`, expected u64'),
        ({"text": float("nan")}, 'record 1: dialogue "d" turn 1: missing field `text`'),
        ({"text": None}, 'record 1: dialogue "d" turn 1: missing field `text`'),
        ({"speaker": ...}, 'record 1: dialogue "d" turn 1: missing field `speaker`'),
        ({"text": "  "}, "record 1: utterance d_utt1 has empty text"),
        ({"speaker": " "}, 'record 1: dialogue "d" turn 1: empty speaker'),
        ({"lable": "joy"}, 'record 1: dialogue "d" turn 1: unknown field `lable`, expected one of'),
        (
            {"label": "happy"},
            'record 1: utterance d_utt1: unknown label "happy" (known: neutral, surprise, fear, '
            "sadness, joy, disgust, anger)",
        ),
        ({"label": ["joy", "fear"]}, 'record 1: utterance d_utt1: label ["joy", "fear"] lists several classes'),
        ({"turn": 0}, "record 1: duplicate utterance d_utt0 (first seen in record 0)"),
        ({"start": 1.0, "end": 0.5, "audio": "a.wav"}, "record 1: d_utt1: start 1 s and end 0.5 s must satisfy"),
        ({"start": 1.0}, "record 1: d_utt1: give both start and end, or neither"),
        ({"text": "\ud800"}, "record 1: text is not valid UTF-8"),
    ],
)
def test_records_mmer_refuses(predictor: mmer.Predictor, fields: dict[str, Any], message: str) -> None:
    assert error_of(predictor, one(**fields)).startswith(message)


def test_an_empty_conversation(predictor: mmer.Predictor) -> None:
    assert error_of(predictor, []) == "conversation: no utterances"


def test_dataframe_columns_are_checked_as_a_csv_header(predictor: mmer.Predictor) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(records())
    assert error_of(predictor, frame.drop(columns=["speaker", "label"])) == (
        'DataFrame: missing column(s) ["speaker"] (header has ["dialogue", "turn", "text"])'
    )
    assert error_of(predictor, frame.assign(mood="x")) == (
        'DataFrame: unexpected column(s) ["mood"] (allowed: ["dialogue", "turn", "speaker", '
        '"text", "label", "audio", "video", "start", "end"])'
    )
    assert error_of(predictor, pd.DataFrame()) == "DataFrame: missing column(s) " + (
        '["dialogue", "turn", "speaker", "text"] (header has [])'
    )
    assert error_of(predictor, frame.iloc[:0]) == "DataFrame: no utterances"


def test_dataframe_rows_are_named_by_position(predictor: mmer.Predictor) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(records(), index=[f"r{i}" for i in range(8)])
    broken = frame.copy()
    broken.loc["r5", "text"] = float("nan")
    assert error_of(predictor, broken) == 'row 5: dialogue "flat_keys" turn 5: missing field `text`'
    broken = frame.copy()
    broken["turn"] = broken["turn"].astype(float)
    assert error_of(predictor, broken).startswith(
        'row 0: dialogue "flat_keys" turn 0.0: invalid type: floating point `0.0`, expected u64'
    )


def test_the_interpreter_survives_every_error(predictor: mmer.Predictor) -> None:
    for bad in (one(turn="x"), one(text=""), [], one(label="?")):
        with pytest.raises(mmer.MmerError):
            predictor.predict(bad)
    assert len(predictor.predict(records())) == 8


def test_a_missing_model_directory_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(mmer.MmerError, match=f"loading model {missing}") as caught:
        mmer.Predictor.load(missing, models_dir=MODELS_DIR)
    assert str(missing / "checkpoint.json") in str(caught.value)
    with pytest.raises(TypeError):
        mmer.Predictor.load(42)  # type: ignore[arg-type]


def test_a_damaged_checkpoint_is_named(tmp_path: Path) -> None:
    damaged = tmp_path / "seed-0"
    shutil.copytree(MODEL, damaged)
    weights = damaged / "model.bpk"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(mmer.MmerError) as caught:
        mmer.Predictor.load(damaged, models_dir=MODELS_DIR)
    assert str(damaged) in str(caught.value)
    (damaged / "checkpoint.json").write_text("{not json")
    with pytest.raises(mmer.MmerError) as caught:
        mmer.Predictor.load(damaged, models_dir=MODELS_DIR)
    assert str(damaged / "checkpoint.json") in str(caught.value)


def test_a_missing_encoder_is_named(tmp_path: Path) -> None:
    with pytest.raises(mmer.MmerError) as caught:
        mmer.Predictor.load(MODEL, models_dir=tmp_path)
    assert str(tmp_path) in str(caught.value)


def test_check_columns_alone() -> None:
    _mmer.check_columns(["text", "speaker", "turn", "dialogue", "label"], "DataFrame")
    with pytest.raises(mmer.MmerError, match=r'^t: unexpected column\(s\) \["text"\]'):
        _mmer.check_columns(["dialogue", "turn", "speaker", "text", "text"], "t")


def test_bad_analyze_options() -> None:
    with pytest.raises(mmer.MmerError, match=r'^asr_model "huge": expected one of tiny.en, base$'):
        mmer.analyze("x.wav", asr_model="huge")
    with pytest.raises(mmer.MmerError, match=r"^weights: give three numbers \(text, audio, face\), got 2$"):
        mmer.analyze("x.wav", weights=[0.5, 0.5])
    with pytest.raises(TypeError):
        mmer.analyze("x.wav", colour=True)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        mmer.analyze("x.wav", speakers="two")  # type: ignore[arg-type]
    with pytest.raises(mmer.MmerError, match=r'^asr_model "huge"'):
        mmer.Analyzer.load(asr_model="huge")
