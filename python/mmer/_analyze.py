"""``mmer.Analyzer`` and ``mmer.analyze``: a recording's turns with their
emotion and its evidence, from the models that ship with mmer, as
``mmer analyze`` gives them."""

from __future__ import annotations

import json
import os
from typing import Any, Sequence, Union

from mmer import _mmer

StrPath = Union[str, "os.PathLike[str]"]


class Analyzer:
    """The models that ship with mmer (speech recognition, speakers, text,
    voice and face), loaded once by :meth:`load`; :meth:`analyze` then
    reads any number of recordings with them.

    ::

        analyzer = mmer.Analyzer.load(face=False)
        for path in ["call-1.wav", "call-2.wav"]:
            turns = analyzer.analyze(path)["turns"]
    """

    def __init__(self, native: _mmer.Analyzer) -> None:
        self._native = native

    @classmethod
    def load(
        cls,
        *,
        speakers: int | None = None,
        max_speakers: int | None = None,
        face_speaker_weight: float | None = None,
        asr_model: str | None = None,
        temperature_fallback: bool = False,
        max_pause: float | None = None,
        text_model: StrPath | None = None,
        audio_model: StrPath | None = None,
        face: bool = True,
        keyframes_per_second: float | None = None,
        weights: Sequence[float] | None = None,
        explain: bool = False,
        explain_samples: int | None = None,
        seed: int | None = None,
        models_dir: StrPath | None = None,
    ) -> Analyzer:
        """Loads the models.

        The options are the flags of ``mmer analyze`` (see
        ``mmer analyze --help``), in snake case; ``None`` keeps the
        command's default. ``face=False`` is ``--no-face``; ``weights`` is
        the text, audio and face fusion weights; ``models_dir`` defaults to
        ``$MMER_MODELS_DIR``, else ``./models``; ``text_model`` and
        ``audio_model`` default to the shipped models under
        ``assets/models/`` (relative to the working directory, as for the
        command).

        Raises :class:`mmer.MmerError` with mmer's message when a model is
        missing or an option is out of range.
        """
        return cls(
            _mmer.Analyzer.load(
                speakers=speakers,
                max_speakers=max_speakers,
                face_speaker_weight=face_speaker_weight,
                asr_model=asr_model,
                temperature_fallback=temperature_fallback,
                max_pause=max_pause,
                text_model=text_model,
                audio_model=audio_model,
                face=face,
                keyframes_per_second=keyframes_per_second,
                weights=None if weights is None else list(weights),
                explain=explain,
                explain_samples=explain_samples,
                seed=seed,
                models_dir=models_dir,
            )
        )

    def analyze(self, path: StrPath, *, transcript: StrPath | None = None) -> dict[str, Any]:
        """Analyses one recording (video or audio, any format ffmpeg reads).

        ``transcript`` is a conversation file (``mmer analyze
        --transcript``) whose turns are used instead of speech recognition
        and speaker clustering.

        Returns the analysis as a dict: ``file``, ``audio`` (the audio
        track's state), ``duration_s``, ``speakers``, ``turns`` and
        ``seconds`` (time per stage). Each turn has the fields of a line of
        ``mmer analyze --format jsonl`` (less ``file``): ``turn``,
        ``start_s``, ``end_s``, ``speaker``, ``text``, ``emotion``,
        ``confidence``, ``probabilities``, ``evidence`` and, with
        ``explain=True``, ``explanation``.

        Needs ffmpeg (``$MMER_FFMPEG``/``$MMER_FFPROBE`` or on ``PATH``).
        Raises :class:`mmer.MmerError` with mmer's message when the
        recording or the transcript cannot be read.
        """
        answer: dict[str, Any] = json.loads(
            self._native.analyze_json(path, transcript=transcript)
        )
        return answer


def analyze(path: StrPath, *, transcript: StrPath | None = None, **options: Any) -> dict[str, Any]:
    """Analyses one recording: ``Analyzer.load(**options).analyze(path,
    transcript=transcript)``, the options being those of
    :meth:`Analyzer.load` (the flags of ``mmer analyze``). It loads the
    models on every call; to read several recordings, load an
    :class:`Analyzer` once instead."""
    return Analyzer.load(**options).analyze(path, transcript=transcript)
