#!/usr/bin/env python3
"""End-of-turn latency of `mmer serve --media`'s `/v1/stream` (issue 18),
against loopback only.

Starts the server (`mmer serve --media --model MODEL`), builds a stream of
turns from real speech (the CREMA-D clips in ../shared/data/crema-d, two
clips per turn, each trimmed of its leading and trailing silence, with a
0.15 s gap, so a turn is 3-5 s of speech; clips are added until a turn
reaches --turn-seconds; 1.2 s of silence between turns), sends it as 16 kHz s16le PCM in 100 ms messages paced in
real time, and times each turn's answer:

- from close: from the moment the client sent the audio that closed the
  turn (the stream time `closed_at_s` the server reports: the last speech
  plus the 600 ms pause) to the answer's arrival — what the server adds;
- from end of speech: from the sending of the turn's last speech to the
  answer (adds the pause the segmenter waits for);
- the server's own `latency_ms`.

It also records the server's early analyses (`mmer_stream_early_analyses_total`:
turns analysed from 200 ms into their pause, used as the answer or dropped
when speech resumed) and each turn's word error rate against the words
spoken, so that Whisper repeating itself shows.

--video FPS also sends each CREMA-D clip's video as frames (RGB, its own
size, FPS per second, on the audio's clock, each before the audio chunk it
falls in), so the server reads every turn's face too; the report gives
each turn's keyframes and faces found.

--speech picks the speech: `crema-d` (default; real speech, but every clip
is the sentence "Don't forget a jacket", which makes Whisper tiny.en repeat
itself) or `meld-espeak` (MELD test utterances in dialogue order, 4-30
words, spoken by espeak-ng with the en-us and en-gb voices in turn:
varied words, synthetic voice; needs espeak-ng).

Needs the `websockets` package (pip install websockets) and ffmpeg. Writes
JSON to --out.

    python3 bench/stream_latency.py --turns 20 --out bench/runs/stream-latency.json
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import websockets
from serve_load import stop, wait_healthy  # bench/ is on the path when run as a script

RATE = 16_000
CHUNK_S = 0.1


def decode(path: Path) -> bytes:
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(RATE), "-f", "s16le", "-"],
        check=True,
        capture_output=True,
    ).stdout


def trimmed(pcm: bytes, gate_db: float = -45.0) -> bytes:
    """`pcm` without its leading and trailing silence (20 ms frames under
    `gate_db` dBFS, the server's own gate), so that a gap between clips is
    the gap written here."""
    return trim(pcm, gate_db)[0]


def trim(pcm: bytes, gate_db: float = -45.0) -> tuple[bytes, float]:
    """`trimmed(pcm)` and the seconds cut from its start."""
    import array
    import math

    samples = array.array("h", pcm)
    frame = RATE // 50
    loud = []
    for start in range(0, len(samples) - frame + 1, frame):
        power = sum((v / 32768.0) ** 2 for v in samples[start : start + frame]) / frame
        loud.append(10 * math.log10(power + 1e-10) >= gate_db)
    if not any(loud):
        return pcm, 0.0
    first = loud.index(True)
    last = len(loud) - 1 - loud[::-1].index(True)
    return samples[first * frame : (last + 1) * frame].tobytes(), first * frame / RATE


def decode_frames(path: Path, fps: float) -> list[tuple[float, int, int, bytes]]:
    """The video of `path` at `fps` frames per second: (time in the clip,
    width, height, RGB bytes)."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height", "-of", "json", str(path)],
        check=True,
        capture_output=True,
    ).stdout
    stream = json.loads(probe)["streams"][0]
    width, height = stream["width"], stream["height"]
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-vf", f"fps={fps}", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        check=True,
        capture_output=True,
    ).stdout
    size = width * height * 3
    return [(i / fps, width, height, raw[i * size : (i + 1) * size]) for i in range(len(raw) // size)]


def meld_espeak(meld: Path, count: int) -> list[tuple[bytes, str]]:
    """The first `count` MELD test utterances of 4-30 ASCII words, in
    dialogue order, spoken by espeak-ng (en-us and en-gb in turn), as
    trimmed 16 kHz PCM with their text."""
    import csv
    import re

    out = []
    with meld.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            text = re.sub(r"\s+", " ", row["Utterance"].replace("\u2019", "'")).strip()
            if not (4 <= len(text.split()) <= 30 and text.isascii()):
                continue
            voice = "en-us" if len(out) % 2 == 0 else "en-gb"
            wav = subprocess.run(["espeak-ng", "-v", voice, "--stdout", text], check=True, capture_output=True).stdout
            pcm = subprocess.run(
                ["ffmpeg", "-v", "error", "-i", "-", "-ac", "1", "-ar", str(RATE), "-f", "s16le", "-"],
                input=wav,
                check=True,
                capture_output=True,
            ).stdout
            out.append((trimmed(pcm), text))
            if len(out) == count:
                break
    return out


def words(text: str) -> list[str]:
    import re

    return re.findall(r"[a-z0-9']+", text.lower())


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: edits (substitutions, insertions, deletions) over
    the reference's words."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[len(hyp)] / max(1, len(ref))


def silence(seconds: float) -> bytes:
    return bytes(2 * int(seconds * RATE))


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else None


def summary(values):
    return {
        "p50": round(percentile(values, 0.5), 1),
        "p90": round(percentile(values, 0.9), 1),
        "p99": round(percentile(values, 0.99), 1),
        "max": round(max(values), 1),
        "mean": round(statistics.mean(values), 1),
    }


async def stream(
    url: str, audio: bytes, speech_ends: list[float], spoken: list[str], frames: list[tuple[float, int, int, bytes]]
) -> list[dict]:
    sent_at: list[float] = []  # wall time each chunk was sent
    answers: list[dict] = []
    chunk = int(CHUNK_S * RATE) * 2
    async with websockets.connect(url, max_size=None) as socket:
        ready = json.loads(await socket.recv())
        assert ready["type"] == "ready", ready

        async def receive():
            async for message in socket:
                body = json.loads(message)
                body["_arrived"] = time.perf_counter()
                if body["type"] == "turn":
                    answers.append(body)
                elif body["type"] == "end":
                    return
                else:
                    raise RuntimeError(body)

        receiver = asyncio.create_task(receive())
        t0 = time.perf_counter()
        next_frame = 0
        for k, start in enumerate(range(0, len(audio), chunk)):
            # Real time: chunk k goes out when its audio has been "spoken".
            delay = t0 + (k + 1) * CHUNK_S - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            # The frames of this chunk's time, ahead of its audio.
            while next_frame < len(frames) and frames[next_frame][0] < (k + 1) * CHUNK_S:
                at, width, height, rgb = frames[next_frame]
                await socket.send(json.dumps({"type": "frame", "time_s": at, "width": width, "height": height}))
                await socket.send(rgb)
                next_frame += 1
            await socket.send(audio[start : start + chunk])
            sent_at.append(time.perf_counter())
        await socket.send(json.dumps({"type": "end"}))
        await receiver

    def sent(stream_s: float) -> float:
        """Wall time the chunk holding stream time `stream_s` was sent."""
        k = min(len(sent_at) - 1, max(0, int(stream_s / CHUNK_S - 1e-9)))
        return sent_at[k]

    rows = []
    for answer in answers:
        nearest = min(range(len(speech_ends)), key=lambda k: abs(speech_ends[k] - answer["end_s"]))
        speech_end = speech_ends[nearest]
        rows.append(
            {
                "turn": answer["turn"],
                "start_s": answer["start_s"],
                "end_s": answer["end_s"],
                "text": answer["text"],
                "spoken": spoken[nearest],
                "wer": wer(spoken[nearest], answer["text"]),
                "emotion": answer["emotion"],
                "keyframes": answer["evidence"]["keyframes"],
                "faces": answer["evidence"]["faces"],
                "closed_at_s": answer["closed_at_s"],
                "server_ms": answer["latency_ms"],
                "from_close_ms": 1000 * (answer["_arrived"] - sent(answer["closed_at_s"])),
                "from_speech_end_ms": 1000 * (answer["_arrived"] - sent(speech_end)),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mmer", default="target/release/mmer")
    parser.add_argument("--model", default="assets/models/text-meld-minilm")
    parser.add_argument("--clips", type=Path, default=Path("../shared/data/crema-d"))
    parser.add_argument("--port", type=int, default=18081)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--turn-seconds", type=float, default=4.5, help="each turn: clips until at least this long")
    parser.add_argument("--speech", choices=["crema-d", "meld-espeak"], default="crema-d")
    parser.add_argument("--meld", type=Path, default=Path("../shared/data/meld/test_sent_emo.csv"))
    parser.add_argument("--video", type=float, default=0.0, metavar="FPS", help="also send the clips' video frames (crema-d)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.video and args.speech != "crema-d":
        sys.exit("--video needs --speech crema-d (the espeak speech has no video)")

    if args.speech == "crema-d":
        clips = sorted(args.clips.glob("*.flv"))
        if not clips:
            sys.exit(f"no .flv clips in {args.clips}")
        decoded, clip_frames = [], []
        for c in clips:
            pcm, cut_s = trim(decode(c))
            decoded.append((pcm, "Don't forget a jacket."))
            # The frames inside the trimmed speech, timed from its start.
            video = decode_frames(c, args.video) if args.video else []
            length_s = len(pcm) / 2 / RATE
            clip_frames.append([(t - cut_s, w, h, rgb) for t, w, h, rgb in video if 0 <= t - cut_s <= length_s])
        sources = [c.name for c in clips]
    else:
        decoded = meld_espeak(args.meld, args.turns * 4)
        clip_frames = [[] for _ in decoded]
        sources = [text for _, text in decoded]
    frames = []
    audio = bytearray(silence(1.0))
    speech_ends = []
    durations = []
    spoken = []
    next_clip = 0
    for t in range(args.turns):
        turn = b""
        words = []
        while len(turn) / 2 / RATE < args.turn_seconds:
            if turn:
                turn += silence(0.15)
            pcm, text = decoded[next_clip % len(decoded)]
            at = (len(audio) + len(turn)) / 2 / RATE
            frames.extend((at + t, w, h, rgb) for t, w, h, rgb in clip_frames[next_clip % len(decoded)])
            turn += pcm
            words.append(text)
            next_clip += 1
        spoken.append(" ".join(words))
        audio += turn
        durations.append(len(turn) / 2 / RATE)
        speech_ends.append(len(audio) / 2 / RATE)
        audio += silence(1.2)

    log_path = args.out.with_suffix(".log") if args.out else Path(os.devnull)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [args.mmer, "serve", "--media", "--model", args.model, "--addr", f"127.0.0.1:{args.port}"],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            conn = wait_healthy(args.port, server, log_path)
            url = f"ws://127.0.0.1:{args.port}/v1/stream"
            rows = asyncio.run(stream(url, bytes(audio), speech_ends, spoken, frames))
            conn.request("GET", "/metrics")
            metrics = conn.getresponse().read().decode()
            early = {
                outcome: float(line.rsplit(" ", 1)[1])
                for line in metrics.splitlines()
                for outcome in ("used", "dropped")
                if line.startswith(f'mmer_stream_early_analyses_total{{outcome="{outcome}"}}')
            }
        finally:
            stop(server)

    report = {
        "model": args.model,
        "sources": sources,
        "turns_sent": args.turns,
        "turns_answered": len(rows),
        "turn_seconds": summary(durations) if durations else None,
        "stream_seconds": round(len(audio) / 2 / RATE, 1),
        "latency_ms": {
            "from_close": summary([r["from_close_ms"] for r in rows]),
            "server": summary([r["server_ms"] for r in rows]),
            "from_speech_end": summary([r["from_speech_end_ms"] for r in rows]),
        },
        "early_analyses": early,
        "speech": args.speech,
        "video_fps": args.video,
        "frames_sent": len(frames),
        "faces_per_turn": summary([r["faces"] for r in rows]) if rows else None,
        "wer": {
            "mean": round(statistics.mean(r["wer"] for r in rows), 3) if rows else None,
            "turns_over_0.5": sum(r["wer"] > 0.5 for r in rows),
        },
        "cpus": os.cpu_count(),
        "turns": rows,
    }
    print(json.dumps({k: v for k, v in report.items() if k != "turns"}, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
