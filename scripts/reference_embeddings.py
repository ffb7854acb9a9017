#!/usr/bin/env python3
"""Write the sentence-transformers reference vectors that mmer-text' parity test checks.

Usage:  python3 scripts/reference_embeddings.py          (after scripts/setup.sh)

What it does:
  1. Creates a throw-away virtual environment outside the repository
     (MMER_ST_VENV, default /tmp/mmer-st-venv) and pip-installs torch and
     sentence-transformers into it from PyPI, then re-runs itself inside it.
     PyPI's Linux torch wheel is the CUDA build (about 3 GB with its nvidia-*
     dependencies); the CPU-only index is tried first and is used when reachable.
  2. Loads all-MiniLM-L6-v2 and all-mpnet-base-v2 from the local model
     directories that scripts/setup.sh installed ($MMER_MODELS_DIR or ./models),
     with the Hugging Face hub switched off.
  3. Embeds the fixed SENTENCES below with `SentenceTransformer.encode` on CPU
     (batch 32, normalised exactly as the models' modules.json says) and writes
     crates/mmer-text/tests/fixtures/st_reference.json: the sentences, each
     model's vectors rounded to 7 significant digits, token counts, library
     versions, and MPNet's relative-position bucket table from transformers.

Nothing here runs in CI: the fixture is committed and the Rust test reads it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("MMER_ST_VENV", "/tmp/mmer-st-venv"))
MODELS_DIR = Path(os.environ.get("MMER_MODELS_DIR", REPO / "models"))
OUT = REPO / "crates" / "mmer-text" / "tests" / "fixtures" / "st_reference.json"

# (directory under MMER_MODELS_DIR, fixture key = mmer EncoderKind in snake_case)
MODELS = [("all-minilm-l6-v2", "minilm"), ("all-mpnet-base-v2", "mpnet")]

_LONG_BASE = (
    "Joey and Chandler spent the whole afternoon arguing about whether the duck "
    "or the chick should get the last slice of pizza, while Monica kept cleaning "
    "the kitchen and Ross explained, for the third time, that they were on a break. "
)

SENTENCES = [
    "",  # empty: [CLS] [SEP] only
    "   \t \n ",  # whitespace only
    "!",  # single punctuation
    "?!",
    "Hey.",
    "Oh my God, he's lost it. He's totally lost it.",
    "also I was the point person on my company\u2019s transition from the KL-5 to GR-6 system.",
    # The same line mis-decoded as Latin-1 (UTF-8 bytes shown as \u00e2\u0080\u0099), as in some MELD copies.
    "also I was the point person on my company\u00e2\u0080\u0099s transition from the KL-5 to GR-6 system.",
    "You must\u0092ve had your hands full.\u00c2\u00a0Right?",
    "WHAT?! No way!!! Noooooooooooooooooooo!!!!!!",
    "Oh... okay... I guess that's fine.",
    "I love this! \U0001F60D\U0001F389\U0001F44D\U0001F3FD",
    "Caf\u00e9 na\u00efve fa\u00e7ade r\u00e9sum\u00e9 \u2014 d\u00e9j\u00e0 vu, \u00fcber-cool Stra\u00dfe.",
    "\u6211\u4eca\u5929\u5f88\u9ad8\u5174\u3002\u4f60\u5462\uff1f",  # Chinese
    "\u3053\u3093\u306b\u3061\u306f\u3001\u5143\u6c17\u3067\u3059\u304b\uff1f",  # Japanese
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043a\u0430\u043a \u0434\u0435\u043b\u0430?",  # Russian
    "zero\u200bwidth and\u00a0non-breaking\u2003spaces",
    "Line one\nline two\ttabbed\r\nline three",
    "The meeting is at 10:30 on 12/03/2024, room 221B, and it costs $1,234.56 (or 3.5e-7%).",
    "0 1 2 3 4 5 6 7 8 9 10 100 1000 1000000 3.14159 -42",
    "Email me at joey.tribbiani@example.com or visit https://example.com/path?q=1&x=2",
    "<pad> <mask> </s> [CLS] [SEP] [PAD] <s> tokens written out as text",
    "Mr. Geller, I'm sorry, but... your monkey is... on the loose!",
    _LONG_BASE * 6,  # > 256 word pieces: MiniLM truncates, MPNet does not
    _LONG_BASE * 10,  # > 384 word pieces: both truncate
]


def in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def bootstrap() -> None:
    """Create the venv, install the reference stack, re-run inside it."""
    py = VENV / "bin" / "python"
    if not py.exists():
        print(f"creating virtual environment {VENV}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = subprocess.run(
        [str(py), "-c", "import torch, sentence_transformers"], capture_output=True
    )
    if probe.returncode != 0:
        pip = [str(py), "-m", "pip", "install", "--quiet"]
        subprocess.run(pip + ["--upgrade", "pip"], check=True)
        cpu = subprocess.run(
            pip + ["--retries", "0", "--timeout", "15", "--index-url", "https://download.pytorch.org/whl/cpu", "torch"],
            capture_output=True,
            timeout=900,
        )
        if cpu.returncode != 0:
            print("CPU-only torch index not reachable; installing torch from PyPI", flush=True)
            subprocess.run(pip + ["torch"], check=True)
        subprocess.run(pip + ["sentence-transformers"], check=True)
    os.execv(str(py), [str(py), str(Path(__file__).resolve()), *sys.argv[1:]])


def sig7(x: float) -> float:
    return float(f"{x:.7g}")


def main() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer
    from transformers.models.mpnet.modeling_mpnet import MPNetEncoder

    torch.set_num_threads(2)
    fixture = {
        "generated_by": "scripts/reference_embeddings.py",
        "versions": {
            "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
        },
        "sentences": SENTENCES,
        "models": {},
    }
    for dirname, key in MODELS:
        path = MODELS_DIR / dirname
        if not (path / "model.safetensors").is_file():
            sys.exit(f"{path}/model.safetensors is missing: run scripts/setup.sh first")
        model = SentenceTransformer(str(path), device="cpu")
        model.eval()
        modules = [type(m).__name__ for m in model]
        if modules != ["Transformer", "Pooling", "Normalize"]:
            sys.exit(f"{dirname}: unexpected module stack {modules}")
        tokens = model.tokenize(SENTENCES)["attention_mask"].sum(dim=1).tolist()
        with torch.inference_mode():
            vectors = model.encode(
                SENTENCES, batch_size=32, convert_to_numpy=True, normalize_embeddings=False
            )
        untruncated = [
            len(model.tokenizer(s, add_special_tokens=True, truncation=False)["input_ids"])
            for s in SENTENCES
        ]
        print(
            f"{key}: {len(SENTENCES)} sentences, dim {vectors.shape[1]}, "
            f"max_seq_length {model.max_seq_length}, longest untruncated {max(untruncated)} tokens",
            flush=True,
        )
        fixture["models"][key] = {
            "directory": dirname,
            "max_seq_length": model.max_seq_length,
            "dim": int(vectors.shape[1]),
            "token_counts": [int(t) for t in tokens],
            "untruncated_token_counts": untruncated,
            "vectors": [[sig7(float(v)) for v in row] for row in vectors],
        }
    counts = fixture["models"]["minilm"]["untruncated_token_counts"]
    assert max(counts) > 384 and sorted(counts)[-2] > 256, counts

    rel = torch.arange(-400, 401, dtype=torch.long)
    buckets = MPNetEncoder.relative_position_bucket(rel, num_buckets=32, max_distance=128)
    fixture["mpnet_relative_position_buckets"] = {
        "relative_position_from": -400,
        "note": "bucket of relative_position = key_pos - query_pos, from transformers' MPNetEncoder.relative_position_bucket",
        "buckets": [int(b) for b in buckets.tolist()],
    }

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(fixture, ensure_ascii=True, separators=(",", ":")) + "\n")
    print(f"wrote {OUT.relative_to(REPO)} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    if in_venv():
        main()
    else:
        bootstrap()
