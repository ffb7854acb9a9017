"""``mmer.Predictor``: a trained model predicting the emotion of every turn
of conversations given as a list of dicts or a pandas DataFrame."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Sequence, Union, overload

from mmer import _mmer, _records

if TYPE_CHECKING:
    import pandas

StrPath = Union[str, "os.PathLike[str]"]


class Predictor:
    """A trained mmer model, loaded once.

    ``Predictor.load`` reads a ``seed-<k>`` directory of a run (such as the
    shipped ``assets/models/text-meld-minilm``) and the text encoder it was
    trained with; ``predict`` gives every turn its emotion, as
    ``mmer predict`` does.
    """

    __slots__ = ("_native",)

    def __init__(self, native: _mmer.Predictor) -> None:
        """Wraps a native model; use :meth:`Predictor.load`."""
        self._native = native

    @classmethod
    def load(cls, path: StrPath, models_dir: StrPath | None = None) -> Predictor:
        """Loads the model in ``path`` (a ``seed-<k>`` directory; weights
        checked against their recorded SHA-256) and its text encoder from
        ``models_dir`` (default: ``$MMER_MODELS_DIR``, else ``./models``,
        where ``scripts/setup.sh`` installs them).

        Raises :class:`mmer.MmerError` naming the path when the directory or
        the encoder is missing or damaged.
        """
        return cls(_mmer.Predictor.load(path, models_dir))

    @property
    def classes(self) -> list[str]:
        """The classes, in the order of the model's outputs."""
        return self._native.classes

    @property
    def info(self) -> dict[str, Any]:
        """The model's metadata, as ``mmer serve`` answers ``GET /info``:
        ``model_dir``, ``model_sha256``, ``corpus``, ``seed``, ``labels``
        (``name``, ``classes``, ``multi_label``), ``text_encoder``,
        ``modalities``, ``version``."""
        info: dict[str, Any] = json.loads(self._native.info_json())
        return info

    @overload
    def predict(self, conversation: pandas.DataFrame) -> pandas.DataFrame: ...

    @overload
    def predict(self, conversation: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]: ...

    def predict(
        self, conversation: pandas.DataFrame | Sequence[Mapping[str, Any]]
    ) -> pandas.DataFrame | list[dict[str, Any]]:
        """The emotion of every turn of ``conversation``.

        ``conversation`` holds the records of a conversation file (see
        mmer's README, "Data formats"): ``dialogue``, ``turn``, ``speaker``,
        ``text``, and optionally ``label``, ``audio``, ``video``, ``start``,
        ``end`` — as a list of dicts, or a pandas DataFrame with those
        columns. A missing value (``None``, NaN) is a missing key.

        The answer has the input's structure and order:

        - a list of dicts: a new list, each record's dict with ``emotion``
          (the predicted class), ``confidence`` (its probability) and
          ``probabilities`` (class → probability) added;
        - a DataFrame: a copy with columns ``emotion``, ``confidence`` and
          ``p_<class>`` for every class (``p_anger``, …).

        The values are those ``mmer predict --format jsonl`` writes for the
        same turns.

        Raises :class:`TypeError` when ``conversation`` is neither, a record
        is not a dict, or a value is not one JSON can hold;
        :class:`mmer.MmerError` with mmer's message for anything else mmer
        refuses (a missing column or key, a turn that is not a
        non-negative integer, empty text, an unknown label, a turn given
        twice, …), naming the record or row by its index from 0.
        """
        if _records.is_frame(conversation):
            frame: pandas.DataFrame = conversation  # type: ignore[assignment]
            columns = [str(c) for c in frame.columns]
            _mmer.check_columns(columns, _records.FRAME_SOURCE)
            data = _records.encode(
                frame.itertuples(index=False, name=None), _records.FRAME_NOUN, keys=columns
            )
            predictions = self._predict(data, _records.FRAME_SOURCE, _records.FRAME_NOUN)
            return _records.frame_with_predictions(frame, predictions, self.classes)
        if isinstance(conversation, (list, tuple)):
            data = _records.encode(conversation, _records.LIST_NOUN)
            predictions = self._predict(data, _records.LIST_SOURCE, _records.LIST_NOUN)
            return _records.with_predictions(conversation, predictions)
        raise TypeError(
            "conversation must be a list of dicts or a pandas DataFrame, "
            f"not {type(conversation).__name__}"
        )

    def _predict(self, data: bytes, source: str, noun: str) -> list[dict[str, Any]]:
        predictions: list[dict[str, Any]] = json.loads(
            self._native.predict_jsonl(data, source, noun)
        )
        return predictions

    def __repr__(self) -> str:
        return repr(self._native)
