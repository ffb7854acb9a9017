#!/usr/bin/env python3
"""Build the known-text speech corpus for mmer's word-error-rate benchmark.

Two sources whose words are known:
  - the CREMA-D clips in ../shared/data/crema-d (actor 1001 saying
    "Don't forget a jacket" in six emotions; real speech, linked, not copied);
  - MELD test-set sentences spoken by espeak-ng (synthetic speech): a seeded
    sample of utterances with 4-30 words, alternating the en-us and en-gb
    voices, written as 16-bit WAV;
  - the same sentences joined into one long recording (meld/long.wav, 0.7 s
    of silence between them): several 30 s windows, as in a real
    conversation, for the window loop and the real-time factor.

Writes OUT/manifest.csv with columns file,text,source (file paths relative to
OUT or absolute for the CREMA-D clips). Deterministic for a given seed and
espeak-ng version (the version is printed and stored in OUT/corpus.json).

Usage: asr_corpus.py [--out DIR] [--meld-sentences N] [--seed S] [--shared DIR]
Needs: espeak-ng on PATH (Debian: apt-get install espeak-ng).
"""

import argparse
import csv
import json
import random
import shutil
import subprocess
import sys
import wave
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# MELD's CSVs use typographic quotes and dashes; espeak-ng reads ASCII best,
# and the reference text keeps the same characters the audio was made from.
REPLACE = {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2014": " - ", "\u2013": " - ", "\u2026": "..."}


def clean(text):
    for bad, good in REPLACE.items():
        text = text.replace(bad, good)
    return " ".join(text.split())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="target/asr-corpus")
    parser.add_argument("--meld-sentences", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shared", default=str(REPO.parent / "shared" / "data"))
    args = parser.parse_args()

    espeak = shutil.which("espeak-ng")
    if espeak is None:
        sys.exit("asr_corpus: espeak-ng not found (Debian: apt-get install espeak-ng)")
    version = subprocess.run([espeak, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    shared = Path(args.shared)
    out = Path(args.out)
    (out / "meld").mkdir(parents=True, exist_ok=True)
    rows = []

    crema = shared / "crema-d" / "labels.csv"
    if crema.is_file():
        with open(crema, newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                rows.append({"file": str((crema.parent / r["file"]).resolve()), "text": r["sentence"], "source": "crema-d"})
    else:
        print(f"asr_corpus: {crema} not found; CREMA-D clips left out", file=sys.stderr)

    meld = shared / "meld" / "test_sent_emo.csv"
    if not meld.is_file():
        sys.exit(f"asr_corpus: {meld} not found")
    with open(meld, newline="", encoding="utf-8") as f:
        candidates = []
        for r in csv.DictReader(f):
            text = clean(r["Utterance"])
            if 4 <= len(text.split()) <= 30 and text.isascii():
                candidates.append((r["Dialogue_ID"], r["Utterance_ID"], text))
    picked = random.Random(args.seed).sample(candidates, min(args.meld_sentences, len(candidates)))
    for i, (dia, utt, text) in enumerate(sorted(picked, key=lambda p: (int(p[0]), int(p[1])))):
        voice = "en-us" if i % 2 == 0 else "en-gb"
        name = f"meld/dia{dia}_utt{utt}_{voice}.wav"
        subprocess.run([espeak, "-v", voice, "-w", str(out / name), text], check=True)
        rows.append({"file": name, "text": text, "source": f"meld-espeak-{voice}"})

    meld_rows = [r for r in rows if r["source"].startswith("meld-")]
    with wave.open(str(out / "meld" / "long.wav"), "wb") as joined:
        for i, r in enumerate(meld_rows):
            with wave.open(str(out / r["file"]), "rb") as part:
                if i == 0:
                    joined.setparams(part.getparams())
                    silence = b"\0" * (part.getsampwidth() * int(0.7 * part.getframerate()))
                joined.writeframes(part.readframes(part.getnframes()) + silence)
    rows.append({"file": "meld/long.wav", "text": " ".join(r["text"] for r in meld_rows), "source": "meld-espeak-long"})

    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["file", "text", "source"])
        w.writeheader()
        w.writerows(rows)
    (out / "corpus.json").write_text(json.dumps({"espeak_ng": version, "seed": args.seed, "files": len(rows)}, indent=1) + "\n")
    print(f"asr_corpus: {len(rows)} files ({version}) in {out}/manifest.csv")


if __name__ == "__main__":
    main()
