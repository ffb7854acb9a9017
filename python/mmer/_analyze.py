"""``mmer.analyze``: a recording's turns with their emotion and its
evidence, from the models that ship with mmer, as ``mmer analyze`` gives
them."""

from __future__ import annotations

import json
import os
from typing import Any, Sequence, Union

from mmer import _mmer

StrPath = Union[str, "os.PathLike[str]"]


def analyze(
    path: StrPath,
    *,
    transcript: StrPath | None = None,
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
) -> dict[str, Any]:
    """Analyses one recording (video or audio, any format ffmpeg reads).

    The options are the flags of ``mmer analyze`` (see
    ``mmer analyze --help``), in snake case; ``None`` keeps the command's
    default. ``face=False`` is ``--no-face``; ``weights`` is the text, audio
    and face fusion weights; ``models_dir`` defaults to
    ``$MMER_MODELS_DIR``, else ``./models``; ``text_model`` and
    ``audio_model`` default to the shipped models under
    ``assets/models/`` (relative to the working directory, as for the
    command).

    Returns the analysis as a dict: ``file``, ``audio`` (the audio track's
    state), ``duration_s``, ``speakers``, ``turns`` and ``seconds`` (time
    per stage). Each turn has the fields of a line of
    ``mmer analyze --format jsonl`` (less ``file``): ``turn``, ``start_s``,
    ``end_s``, ``speaker``, ``text``, ``emotion``, ``confidence``,
    ``probabilities``, ``evidence`` and, with ``explain=True``,
    ``explanation``.

    Needs ffmpeg (``$MMER_FFMPEG``/``$MMER_FFPROBE`` or on ``PATH``) and the
    weights ``scripts/setup.sh`` installs. Raises :class:`mmer.MmerError`
    with mmer's message when a model is missing, the recording cannot be
    read, or an option is out of range.
    """
    answer: dict[str, Any] = json.loads(
        _mmer.analyze_json(
            path,
            transcript=transcript,
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
    return answer
