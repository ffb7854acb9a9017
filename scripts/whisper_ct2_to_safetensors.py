#!/usr/bin/env python3
"""Convert a CTranslate2 Whisper model (model.bin + config.json) to safetensors
with the tensor names of Hugging Face's WhisperForConditionalGeneration, which
is what candle-transformers' Whisper loads.

Used once by scripts/setup.sh; needs only numpy. The output is deterministic
(sorted names, fixed JSON layout), so setup.sh pins its sha256.

CTranslate2's format (binary version 6, as written by ctranslate2's
converters): u32 version, string spec name, u32 spec revision, u32 variable
count, then per variable: string name, u8 rank, u32 dims[rank], u8 dtype,
u32 byte count, the bytes; then u32 alias count and (name, target) string
pairs. A string is a u16 length (with its NUL) followed by the bytes.

CTranslate2 fuses attention projections: encoder/decoder self-attention
`linear_0` is [q; k; v], decoder cross-attention `linear_1` is [k; v]. Whisper's
key projection has no bias, so the fused bias's k part must be zero; a model
where it is not is refused rather than silently changed.

Usage: whisper_ct2_to_safetensors.py CT2_DIR OUT_DIR
  writes OUT_DIR/model.safetensors and OUT_DIR/config.json (the Hugging Face
  config fields candle reads, plus the suppress lists from CT2_DIR/config.json).
"""

import json
import re
import struct
import sys
from pathlib import Path

import numpy as np

DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
SAFETENSORS_DTYPE = {np.dtype(np.float16): "F16", np.dtype(np.float32): "F32"}


def fail(msg):
    sys.exit(f"whisper_ct2_to_safetensors: {msg}")


def read_ct2(path):
    data = path.read_bytes()
    pos = 0

    def take(fmt):
        nonlocal pos
        (value,) = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return value

    def string():
        nonlocal pos
        n = take("<H")
        if n == 0 or data[pos + n - 1] != 0:
            fail(f"{path}: malformed string at byte {pos}")
        s = data[pos : pos + n - 1].decode("utf-8")
        pos += n
        return s

    version = take("<I")
    if version != 6:
        fail(f"{path}: binary version {version}, this converter reads version 6")
    spec = string()
    if spec != "WhisperSpec":
        fail(f"{path}: spec {spec!r}, expected 'WhisperSpec'")
    take("<I")  # spec revision
    variables = {}
    for _ in range(take("<I")):
        name = string()
        rank = take("<B")
        dims = [take("<I") for _ in range(rank)]
        dtype = take("<B")
        nbytes = take("<I")
        if dtype not in DTYPES:
            fail(f"{path}: variable {name} has unsupported dtype id {dtype}")
        if pos + nbytes > len(data):
            fail(f"{path}: variable {name} runs past the end of the file (truncated?)")
        array = np.frombuffer(data, dtype=DTYPES[dtype], count=nbytes // np.dtype(DTYPES[dtype]).itemsize, offset=pos)
        variables[name] = array.reshape(dims)
        pos += nbytes
    for _ in range(take("<I")):
        string(), string()  # aliases: the tied output projection
    if pos != len(data):
        fail(f"{path}: {len(data) - pos} trailing bytes after the aliases")
    return variables


def scalar(variables, name):
    return int(variables[name].reshape(()))


def convert(v):
    out = {}

    def put(name, array):
        out[name] = np.ascontiguousarray(array)

    def split(fused, parts, what):
        if fused.shape[0] % parts:
            fail(f"{what}: fused size {fused.shape[0]} is not divisible by {parts}")
        return np.split(fused, parts, axis=0)

    def attention(src, dst, cross):
        if cross:
            put(f"{dst}.q_proj.weight", v[f"{src}/linear_0/weight"])
            put(f"{dst}.q_proj.bias", v[f"{src}/linear_0/bias"])
            k, val = split(v[f"{src}/linear_1/weight"], 2, src)
            kb, vb = split(v[f"{src}/linear_1/bias"], 2, src)
            out_src = f"{src}/linear_2"
        else:
            q, k, val = split(v[f"{src}/linear_0/weight"], 3, src)
            qb, kb, vb = split(v[f"{src}/linear_0/bias"], 3, src)
            put(f"{dst}.q_proj.weight", q)
            put(f"{dst}.q_proj.bias", qb)
            out_src = f"{src}/linear_1"
        if np.any(kb != 0):
            fail(f"{src}: the key projection has a non-zero bias; Whisper's has none")
        put(f"{dst}.k_proj.weight", k)
        put(f"{dst}.v_proj.weight", val)
        put(f"{dst}.v_proj.bias", vb)
        put(f"{dst}.out_proj.weight", v[f"{out_src}/weight"])
        put(f"{dst}.out_proj.bias", v[f"{out_src}/bias"])

    def norm(src, dst):
        put(f"{dst}.weight", v[f"{src}/gamma"])
        put(f"{dst}.bias", v[f"{src}/beta"])

    def linear(src, dst):
        put(f"{dst}.weight", v[f"{src}/weight"])
        put(f"{dst}.bias", v[f"{src}/bias"])

    def layers(prefix):
        found = {int(m.group(1)) for k in v if (m := re.match(rf"{prefix}/layer_(\d+)/", k))}
        if found != set(range(len(found))):
            fail(f"{prefix}: layer indices {sorted(found)} are not 0..n-1")
        return len(found)

    # What candle's Whisper implements: pre-norm blocks, GELU, learned decoder
    # positions added to unscaled embeddings. Refuse anything else.
    expect = {
        "decoder/pre_norm": 1,
        "decoder/scale_embeddings": 0,
        "decoder/alibi": 0,
        "decoder/start_from_zero_embedding": 0,
    }
    for name, want in expect.items():
        if name in v and scalar(v, name) != want:
            fail(f"{name} = {scalar(v, name)}, candle's Whisper needs {want}")

    enc_layers = layers("encoder")
    dec_layers = layers("decoder")
    e = "model.encoder"
    for conv in ("conv1", "conv2"):
        linear(f"encoder/{conv}", f"{e}.{conv}")
    put(f"{e}.embed_positions.weight", v["encoder/position_encodings/encodings"])
    for i in range(enc_layers):
        s, d = f"encoder/layer_{i}", f"{e}.layers.{i}"
        attention(f"{s}/self_attention", f"{d}.self_attn", cross=False)
        norm(f"{s}/self_attention/layer_norm", f"{d}.self_attn_layer_norm")
        norm(f"{s}/ffn/layer_norm", f"{d}.final_layer_norm")
        linear(f"{s}/ffn/linear_0", f"{d}.fc1")
        linear(f"{s}/ffn/linear_1", f"{d}.fc2")
    norm("encoder/layer_norm", f"{e}.layer_norm")

    dd = "model.decoder"
    put(f"{dd}.embed_tokens.weight", v["decoder/embeddings/weight"])
    put(f"{dd}.embed_positions.weight", v["decoder/position_encodings/encodings"])
    for i in range(dec_layers):
        s, d = f"decoder/layer_{i}", f"{dd}.layers.{i}"
        attention(f"{s}/self_attention", f"{d}.self_attn", cross=False)
        norm(f"{s}/self_attention/layer_norm", f"{d}.self_attn_layer_norm")
        attention(f"{s}/attention", f"{d}.encoder_attn", cross=True)
        norm(f"{s}/attention/layer_norm", f"{d}.encoder_attn_layer_norm")
        norm(f"{s}/ffn/layer_norm", f"{d}.final_layer_norm")
        linear(f"{s}/ffn/linear_0", f"{d}.fc1")
        linear(f"{s}/ffn/linear_1", f"{d}.fc2")
    norm("decoder/layer_norm", f"{dd}.layer_norm")

    vocab, d_model = v["decoder/embeddings/weight"].shape
    config = {
        "model_type": "whisper",
        "architectures": ["WhisperForConditionalGeneration"],
        "d_model": int(d_model),
        "encoder_layers": enc_layers,
        "decoder_layers": dec_layers,
        "encoder_attention_heads": scalar(v, "encoder/num_heads"),
        "decoder_attention_heads": scalar(v, "decoder/num_heads"),
        "encoder_ffn_dim": int(v["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "decoder_ffn_dim": int(v["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        "num_mel_bins": int(v["encoder/conv1/weight"].shape[1]),
        "max_source_positions": int(v["encoder/position_encodings/encodings"].shape[0]),
        "max_target_positions": int(v["decoder/position_encodings/encodings"].shape[0]),
        "vocab_size": int(vocab),
        "tie_word_embeddings": True,
    }
    return out, config


def write_safetensors(tensors, path):
    header = {}
    offset = 0
    for name in sorted(tensors):
        a = tensors[name]
        if a.dtype not in SAFETENSORS_DTYPE:
            fail(f"{name}: dtype {a.dtype} has no safetensors mapping here")
        header[name] = {
            "dtype": SAFETENSORS_DTYPE[a.dtype],
            "shape": list(a.shape),
            "data_offsets": [offset, offset + a.nbytes],
        }
        offset += a.nbytes
    blob = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    blob += b" " * (-len(blob) % 8)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for name in sorted(tensors):
            f.write(tensors[name].astype(tensors[name].dtype.newbyteorder("<"), copy=False).tobytes())
    tmp.rename(path)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    variables = read_ct2(src / "model.bin")
    tensors, config = convert(variables)
    ct2_config = json.loads((src / "config.json").read_text())
    config["suppress_tokens"] = ct2_config["suppress_ids"]
    config["begin_suppress_tokens"] = ct2_config["suppress_ids_begin"]
    config["alignment_heads"] = ct2_config.get("alignment_heads", [])
    config["lang_ids"] = ct2_config.get("lang_ids", [])
    dst.mkdir(parents=True, exist_ok=True)
    write_safetensors(tensors, dst / "model.safetensors")
    (dst / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    print(f"converted {len(tensors)} tensors ({config['encoder_layers']}+{config['decoder_layers']} layers, "
          f"d_model {config['d_model']}) into {dst}")


if __name__ == "__main__":
    main()
