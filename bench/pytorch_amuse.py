#!/usr/bin/env python3
"""PyTorch side of mmer's AMuSE training-speed benchmark (issue 5).

Trains the same AMuSE model as `mmer bench train-epoch --config
docs/configs/synthetic-amuse.toml` on the same numbers, in the same batch
order, times only the epochs, and prints one JSON object on stdout.
`bench/run.sh --workloads train-amuse` runs both sides back to back.

Input: the directory `mmer bench train-epoch --export DIR` wrote —
train.safetensors (z-scored frames per modality and frames per utterance) and
train.json (modalities, model settings, dialogues with speakers and labels) —
and the epoch orders of `--order-out`.

Model (crates/mmer-models/src/multimodal/, same sizes, read from train.json):
  per modality  x = LayerNorm(P f + BiLSTM(P f)) + time code   (encoder.rs;
                nn.LSTM over packed sequences, d/2 per direction)
  MAN           per central modality, `man_layers` layers of: masked
                self-attention → LN; Σ_p σ(θ_p)/(M−1) · cross-attention to each
                peripheral (key padding masked) → LN; GELU FFN (2d) → LN
                (attention.rs; nn.MultiheadAttention)
  pooling       mean over each utterance's real frames
  AF            ⊕_m mean_{m'≠m} [α ⊙ f_m' + (1−α) ⊙ f_m], α = σ(θ) per pair and
                dimension (adaptive.rs)
  context/head  mmer's ErcModel: dropout → Linear → ReLU; dialogue and speaker
                Bi-LSTMs (packed) → context dropout; Linear → ReLU → dropout → Linear
  loss          focal γ from train.json, mean over labelled turns; Adam with
                mmer's lr, L2 weight decay and ε = 1e-5 (burn's default)
Known difference: torch's LSTM has two bias vectors per gate (b_ih, b_hh),
mmer's cell one, so torch counts 4·h more parameters per LSTM direction.

Usage:
  pytorch_amuse.py --export DIR --order order.json [--epochs 1] [--threads 2]
"""

import argparse
import json
import math
import sys
from pathlib import Path

# Sets OMP_WAIT_POLICY before torch loads (see pytorch_reference.py).
from pytorch_reference import environment, rss_mib, speaker_index, train_epochs


def load_export(directory, np):
    """(settings, dialogues): each dialogue is (id, speakers, labels,
    [per utterance: [per modality: frames array]])."""
    from safetensors.numpy import load_file

    directory = Path(directory)
    settings = json.loads((directory / "train.json").read_text(encoding="utf-8"))
    if not settings["sequences"]:
        sys.exit(f"error: {directory} holds pooled inputs; this benchmark trains the sequence fusions")
    tensors = load_file(str(directory / "train.safetensors"))
    per_modality = []
    for name, width in settings["modalities"]:
        frames, lengths = tensors[f"frames.{name}"], tensors[f"lengths.{name}"]
        if frames.shape[1] != width or lengths.sum() != frames.shape[0]:
            sys.exit(f"error: {directory}: frames.{name} {frames.shape} does not match its lengths/width")
        if (lengths == 0).any():
            sys.exit(f"error: {directory}: some turns lack {name}; this benchmark needs every modality in every turn")
        per_modality.append(np.split(frames, np.cumsum(lengths)[:-1]))
    dialogues, k = [], 0
    for d in settings["dialogues"]:
        n = len(d["speakers"])
        utterances = [[m[k + i] for m in per_modality] for i in range(n)]
        dialogues.append((d["id"], d["speakers"], d["labels"], utterances))
        k += n
    if k != len(per_modality[0]):
        sys.exit(f"error: {directory}: train.json has {k} utterances, the tensors {len(per_modality[0])}")
    return settings, dialogues


def make_batch(members, widths, torch, np):
    """mmer's `make_batch` for sequence layouts: per modality the padded
    frames of the batch's real utterances, their lengths, padding masks and
    relative frame times; the grid → utterance gather; the speaker index."""
    b = len(members)
    turns = max(len(m[1]) for m in members)
    utterances = [u for m in members for u in m[3]]
    n = len(utterances)
    grid_rows = np.full(b * turns, n, dtype=np.int64)
    rows, targets, k = [], [], 0
    for i, (_, speakers, labels, _) in enumerate(members):
        for t, label in enumerate(labels):
            grid_rows[i * turns + t] = k
            k += 1
            if label is not None:
                rows.append(i * turns + t)
                targets.append(label)
    modalities = []
    for m, width in enumerate(widths):
        lengths = np.array([u[m].shape[0] for u in utterances], dtype=np.int64)
        max_frames = int(lengths.max())
        frames = np.zeros((n, max_frames, width), dtype=np.float32)
        time_ = np.zeros((n, max_frames), dtype=np.float32)
        for i, u in enumerate(utterances):
            frames[i, : lengths[i]] = u[m]
            time_[i, : lengths[i]] = (np.arange(lengths[i]) + 0.5) / lengths[i]
        padding = np.arange(max_frames)[None, :] >= lengths[:, None]
        modalities.append(
            {
                "frames": torch.from_numpy(frames),
                "lengths": torch.from_numpy(lengths),
                "padding": torch.from_numpy(padding),
                "time": torch.from_numpy(time_),
            }
        )
    return {
        "modalities": modalities,
        "grid_rows": torch.from_numpy(grid_rows),
        "lengths": torch.tensor([len(m[1]) for m in members], dtype=torch.int64),
        "rows": torch.tensor(rows, dtype=torch.int64),
        "targets": torch.tensor(targets, dtype=torch.int64),
        **speaker_index([m[1] for m in members], turns, torch, np),
    }


def build_parts(torch, widths, num_classes, spec):
    """The parts of mmer's EmotionModel that every sequence fusion shares:
    the per-modality descriptors (encoders → MAN → pooling; `forward(modalities,
    present=None)`, MAN unless the fusion is `concat`) and the context model
    over the fused M·d-wide utterances (`forward(fused, batch)` → logits)."""
    nn, F = torch.nn, torch.nn.functional
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    expected = {"pooling": "mean", "man_residual": "post_norm", "mode_heads": False, "input_dropout": 0.0}
    unsupported = {key: spec[key] for key, value in expected.items() if spec[key] != value}
    if unsupported:
        sys.exit(f"error: {unsupported}: this benchmark implements {expected}")
    if spec["context"] != "dialogue_speaker":
        sys.exit(f"error: context {spec['context']!r}: this benchmark implements dialogue_speaker")
    d = spec["d_modality"]
    attention_dropout = min(spec["dropout"], 0.1)

    def bilstm(lstm, x, lengths):
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out

    def time_code(t):
        freqs = math.pi * torch.arange(1, d // 2 + 1, dtype=torch.float32)
        angle = t.unsqueeze(2) * freqs  # [n, f, d/2]
        return torch.cat([angle.sin(), angle.cos()], 2)

    class ModalityEncoder(nn.Module):
        def __init__(self, d_input):
            super().__init__()
            self.projection = nn.Linear(d_input, d)
            self.lstm = nn.LSTM(d, d // 2, batch_first=True, bidirectional=True) if spec["temporal"] else None
            self.norm = nn.LayerNorm(d)

        def forward(self, m):
            x = self.projection(m["frames"])
            if self.lstm is not None:
                x = x + bilstm(self.lstm, x, m["lengths"])
            return self.norm(x) + time_code(m["time"])

    def attention():
        return nn.MultiheadAttention(d, spec["man_heads"], dropout=attention_dropout, batch_first=True)

    class ManLayer(nn.Module):
        def __init__(self, peripherals):
            super().__init__()
            self.self_attention = attention()
            self.self_norm = nn.LayerNorm(d)
            self.cross_attention = nn.ModuleList([attention() for _ in range(peripherals)])
            self.injection = nn.Parameter(torch.zeros(peripherals)) if peripherals else None
            self.cross_norm = nn.LayerNorm(d) if peripherals else None
            self.feed_forward_in = nn.Linear(d, 2 * d)
            self.feed_forward_out = nn.Linear(2 * d, d)
            self.feed_forward_norm = nn.LayerNorm(d)
            self.dropout = nn.Dropout(attention_dropout)

        def forward(self, g, padding, peripherals, present):
            a = self.self_attention(g, g, g, key_padding_mask=padding, need_weights=False)[0]
            g = self.self_norm(g + self.dropout(a))
            if self.injection is not None:
                g = self.inject(g, peripherals) if present is None else self.inject_present(g, peripherals, present)
            h = self.feed_forward_out(F.gelu(self.feed_forward_in(g)))
            return self.feed_forward_norm(g + self.dropout(h))

        def inject(self, g, peripherals):
            weights = torch.sigmoid(self.injection) / len(peripherals)
            injected = sum(
                weights[p] * att(g, f, f, key_padding_mask=pad, need_weights=False)[0]
                for p, (att, (f, pad)) in enumerate(zip(self.cross_attention, peripherals))
            )
            return self.cross_norm(g + self.dropout(injected))

        def inject_present(self, g, peripherals, present):
            """`inject` where some rows lack peripherals (`present`, [n, P]
            1/0): weights σ(θ_p)/P' over a row's P' present ones; an absent
            one is selected away; a row with none keeps g (ManLayer::inject_present)."""
            count = present.sum(1, keepdim=True)  # [n, 1]
            weights = torch.sigmoid(self.injection) * present / count.clamp_min(1.0)  # [n, P]
            injected = sum(
                torch.where(
                    present[:, p, None, None] > 0.5,
                    weights[:, p, None, None] * att(g, f, f, key_padding_mask=pad, need_weights=False)[0],
                    0.0,
                )
                for p, (att, (f, pad)) in enumerate(zip(self.cross_attention, peripherals))
            )
            joined = self.cross_norm(g + self.dropout(injected))
            return torch.where(count[:, :, None] > 0.5, joined, g)

    class Descriptors(nn.Module):
        def __init__(self):
            super().__init__()
            modalities = len(widths)
            self.encoders = nn.ModuleList([ModalityEncoder(w) for w in widths])
            self.stacks = (
                nn.ModuleList(
                    [
                        nn.ModuleList([ManLayer(modalities - 1) for _ in range(spec["man_layers"])])
                        for _ in range(modalities)
                    ]
                )
                if spec["fusion"] != "concat"
                else None
            )

        def forward(self, modalities, present=None):
            """`present` ([n, M], 1/0; None: all) keeps MAN from injecting an
            absent peripheral; an absent central modality's descriptor is
            still computed (the caller masks it)."""
            encoded = [enc(m) for enc, m in zip(self.encoders, modalities)]
            if self.stacks is not None:
                out = []
                for c, stack in enumerate(self.stacks):
                    others = [p for p in range(len(encoded)) if p != c]
                    peripherals = [(encoded[p], modalities[p]["padding"]) for p in others]
                    peripheral_present = None if present is None else present[:, others]
                    g = encoded[c]
                    for layer in stack:
                        g = layer(g, modalities[c]["padding"], peripherals, peripheral_present)
                    out.append(g)
                encoded = out
            pooled = []
            for x, m in zip(encoded, modalities):
                keep = (~m["padding"]).unsqueeze(2).float()
                pooled.append((x * keep).sum(1) / keep.sum(1).clamp_min(1.0))
            return pooled

    class Context(nn.Module):
        """mmer's ErcModel with ContextMode::DialogueSpeaker."""

        def __init__(self):
            super().__init__()
            d_model, h = spec["d_model"], spec["d_hidden"]
            self.input_dropout = nn.Dropout(spec["dropout"])
            self.utterance = nn.Linear(len(widths) * d, d_model)
            self.dialogue = nn.LSTM(d_model, h, batch_first=True, bidirectional=True)
            self.speaker = nn.LSTM(d_model, h, batch_first=True, bidirectional=True)
            self.context_dropout = nn.Dropout(spec["context_dropout"])
            self.hidden = nn.Linear(d_model + 4 * h, d_model)
            self.hidden_dropout = nn.Dropout(spec["dropout"])
            self.output = nn.Linear(d_model, num_classes)

        def forward(self, fused, batch):
            table = torch.cat([fused, fused.new_zeros(1, fused.shape[1])], 0)
            b, t = len(batch["lengths"]), int(batch["lengths"].max())
            x = table.index_select(0, batch["grid_rows"]).reshape(b, t, -1)
            u = torch.relu(self.utterance(self.input_dropout(x)))  # [b, t, d_model]
            dialogue_ctx = bilstm(self.dialogue, u, batch["lengths"])
            flat = torch.cat([u.reshape(b * t, -1), u.new_zeros(1, u.shape[2])], 0)
            seqs, max_len = len(batch["speaker_lengths"]), batch["speaker_max_len"]
            speaker_in = flat.index_select(0, batch["gather"]).reshape(seqs, max_len, -1)
            speaker_out = bilstm(self.speaker, speaker_in, batch["speaker_lengths"])
            speaker_ctx = speaker_out.reshape(seqs * max_len, -1).index_select(0, batch["scatter"]).reshape(b, t, -1)
            ctx = self.context_dropout(torch.cat([dialogue_ctx, speaker_ctx], 2))
            hidden = self.hidden_dropout(torch.relu(self.hidden(torch.cat([u, ctx], 2))))
            return self.output(hidden)  # [b, t, classes]

    return Descriptors(), Context()


def build_model(torch, widths, num_classes, spec):
    nn = torch.nn
    fusion = spec["fusion"]
    if fusion not in ("concat", "man_concat", "man_af"):
        sys.exit(
            f"error: fusion {fusion!r}: this benchmark implements concat, man_concat and man_af "
            "(am2_emoje: pytorch_am2emoje.py)"
        )

    class AmuseModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.descriptors, self.context = build_parts(torch, widths, num_classes, spec)
            pairs = len(widths) * (len(widths) - 1)
            self.gates = nn.Parameter(torch.zeros(pairs, spec["d_modality"])) if fusion == "man_af" and pairs else None

        def forward(self, batch):
            pooled = self.descriptors(batch["modalities"])
            if self.gates is None:
                return self.context(torch.cat(pooled, 1), batch)
            alpha = torch.sigmoid(self.gates)
            fused, row = [], 0
            for c, own in enumerate(pooled):
                mixed = []
                for other in (o for k, o in enumerate(pooled) if k != c):
                    mixed.append(alpha[row] * other + (1 - alpha[row]) * own)
                    row += 1
                fused.append(sum(mixed) / len(mixed))
            return self.context(torch.cat(fused, 1), batch)  # [b, t, classes]

    return AmuseModel()


def run(description, build):
    """The command line of this script and of pytorch_am2emoje.py: trains
    `build(torch, widths, num_classes, spec)` on the export and prints the
    JSON report."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export", required=True, help="directory of `mmer bench train-epoch --export`")
    parser.add_argument("--order", required=True, help="JSON epoch orders (`--order-out`)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    args = parser.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    settings, dialogues = load_export(args.export, np)
    train = settings["train"]
    if train["loss"]["kind"] != "focal" or train["class_weighting"]["kind"] != "none":
        sys.exit("error: this benchmark implements the unweighted focal loss")
    by_id = {d[0]: d for d in dialogues}
    orders = json.loads(Path(args.order).read_text(encoding="utf-8"))
    if len(orders) < args.epochs:
        sys.exit(f"error: {args.order} has {len(orders)} epoch orders, --epochs is {args.epochs}")
    widths = [w for _, w in settings["modalities"]]
    model = build(torch, widths, len(settings["classes"]), train["model"])
    optim = torch.optim.Adam(
        model.parameters(), lr=train["learning_rate"], weight_decay=train["weight_decay"], eps=1e-5
    )
    model.train()
    batch_size = train["batch_size"]

    rss_before = rss_mib()
    epoch_seconds, epoch_loss = train_epochs(
        torch,
        model,
        optim,
        orders[: args.epochs],
        batch_size,
        lambda ids: make_batch([by_id[i] for i in ids], widths, torch, np),
        gamma=train["loss"]["gamma"],
    )
    seconds = sum(epoch_seconds)
    utterances = sum(sum(label is not None for label in d[2]) for d in dialogues)
    print(
        json.dumps(
            {
                "workload": "train_epoch",
                "fusion": train["model"]["fusion"],
                "modalities": settings["modalities"],
                "parameters": sum(p.numel() for p in model.parameters()),
                "dialogues": len(dialogues),
                "utterances": utterances,
                "batch_size": batch_size,
                "batches_per_epoch": -(-len(dialogues) // batch_size),
                "epochs": args.epochs,
                "seconds": seconds,
                "epoch_seconds": epoch_seconds,
                "epoch_loss": epoch_loss,
                "utterances_per_second": utterances * args.epochs / seconds,
                "environment": environment(torch, rss_before),
            }
        )
    )


if __name__ == "__main__":
    run(__doc__, build_model)
