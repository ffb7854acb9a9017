#!/usr/bin/env python3
"""PyTorch + sentence-transformers side of mmer's speed benchmark.

Does the same work as `mmer bench text` / `mmer bench train-epoch`, times only
that work (not imports or loading), and prints one JSON object on stdout.
`bench/run.sh` runs both sides back to back; see bench/README.md.

  text         sentence-transformers `encode` of the texts `mmer bench text
               --texts-out` wrote (same strings, same order), batch 32, from the
               local ./models/<dir> copy. Never touches a hub (HF_HUB_OFFLINE=1).
  train-epoch  one epoch of a PyTorch model with the architecture and sizes of
               mmer's ErcModel with ContextMode::DialogueSpeaker
               (crates/mmer-models/src/erc.rs, blocks/context.rs), on the MELD
               train embeddings from mmer's feature store, z-scored with the
               train mean/std as mmer's FeatureLayout does, batched in the
               dialogue order `mmer bench train-epoch --order-out` wrote.

Model, as in mmer:
  u = ReLU(Linear(d_in→256)(Dropout(0.3)(x)))
  d = Bi-LSTM(256→100 per direction) over each dialogue (packed sequences)
  s = Bi-LSTM(256→100 per direction) over each speaker's own turns, gathered
      from the padded grid and scattered back to their turns (packed)
  logits = Linear(256→7)(Dropout(0.3)(ReLU(Linear(656→256)([u; d; s]))))
  loss = focal, γ = 1, mean over labelled turns; Adam(lr 5e-4, weight_decay 2e-4).
Known difference: torch's LSTM has two bias vectors per gate (b_ih, b_hh), mmer's
cell one (800 extra parameters per direction; no effect on speed).

Usage:
  pytorch_reference.py text --encoder minilm --texts texts.json
  pytorch_reference.py train-epoch --store store --encoder-name all-MiniLM-L6-v2 \
      --meld-csv ../shared/data/meld/train_sent_emo.csv --order order.json
"""

import argparse
import csv
import json
import os
import platform
import re
import resource
import sys
import time
from pathlib import Path

# Offline, before any Hugging Face import reads them.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# Before torch starts its OpenMP pool: idle OpenMP threads sleep instead of
# spinning. With the default (spinning) policy on a machine where other jobs
# compete for the cores, a descheduled worker stalls every barrier; we measured
# single LSTM forward passes of 2-6 s instead of 20 ms (10-25x slower epochs).
# Spinning may be slightly faster on an idle machine: set OMP_WAIT_POLICY=ACTIVE
# to measure that.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ENCODER_DIRS = {"minilm": "all-minilm-l6-v2", "mpnet": "all-mpnet-base-v2"}
# mmer_core::LabelSpace::meld() order.
MELD_LABELS = ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"]
ID_PATTERN = re.compile(r"^train/dia(\d+)_utt(\d+)$")


def peak_rss_mib():
    """Peak resident set of this process (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def rss_mib():
    """Current resident set (VmRSS), MiB; None without procfs. Read, never
    reset: resetting VmHWM would also reset what /usr/bin/time reports."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def environment(torch, rss_before_work_mib=None):
    import numpy

    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__}
    try:
        import sentence_transformers
        import transformers

        versions["sentence_transformers"] = sentence_transformers.__version__
        versions["transformers"] = transformers.__version__
    except ImportError:
        pass
    return {
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "rss_before_work_mib": rss_before_work_mib,
        "peak_rss_mib": peak_rss_mib(),
        "versions": versions,
    }


def bench_text(args):
    import torch

    torch.set_num_threads(args.threads)
    from sentence_transformers import SentenceTransformer

    model_dir = Path(args.models_dir) / ENCODER_DIRS[args.encoder]
    if not (model_dir / "model.safetensors").exists():
        sys.exit(f"error: {model_dir} has no model.safetensors (run scripts/setup.sh)")
    model = SentenceTransformer(str(model_dir), device="cpu")
    texts = json.loads(Path(args.texts).read_text(encoding="utf-8"))
    if not texts:
        sys.exit(f"error: {args.texts} holds no texts")
    encoded = model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)
    tokens = sum(len(ids) for ids in encoded["input_ids"])
    if args.warmup > 0:
        model.encode(texts[: args.warmup], batch_size=args.batch_size, show_progress_bar=False)
    rss_before = rss_mib()
    started = time.perf_counter()
    vectors = model.encode(texts, batch_size=args.batch_size, show_progress_bar=False, convert_to_numpy=True)
    seconds = time.perf_counter() - started
    return {
        "workload": "text",
        "encoder": args.encoder,
        "texts": len(texts),
        "tokens": tokens,
        "batch_size": args.batch_size,
        "seconds": seconds,
        "texts_per_second": len(texts) / seconds,
        "tokens_per_second": tokens / seconds,
        "checksum": float(vectors.astype("float64").sum()),
        "environment": environment(torch, rss_before),
    }


def load_train_dialogues(args, np):
    """MELD train dialogues from mmer's feature store (embeddings, order) and
    the MELD CSV (speaker, emotion): list of (id, inputs[n, d], speakers[n], labels[n])."""
    from safetensors.numpy import load_file

    table = Path(args.store) / "meld" / args.encoder_name
    index = json.loads((table / "train.index.json").read_text(encoding="utf-8"))
    embeddings = load_file(str(table / "train.safetensors"))["embeddings"].astype(np.float32)
    if embeddings.shape[0] != len(index["ids"]):
        sys.exit(f"error: {table}: {embeddings.shape[0]} rows for {len(index['ids'])} ids")

    rows = {}
    with open(args.meld_csv, encoding="utf-8", errors="surrogateescape", newline="") as f:
        for record in csv.DictReader(f):
            key = (int(record["Dialogue_ID"]), int(record["Utterance_ID"]))
            rows[key] = (record["Speaker"], record["Emotion"].strip().lower())

    # z-score with the train statistics, as mmer's FeatureLayout::fit does.
    mean = embeddings.astype(np.float64).mean(axis=0)
    std = np.maximum(embeddings.astype(np.float64).std(axis=0), 1e-6)
    inputs = ((embeddings - mean) / std).astype(np.float32)

    dialogues, current = [], None
    for row, utterance_id in enumerate(index["ids"]):
        match = ID_PATTERN.match(utterance_id)
        if match is None:
            sys.exit(f"error: unexpected utterance id {utterance_id!r} in {table}")
        dia, utt = int(match.group(1)), int(match.group(2))
        if (dia, utt) not in rows:
            sys.exit(f"error: {utterance_id} is not in {args.meld_csv}")
        speaker, emotion = rows[(dia, utt)]
        if current is None or current["dia"] != dia:
            current = {"dia": dia, "rows": [], "speakers": [], "labels": [], "names": []}
            dialogues.append(current)
        if speaker not in current["names"]:
            current["names"].append(speaker)
        current["rows"].append(row)
        current["speakers"].append(current["names"].index(speaker))
        current["labels"].append(MELD_LABELS.index(emotion))
    return [
        (f"train/dia{d['dia']}", inputs[d["rows"]], d["speakers"], d["labels"])
        for d in dialogues
    ]


def speaker_index(speakers, turns, torch, np):
    """The gather/scatter index of the speaker stream for dialogues padded to
    `turns` (one list of speaker ids per dialogue) — what mmer's
    `SpeakerIndex::new` builds: each speaker's turns, in order, as a sequence."""
    sequences, position = [], [(0, 0)] * (len(speakers) * turns)
    for i, dialogue in enumerate(speakers):
        first = len(sequences)
        ids = []
        for t, speaker in enumerate(dialogue):
            if speaker not in ids:
                ids.append(speaker)
                sequences.append([])
            seq = first + ids.index(speaker)
            position[i * turns + t] = (seq, len(sequences[seq]))
            sequences[seq].append(i * turns + t)
    max_len = max(len(s) for s in sequences)
    pad_row = len(speakers) * turns
    gather = np.full(len(sequences) * max_len, pad_row, dtype=np.int64)
    for s, seq_rows in enumerate(sequences):
        gather[s * max_len : s * max_len + len(seq_rows)] = seq_rows
    scatter = np.array([s * max_len + k for s, k in position], dtype=np.int64)
    return {
        "gather": torch.from_numpy(gather),
        "scatter": torch.from_numpy(scatter),
        "speaker_lengths": torch.tensor([len(s) for s in sequences], dtype=torch.int64),
        "speaker_max_len": max_len,
    }


def make_batch(members, d_input, torch, np):
    """Pads dialogues into one batch plus the speaker gather/scatter index —
    the same tensors mmer's `make_batch` + `SpeakerIndex::new` build."""
    b = len(members)
    turns = max(len(m[2]) for m in members)
    features = np.zeros((b, turns, d_input), dtype=np.float32)
    rows, targets = [], []
    for i, (_, inputs, speakers, labels) in enumerate(members):
        features[i, : len(speakers)] = inputs
        for t, label in enumerate(labels):
            rows.append(i * turns + t)
            targets.append(label)
    return {
        "features": torch.from_numpy(features),
        "lengths": torch.tensor([len(m[2]) for m in members], dtype=torch.int64),
        "rows": torch.tensor(rows, dtype=torch.int64),
        "targets": torch.tensor(targets, dtype=torch.int64),
        **speaker_index([m[2] for m in members], turns, torch, np),
    }


def build_model(torch, d_input, num_classes, d_model=256, d_hidden=100, dropout=0.3):
    nn = torch.nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    def bilstm(lstm, x, lengths, total_length):
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=total_length)
        return out

    class ErcContextModel(nn.Module):
        """mmer's ErcModel with ContextMode::DialogueSpeaker."""

        def __init__(self):
            super().__init__()
            self.input_dropout = nn.Dropout(dropout)
            self.utterance = nn.Linear(d_input, d_model)
            self.dialogue = nn.LSTM(d_model, d_hidden, batch_first=True, bidirectional=True)
            self.speaker = nn.LSTM(d_model, d_hidden, batch_first=True, bidirectional=True)
            self.hidden = nn.Linear(d_model + 4 * d_hidden, d_model)
            self.hidden_dropout = nn.Dropout(dropout)
            self.output = nn.Linear(d_model, num_classes)

        def forward(self, batch):
            x = batch["features"]
            b, t, _ = x.shape
            u = torch.relu(self.utterance(self.input_dropout(x)))  # [b, t, d_model]
            dialogue_ctx = bilstm(self.dialogue, u, batch["lengths"], t)  # [b, t, 2h]
            flat = torch.cat([u.reshape(b * t, d_model), u.new_zeros(1, d_model)], 0)  # [b*t + 1, d_model]
            seqs, max_len = len(batch["speaker_lengths"]), batch["speaker_max_len"]
            speaker_in = flat.index_select(0, batch["gather"]).reshape(seqs, max_len, d_model)
            speaker_out = bilstm(self.speaker, speaker_in, batch["speaker_lengths"], max_len)  # [s, l, 2h]
            speaker_ctx = speaker_out.reshape(seqs * max_len, 2 * d_hidden).index_select(0, batch["scatter"])
            speaker_ctx = speaker_ctx.reshape(b, t, 2 * d_hidden)
            head_in = torch.cat([u, dialogue_ctx, speaker_ctx], 2)  # [b, t, d_model + 4h]
            hidden = self.hidden_dropout(torch.relu(self.hidden(head_in)))
            return self.output(hidden)  # [b, t, classes]

    return ErcContextModel()


def focal_loss(torch, logits, targets, gamma=1.0):
    log_p_t = torch.log_softmax(logits, 1).gather(1, targets.unsqueeze(1)).squeeze(1)
    modulator = (1.0 - log_p_t.exp()).clamp_min(0.0).pow(gamma)
    return -(modulator * log_p_t).mean()


def train_epochs(torch, model, optim, orders, batch_size, batch_of, gamma=1.0):
    """One timed pass per epoch order: batches of `batch_size` dialogue ids,
    built by `batch_of(ids)` (inside the timing, as mmer builds its batches),
    focal loss over the labelled turns — plus the model's own auxiliary loss
    when `model(batch)` returns (logits, auxiliary) rather than the logits
    (AM²-EmoJE's weighted NCE and imputation terms). Returns (epoch_seconds,
    epoch_loss)."""
    epoch_seconds, epoch_loss = [], []
    for order in orders:
        started = time.perf_counter()
        loss_sum, batches = 0.0, 0
        for start in range(0, len(order), batch_size):
            batch = batch_of(order[start : start + batch_size])
            if len(batch["rows"]) == 0:
                continue
            out = model(batch)
            logits, auxiliary = out if isinstance(out, tuple) else (out, 0.0)
            b, t, c = logits.shape
            rows = logits.reshape(b * t, c).index_select(0, batch["rows"])
            loss = focal_loss(torch, rows, batch["targets"], gamma) + auxiliary
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            loss_sum += loss.item()
            batches += 1
        epoch_seconds.append(time.perf_counter() - started)
        epoch_loss.append(loss_sum / max(batches, 1))
    return epoch_seconds, epoch_loss


def bench_train_epoch(args):
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    dialogues = load_train_dialogues(args, np)
    by_id = {d[0]: d for d in dialogues}
    if args.order:
        orders = json.loads(Path(args.order).read_text(encoding="utf-8"))
        if len(orders) < args.epochs:
            sys.exit(f"error: {args.order} has {len(orders)} epoch orders, --epochs is {args.epochs}")
        missing = [i for o in orders for i in o if i not in by_id]
        if missing:
            sys.exit(f"error: {args.order} names dialogues the store lacks, e.g. {missing[0]}")
    else:
        rng = np.random.default_rng(args.seed)
        orders = [[dialogues[i][0] for i in rng.permutation(len(dialogues))] for _ in range(args.epochs)]
    d_input = dialogues[0][1].shape[1]
    model = build_model(torch, d_input, len(MELD_LABELS))
    optim = torch.optim.Adam(model.parameters(), lr=5e-4, weight_decay=2e-4)
    model.train()
    utterances = sum(len(d[3]) for d in dialogues)

    rss_before = rss_mib()
    epoch_seconds, epoch_loss = train_epochs(
        torch,
        model,
        optim,
        orders[: args.epochs],
        args.batch_size,
        lambda ids: make_batch([by_id[i] for i in ids], d_input, torch, np),
    )
    seconds = sum(epoch_seconds)
    return {
        "workload": "train_epoch",
        "d_input": d_input,
        "dialogues": len(dialogues),
        "utterances": utterances,
        "batch_size": args.batch_size,
        "batches_per_epoch": -(-len(dialogues) // args.batch_size),
        "epochs": args.epochs,
        "seconds": seconds,
        "epoch_seconds": epoch_seconds,
        "epoch_loss": epoch_loss,
        "utterances_per_second": utterances * args.epochs / seconds,
        "parameters": sum(p.numel() for p in model.parameters()),
        "environment": environment(torch, rss_before),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="workload", required=True)

    text = sub.add_parser("text", help="sentence-transformers encode throughput")
    text.add_argument("--encoder", choices=sorted(ENCODER_DIRS), default="minilm")
    text.add_argument("--texts", required=True, help="JSON array of texts (mmer bench text --texts-out)")
    text.add_argument("--models-dir", default=os.environ.get("MMER_MODELS_DIR", "models"))
    text.add_argument("--batch-size", type=int, default=32)
    text.add_argument("--warmup", type=int, default=32, help="texts encoded before timing (not counted)")
    text.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")

    train = sub.add_parser("train-epoch", help="one training epoch of the context model")
    train.add_argument("--store", default="store", help="mmer feature store")
    train.add_argument("--encoder-name", default="all-MiniLM-L6-v2", help="encoder directory in the store")
    train.add_argument("--meld-csv", default="../shared/data/meld/train_sent_emo.csv")
    train.add_argument("--order", help="JSON epoch orders (mmer bench train-epoch --order-out)")
    train.add_argument("--epochs", type=int, default=1)
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")

    args = parser.parse_args()
    report = bench_text(args) if args.workload == "text" else bench_train_epoch(args)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
