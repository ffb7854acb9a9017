"""Conversation records on their way to the native module and back.

A list of dicts, or a DataFrame's rows, is written as JSON Lines, one record
per line, for mmer's own conversation reader (``mmer_data::conversation``):
what a valid record is (keys, types, labels, turns) is its rule, and its
message names the record by index. This module only decides how Python
values become JSON:

- a missing value (``None``, NaN, pandas ``NA``/``NaT``) leaves the key out,
  as an empty cell of a conversation CSV file would;
- ``str``, ``bool``, integers, floats, lists and tuples (a label list),
  ``os.PathLike`` (media paths) and numpy scalars and arrays become JSON;
- anything else is a ``TypeError`` naming the record and the key.

Then it puts the predictions back into the caller's structure.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from mmer._mmer import MmerError

if TYPE_CHECKING:
    import pandas

#: What the native module calls a list of dicts and one of its records.
LIST_SOURCE, LIST_NOUN = "conversation", "record"
#: What it calls a DataFrame and one of its rows.
FRAME_SOURCE, FRAME_NOUN = "DataFrame", "row"

#: The fields a prediction adds to each record (those of
#: ``mmer predict --format jsonl`` of the same name).
PREDICTION_FIELDS = ("emotion", "confidence", "probabilities")


class _Missing:
    """A value that leaves its key out of the record."""


_MISSING = _Missing()


def is_frame(value: object) -> bool:
    """Whether ``value`` is a pandas DataFrame (without importing pandas)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)


def _plain(value: Any, where: str) -> Any:
    """``value`` as JSON can hold it, or ``_MISSING``."""
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        value = value.tolist()
    if value is None:
        return _MISSING
    if isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return _MISSING
        if math.isinf(number):
            raise MmerError(f"{where}: {number} is not a finite number")
        return number
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        items = [_plain(item, where) for item in value]
        return [None if item is _MISSING else item for item in items]
    if type(value).__name__ in ("NAType", "NaTType"):
        return _MISSING
    raise TypeError(
        f"{where}: a {type(value).__name__} cannot be a field of a conversation record "
        "(give a str, int, float, bool, path or a list of names)"
    )


def encode(records: Iterable[Any], noun: str, keys: Sequence[str] | None = None) -> bytes:
    """``records`` as UTF-8 JSON Lines, record ``i`` on line ``i + 1``.

    Each record is a mapping, or (with ``keys``) a row of values in the
    order of ``keys``.
    """
    lines = []
    for index, record in enumerate(records):
        if keys is not None:
            items: Iterable[tuple[Any, Any]] = zip(keys, record)
        elif isinstance(record, Mapping):
            items = record.items()
        else:
            raise TypeError(f"{noun} {index} is a {type(record).__name__}, not a dict")
        plain = {}
        for key, value in items:
            if not isinstance(key, str):
                raise TypeError(f"{noun} {index}: key {key!r} is a {type(key).__name__}, not a str")
            value = _plain(value, f"{noun} {index}, {key!r}")
            if value is not _MISSING:
                plain[key] = value
        lines.append(json.dumps(plain, ensure_ascii=False, allow_nan=False))
    # Lone surrogates stay invalid UTF-8, which mmer reports at their line.
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def with_predictions(
    records: Sequence[Mapping[str, Any]], predictions: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each record with the fields of its prediction added."""
    return [
        {**record, **{field: prediction[field] for field in PREDICTION_FIELDS}}
        for record, prediction in zip(records, predictions)
    ]


def frame_with_predictions(
    frame: pandas.DataFrame, predictions: list[dict[str, Any]], classes: Sequence[str]
) -> pandas.DataFrame:
    """A copy of ``frame`` with ``emotion``, ``confidence`` and one
    ``p_<class>`` column per class (as ``mmer predict --format csv``)."""
    out = frame.copy()
    out["emotion"] = [p["emotion"] for p in predictions]
    out["confidence"] = [p["confidence"] for p in predictions]
    for name in classes:
        out[f"p_{name}"] = [p["probabilities"][name] for p in predictions]
    return out
