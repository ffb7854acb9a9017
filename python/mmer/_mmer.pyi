"""Type stubs of the native module ``mmer._mmer`` (the Rust crate in
``python/src``). Use the ``mmer`` package instead: its functions wrap these
and parse their JSON answers."""

import os
from pathlib import Path
from typing import Optional, Sequence, Union

_StrPath = Union[str, os.PathLike[str]]

__version__: str

class MmerError(ValueError):
    """An error mmer reports, with the message the mmer command line would
    print (naming the record, row or path at fault)."""

class Predictor:
    """A trained mmer model (``mmer.Predictor`` wraps it)."""

    @staticmethod
    def load(path: _StrPath, models_dir: Optional[_StrPath] = None) -> Predictor:
        """Loads a ``seed-<k>`` model directory and its text encoder from
        ``models_dir`` (default ``$MMER_MODELS_DIR``, else ``./models``)."""
    @property
    def classes(self) -> list[str]:
        """The classes, in output order."""
    @property
    def multi_label(self) -> bool:
        """Whether a turn may carry several classes."""
    @property
    def path(self) -> Path:
        """The model directory as given to ``load``."""
    def info_json(self) -> str:
        """The model's metadata as a JSON object."""
    def predict_jsonl(self, records: bytes, source: str, noun: str) -> str:
        """Predicts JSON Lines records (one per line); a JSON array of the
        ``mmer predict --format jsonl`` objects, one per record in order.
        ``source`` and ``noun`` name the records in error messages."""

def check_columns(columns: Sequence[str], source: str) -> None:
    """Raises ``MmerError`` unless ``columns`` pass mmer's conversation
    CSV header check."""

class Analyzer:
    """The shipped models, loaded once (``mmer.Analyzer`` wraps it)."""

    @staticmethod
    def load(
        *,
        speakers: Optional[int] = None,
        max_speakers: Optional[int] = None,
        face_speaker_weight: Optional[float] = None,
        asr_model: Optional[str] = None,
        temperature_fallback: bool = False,
        max_pause: Optional[float] = None,
        text_model: Optional[_StrPath] = None,
        audio_model: Optional[_StrPath] = None,
        face: bool = True,
        keyframes_per_second: Optional[float] = None,
        weights: Optional[Sequence[float]] = None,
        explain: bool = False,
        explain_samples: Optional[int] = None,
        seed: Optional[int] = None,
        models_dir: Optional[_StrPath] = None,
    ) -> Analyzer:
        """Loads the models the options (``mmer analyze``'s flags) name."""
    def analyze_json(self, path: _StrPath, *, transcript: Optional[_StrPath] = None) -> str:
        """Analyses one recording; the analysis as a JSON object."""
