"""mmer.analyze on the CREMA-D clip that ships with mmer, against
``mmer analyze --format jsonl``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

import mmer

from conftest import MINILM, MODELS_DIR, REPO, run_mmer

CLIP = REPO / "assets" / "examples" / "1001_DFA_ANG_XX.flv"
NEEDED = [
    MINILM,
    MODELS_DIR / "whisper-tiny.en",
    MODELS_DIR / "seetaface",
    MODELS_DIR / "fer-mini-xception",
]


@pytest.fixture(scope="module")
def analysis(monkeypatch_module: pytest.MonkeyPatch) -> dict[str, Any]:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.skip("ffmpeg/ffprobe not on PATH")
    missing = [str(p) for p in NEEDED if not p.exists()]
    if missing:
        pytest.skip(f"models not installed ({', '.join(missing)}; run scripts/setup.sh)")
    # The shipped models' default paths are relative to the repository.
    monkeypatch_module.chdir(REPO)
    return mmer.analyze(CLIP, models_dir=MODELS_DIR)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_analyze_reads_the_shipped_clip(analysis: dict[str, Any]) -> None:
    assert analysis["file"] == str(CLIP)
    assert analysis["duration_s"] == pytest.approx(2.3, abs=0.1)
    assert analysis["speakers"] == 1
    assert len(analysis["turns"]) == 1
    turn = analysis["turns"][0]
    assert "jacket" in turn["text"].lower()
    assert turn["emotion"] in turn["probabilities"]
    assert sum(turn["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert set(turn["evidence"]) >= {"text", "audio", "face", "keyframes", "faces"}
    assert set(analysis["seconds"]) >= {"decode_s", "asr_s", "text_s", "audio_s", "face_s"}


def test_analyze_answers_as_the_cli(analysis: dict[str, Any]) -> None:
    lines = run_mmer("analyze", "--format", "jsonl", str(CLIP)).splitlines()
    cli = [json.loads(line) for line in lines if line.strip()]
    assert len(cli) == len(analysis["turns"])
    for ours, theirs in zip(analysis["turns"], cli):
        assert theirs.pop("file") == str(CLIP)
        assert ours["text"] == theirs["text"]
        assert ours["speaker"] == theirs["speaker"]
        assert ours["emotion"] == theirs["emotion"]
        for name, p in theirs["probabilities"].items():
            assert ours["probabilities"][name] == pytest.approx(p, abs=1e-5)
        for modality in ("text", "audio", "face"):
            assert (ours["evidence"][modality] is None) == (theirs["evidence"][modality] is None)


def test_an_analyzer_loads_once_and_reads_recordings_again(
    analysis: dict[str, Any], tmp_path: Any
) -> None:
    analyzer = mmer.Analyzer.load(models_dir=MODELS_DIR)
    copy = tmp_path / "again.flv"
    shutil.copyfile(CLIP, copy)
    first, second = analyzer.analyze(CLIP), analyzer.analyze(copy)
    assert second["file"] == str(copy)
    for ours in (first, second):
        assert [t["text"] for t in ours["turns"]] == [t["text"] for t in analysis["turns"]]
        for a, b in zip(ours["turns"], analysis["turns"]):
            assert a["emotion"] == b["emotion"]
            for name, p in b["probabilities"].items():
                assert a["probabilities"][name] == pytest.approx(p, abs=1e-5)
    with pytest.raises(mmer.MmerError, match="missing.flv"):
        analyzer.analyze(tmp_path / "missing.flv")
