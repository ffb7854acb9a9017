#!/usr/bin/env python3
"""Regenerate crates/mmer-audio/tests/fixtures/egemaps_emodb.csv.

mmer-audio computes eGeMAPS-like utterance functionals in pure Rust. Its
parity test (crates/mmer-audio/tests/opensmile_parity.rs) checks that they
correlate across the 535 EmoDB clips with the openSMILE eGeMAPSv02
Functionals, which this script computes and stores.

openSMILE is licensed for non-commercial use only (DESIGN.md §5): it is a
test reference here, never a dependency. The script installs the `opensmile`
PyPI package into a throw-away virtual environment under /tmp (not the
repository) and re-runs itself there.

Only the eGeMAPS columns that have a counterpart in mmer-audio are kept,
rounded to 6 significant digits. Rows of labels.csv that are malformed or
blank are skipped with a note; clips are processed at their native rate
(EmoDB: 22.05 kHz), exactly as openSMILE would see them.

Usage, from the repository root:

    python3 scripts/opensmile_reference.py [--data ../shared/data/emodb]

With `--all --out FILE` it writes every functional of a feature set instead
(eGeMAPSv02: 88; ComParE_2016: 6,373) for the openSMILE reference rows of
`mmer bench emodb-loso --opensmile-csv FILE`; those tables are derived from
the dataset and stay out of the repository.
"""

import argparse
import csv
import os
import pathlib
import subprocess
import sys

VENV = pathlib.Path("/tmp/mmer-opensmile-venv")
OPENSMILE_VERSION = "2.6.0"
ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/mmer-audio/tests/fixtures/egemaps_emodb.csv"

# eGeMAPSv02 functionals with a counterpart in mmer-audio (see the mapping
# table in crates/mmer-audio/tests/opensmile_parity.rs).
COLUMNS = [
    "F0semitoneFrom27.5Hz_sma3nz_amean",
    "F0semitoneFrom27.5Hz_sma3nz_stddevNorm",
    "F0semitoneFrom27.5Hz_sma3nz_percentile20.0",
    "F0semitoneFrom27.5Hz_sma3nz_percentile50.0",
    "F0semitoneFrom27.5Hz_sma3nz_percentile80.0",
    "F0semitoneFrom27.5Hz_sma3nz_pctlrange0-2",
    "F0semitoneFrom27.5Hz_sma3nz_meanRisingSlope",
    "F0semitoneFrom27.5Hz_sma3nz_meanFallingSlope",
    "loudness_sma3_amean",
    "loudness_sma3_stddevNorm",
    "loudness_sma3_percentile20.0",
    "loudness_sma3_percentile50.0",
    "loudness_sma3_percentile80.0",
    "loudness_sma3_pctlrange0-2",
    "loudness_sma3_meanRisingSlope",
    "loudness_sma3_meanFallingSlope",
    "spectralFlux_sma3_amean",
    "mfcc1_sma3_amean",
    "mfcc2_sma3_amean",
    "mfcc3_sma3_amean",
    "mfcc4_sma3_amean",
    "jitterLocal_sma3nz_amean",
    "shimmerLocaldB_sma3nz_amean",
    "HNRdBACF_sma3nz_amean",
    "alphaRatioV_sma3nz_amean",
    "hammarbergIndexV_sma3nz_amean",
    "slopeV0-500_sma3nz_amean",
    "slopeV500-1500_sma3nz_amean",
    "loudnessPeaksPerSec",
    "VoicedSegmentsPerSec",
    "MeanVoicedSegmentLengthSec",
    "StddevVoicedSegmentLengthSec",
    "MeanUnvoicedSegmentLength",
    "StddevUnvoicedSegmentLength",
    "equivalentSoundLevel_dBp",
]


def ensure_venv():
    """Re-run this script inside a /tmp venv that has opensmile installed."""
    python = VENV / "bin" / "python"
    if pathlib.Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"opensmile=={OPENSMILE_VERSION}"],
            check=True,
        )
    os.execv(str(python), [str(python), *sys.argv])


def clip_ids(data):
    """Clip ids (file stems) from labels.csv, skipping malformed/blank rows."""
    ids = []
    with open(data / "labels.csv", newline="") as f:
        rows = csv.reader(f)
        header = next(rows)
        for line, row in enumerate(rows, start=2):
            if len(row) != len(header) or not all(c.strip() for c in row):
                print(f"labels.csv:{line}: skipping malformed row {row!r}", file=sys.stderr)
                continue
            name = row[0].strip()
            if not (data / "wav" / name).is_file():
                print(f"labels.csv:{line}: skipping {name}: no such wav", file=sys.stderr)
                continue
            ids.append(name)
    return ids


def sig6(x):
    return f"{float(x):.6g}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/emodb"))
    ap.add_argument("--all", action="store_true", help="every functional, not just the parity columns")
    ap.add_argument("--feature-set", choices=["eGeMAPSv02", "ComParE_2016"], default="eGeMAPSv02")
    ap.add_argument("--out", type=pathlib.Path, default=OUT)
    args = ap.parse_args()
    if args.out == OUT and (args.all or args.feature_set != "eGeMAPSv02"):
        sys.exit("--all and --feature-set write a full table: give --out outside the repository")
    ensure_venv()

    import opensmile  # noqa: E402 (only inside the venv)

    data = pathlib.Path(args.data)
    smile = opensmile.Smile(
        feature_set=getattr(opensmile.FeatureSet, args.feature_set),
        feature_level=opensmile.FeatureLevel.Functionals,
    )
    if args.all:
        columns = list(smile.feature_names)
    else:
        columns = COLUMNS
        missing = [c for c in COLUMNS if c not in smile.feature_names]
        if missing:
            sys.exit(f"opensmile {opensmile.__version__} lacks columns {missing}")

    names = clip_ids(data)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["clip", *columns])
        for name in names:
            df = smile.process_file(str(data / "wav" / name))
            row = df.iloc[0]
            w.writerow([pathlib.Path(name).stem, *(sig6(row[c]) for c in columns)])
    print(
        f"wrote {args.out}: {len(names)} clips x {len(columns)} columns "
        f"({args.feature_set}, opensmile {opensmile.__version__})",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
