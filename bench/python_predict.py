#!/usr/bin/env python3
"""Prediction through the Python package against the command line.

Predicts MELD's test dialogues, repeated under new ids until there are
``--dialogues`` (1,000) dialogues' worth of turns, with the shipped text
model (``assets/models/text-meld-minilm``) twice:

- ``python``: ``mmer.Predictor.load`` once, then ``predict`` on the list of
  dicts (and, timed apart, on the same turns as a pandas DataFrame);
- ``cli``: ``mmer predict --format jsonl`` on the same turns written as a
  JSON Lines file, the whole process timed; a one-turn run of the same
  command gives its fixed cost (process start, model load), which
  ``cli.predict_s`` leaves out.

Reports seconds per turn for each, the ratio Python / CLI, and whether the
two agree (same emotion for every turn, largest probability difference), as
JSON on stdout and in ``--out``. Needs the package installed
(``pip install ./python``), a release build of the command
(``cargo build --release --bin mmer``) and the MiniLM weights in ``./models``
(``scripts/setup.sh``). MELD's transcripts are read, never written to the
run directory.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def meld_turns(path: Path, dialogues: int) -> list[dict[str, Any]]:
    """MELD test turns as conversation records, the corpus repeated (ids
    ``r<k>_<Dialogue_ID>``) until there are ``dialogues`` dialogues."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    by_dialogue: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_dialogue.setdefault(row["Dialogue_ID"], []).append(row)
    ids = list(by_dialogue)
    records = []
    for n in range(dialogues):
        repeat, dialogue = divmod(n, len(ids))
        for row in by_dialogue[ids[dialogue]]:
            records.append(
                {
                    "dialogue": f"r{repeat}_{row['Dialogue_ID']}",
                    "turn": int(row["Utterance_ID"]),
                    "speaker": row["Speaker"],
                    "text": row["Utterance"],
                }
            )
    return records


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def run_cli(binary: Path, model: Path, records: list[dict[str, Any]], tmp: Path) -> tuple[float, list[dict[str, Any]]]:
    """Seconds of one ``mmer predict`` process on ``records``, and its answer."""
    path = tmp / f"turns-{len(records)}.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    started = time.perf_counter()
    done = subprocess.run(
        [str(binary), "predict", "--model", str(model), "--format", "jsonl", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{binary} predict failed:\n{done.stderr}")
    return seconds, [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/meld/test_sent_emo.csv")
    parser.add_argument("--model", type=Path, default=REPO / "assets/models/text-meld-minilm")
    parser.add_argument("--mmer", type=Path, default=REPO / "target/release/mmer", help="the mmer binary")
    parser.add_argument("--dialogues", type=int, default=1000)
    parser.add_argument("--no-frame", action="store_true", help="skip the DataFrame timing")
    parser.add_argument("--out", type=Path, help="also write the report here")
    args = parser.parse_args()

    import mmer

    records = meld_turns(args.data, args.dialogues)
    turns = len(records)

    started = time.perf_counter()
    predictor = mmer.Predictor.load(args.model)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    answer = predictor.predict(records)
    predict_s = time.perf_counter() - started
    frame_s = None
    if not args.no_frame:
        try:
            import pandas as pd
        except ImportError:
            pd = None
        if pd is not None:
            frame = pd.DataFrame(records)
            started = time.perf_counter()
            predictor.predict(frame)
            frame_s = time.perf_counter() - started

    with tempfile.TemporaryDirectory() as tmp:
        startup_s, _ = run_cli(args.mmer, args.model, records[:1], Path(tmp))
        cli_s, cli = run_cli(args.mmer, args.model, records, Path(tmp))

    by_turn = {(p["dialogue"], p["turn"]): p for p in cli}
    disagree, max_diff = 0, 0.0
    for ours in answer:
        theirs = by_turn[(ours["dialogue"], ours["turn"])]
        disagree += ours["emotion"] != theirs["emotion"]
        for name, p in theirs["probabilities"].items():
            max_diff = max(max_diff, abs(ours["probabilities"][name] - p))

    cli_predict_s = max(cli_s - startup_s, 1e-9)
    report = {
        "what": "MELD test dialogues repeated, predicted with assets/models/text-meld-minilm",
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "rayon_num_threads": os.environ.get("RAYON_NUM_THREADS"),
        "mmer_version": mmer.__version__,
        "python": platform.python_version(),
        "dialogues": args.dialogues,
        "turns": turns,
        "python_package": {
            "load_s": load_s,
            "predict_s": predict_s,
            "ms_per_turn": 1e3 * predict_s / turns,
            "dataframe_predict_s": frame_s,
            "dataframe_ms_per_turn": None if frame_s is None else 1e3 * frame_s / turns,
        },
        "cli": {
            "binary": str(args.mmer),
            "process_s": cli_s,
            "one_turn_process_s": startup_s,
            "predict_s": cli_predict_s,
            "ms_per_turn": 1e3 * cli_predict_s / turns,
            "ms_per_turn_whole_process": 1e3 * cli_s / turns,
        },
        "ratio_python_over_cli": predict_s / cli_predict_s,
        "ratio_python_load_and_predict_over_cli_process": (load_s + predict_s) / cli_s,
        "agreement": {"emotion_mismatches": disagree, "max_probability_difference": max_diff},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
