#!/usr/bin/env python3
"""The throughput model of bench/scale_out.sh's run directory (issue 19).

Reads <run>/<corpus>.jobs1.time + .report.json (one process, --jobs 1) and
<run>/<corpus>.sim.timings.tsv (N shards at once vs one process --jobs 2),
fits the per-file cost a + b * duration (seconds of one core) on the short
and long video corpora, and prints a markdown summary; results.json holds
the same numbers. Standard library only.
"""

import argparse
import csv
import json
import pathlib

# MELD's mean turn (13,705 turns of ../shared/data/meld, EndTime - StartTime).
MELD_TURN_S = 3.13
TARGET_HOURS = 10_000
NODE_CORES = 32
WALL_HOURS = 24


def one_process(run, corpus):
    """Files, media seconds, wall and peak RSS of <corpus>.jobs1."""
    wall, rss_kib = (run / f"{corpus}.jobs1.time").read_text().split()[-2:]
    report = json.loads((run / f"{corpus}.jobs1.report.json").read_text())
    ok = [f for f in report["files"] if f["outcome"] == "ok"]
    return {
        "files": len(ok),
        "failed": report["failed"],
        "media_s": sum(f["duration_s"] or 0.0 for f in ok),
        "wall_s": float(wall),
        "peak_rss_mib": int(rss_kib) / 1024,
    }


def shards_vs_one(run, corpus):
    """The N-shard run and the --jobs 2 run of <corpus>.sim."""
    path = run / f"{corpus}.sim.timings.tsv"
    if not path.exists():
        return None
    rows = list(csv.DictReader(path.open(), delimiter="\t"))
    shards = [r for r in rows if r["step"] == "slurm-extract" and r["shard"] != "all"]
    whole = next(r for r in rows if r["step"] == "slurm-extract" and r["shard"] == "all")
    single = next(r for r in rows if r["step"] == "single")
    merge = next(r for r in rows if r["step"] == "slurm-merge")
    return {
        "shards": len(shards),
        "shards_wall_s": float(whole["wall_s"]),
        "shard_peak_rss_mib": max(int(r["peak_rss_kib"]) for r in shards) / 1024,
        "shards_rss_sum_mib": sum(int(r["peak_rss_kib"]) for r in shards) / 1024,
        "jobs2_wall_s": float(single["wall_s"]),
        "jobs2_peak_rss_mib": int(single["peak_rss_kib"]) / 1024,
        "merge_wall_s": float(merge["wall_s"]),
        "merge_peak_rss_mib": int(merge["peak_rss_kib"]) / 1024,
    }


def fit(short, long):
    """a (core-s per file) and b (core-s per media second) through both corpora."""
    n1, d1, w1 = short["files"], short["media_s"], short["wall_s"]
    n2, d2, w2 = long["files"], long["media_s"], long["wall_s"]
    det = n1 * d2 - n2 * d1
    a = (w1 * d2 - w2 * d1) / det
    b = (n1 * w2 - n2 * w1) / det
    return a, b


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run", type=pathlib.Path)
    parser.add_argument("--shards", type=int, default=8)
    args = parser.parse_args()
    run = args.run
    corpora = {c: one_process(run, c) for c in ("short", "long", "speech")}
    a, b = fit(corpora["short"], corpora["long"])
    speech = corpora["speech"]
    a_audio = speech["wall_s"] / speech["files"]
    results = {
        "one_process": corpora,
        "model": {
            "video_core_s_per_file": a,
            "video_core_s_per_media_s": b,
            "audio_core_s_per_file_mean": a_audio,
            "audio_core_s_per_media_s_mean": speech["wall_s"] / speech["media_s"],
        },
        "local": {c: shards_vs_one(run, c) for c in ("short", "speech")},
        "prediction": {},
    }
    lines = ["# Scale-out extraction: throughput model", ""]
    lines.append("## One process, --jobs 1 (one core)")
    lines.append("")
    lines.append("| corpus | files | media | wall | files per core-hour | media-hours per core-hour | peak RSS |")
    lines.append("|---|---|---|---|---|---|---|")
    for name, c in corpora.items():
        lines.append(
            f"| {name} | {c['files']} | {c['media_s'] / 60:.1f} min | {c['wall_s']:.1f} s "
            f"| {c['files'] * 3600 / c['wall_s']:,.0f} | {c['media_s'] / c['wall_s']:.1f} "
            f"| {c['peak_rss_mib']:.0f} MiB |"
        )
    lines.append("")
    lines.append(
        f"Video (Audio+Face+Body) cost per file = {a:.3f} core-s + {b:.4f} core-s per second "
        f"of media (fit through short and long). Audio only (EmoDB): {a_audio:.3f} core-s per "
        f"file of {speech['media_s'] / speech['files']:.2f} s mean."
    )
    lines.append("")
    lines.append(f"## {args.shards} shards at once (--jobs 1 each) vs one process --jobs 2, this machine")
    lines.append("")
    lines.append("| corpus | model: one-core wall / cores | N shards wall | one process --jobs 2 | peak RSS per shard | sum over shards | --jobs 2 RSS | merge |")
    lines.append("|---|---|---|---|---|---|---|---|")
    cores = 2
    for name, local in results["local"].items():
        if local is None:
            continue
        predicted = corpora[name]["wall_s"] / cores
        local["predicted_wall_s"] = predicted
        lines.append(
            f"| {name} | {predicted:.1f} s | {local['shards_wall_s']:.1f} s "
            f"({local['shards_wall_s'] / predicted:.2f}x the model) | {local['jobs2_wall_s']:.1f} s "
            f"| {local['shard_peak_rss_mib']:.0f} MiB | {local['shards_rss_sum_mib']:.0f} MiB "
            f"| {local['jobs2_peak_rss_mib']:.0f} MiB | {local['merge_wall_s']:.2f} s, "
            f"{local['merge_peak_rss_mib']:.0f} MiB |"
        )
    lines.append("")
    lines.append(f"## {TARGET_HOURS:,} hours of video")
    lines.append("")
    lines.append(f"| unit | files | core-hours | {NODE_CORES}-core nodes for {WALL_HOURS} h | wall on 10 such nodes |")
    lines.append("|---|---|---|---|---|")
    media_s = TARGET_HOURS * 3600
    for unit, seconds in ((f"MELD-length turns ({MELD_TURN_S} s)", MELD_TURN_S), ("30 s segments", 30.0)):
        files = media_s / seconds
        core_h = (files * a + media_s * b) / 3600
        nodes = core_h / (NODE_CORES * WALL_HOURS)
        wall10 = core_h / (NODE_CORES * 10)
        results["prediction"][unit] = {
            "files": files,
            "core_hours": core_h,
            "nodes_for_24h": nodes,
            "wall_h_on_10_nodes": wall10,
        }
        lines.append(
            f"| {unit} | {files:,.0f} | {core_h:,.0f} | {nodes:.1f} | {wall10:.0f} h |"
        )
    (run / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
