"""Shared fixtures of the mmer Python package's tests.

Tests that need the shipped text model's MiniLM encoder skip when
``models/`` (or ``$MMER_MODELS_DIR``) lacks its weights (``scripts/setup.sh``
installs them); those comparing with the command line skip when no
``mmer`` binary is built (``target/release/mmer`` or ``target/debug/mmer``,
the newer one, or ``$MMER_BIN``).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

import mmer

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "assets" / "models" / "text-meld-minilm"
EXAMPLE = REPO / "docs" / "examples" / "conversation.jsonl"
MODELS_DIR = Path(os.environ.get("MMER_MODELS_DIR") or REPO / "models")
MINILM = MODELS_DIR / "all-minilm-l6-v2" / "model.safetensors"


def records() -> list[dict[str, Any]]:
    """The example conversation of docs/examples, as a list of dicts."""
    return [json.loads(line) for line in EXAMPLE.read_text().splitlines() if line.strip()]


def mmer_binary() -> Path | None:
    """The built ``mmer`` command, if any: ``$MMER_BIN``, else the newer of
    the release and debug builds."""
    given = os.environ.get("MMER_BIN")
    if given:
        return Path(given)
    built = [
        path
        for path in (REPO / "target" / "release" / "mmer", REPO / "target" / "debug" / "mmer")
        if path.is_file() and os.access(path, os.X_OK)
    ]
    return max(built, key=lambda path: path.stat().st_mtime, default=None)


def run_mmer(*args: str) -> str:
    """Runs the ``mmer`` command (skipping the test without one); its stdout."""
    binary = mmer_binary()
    if binary is None:
        pytest.skip("no mmer binary built (target/release/mmer or target/debug/mmer)")
    done = subprocess.run(
        [str(binary), *args],
        cwd=REPO,
        env={**os.environ, "MMER_MODELS_DIR": str(MODELS_DIR)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="session")
def predictor() -> mmer.Predictor:
    """The shipped MELD text model."""
    if not MINILM.is_file():
        pytest.skip(f"MiniLM weights not installed ({MINILM} missing; run scripts/setup.sh)")
    return mmer.Predictor.load(MODEL, models_dir=MODELS_DIR)
