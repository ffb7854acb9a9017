#!/usr/bin/env python3
"""PyTorch side of mmer's SeMuL-PCD training-speed benchmark (issue 16).

Trains the same SeMuL-PCD model as `mmer bench train-epoch --config
docs/configs/synthetic-multilabel-semul.toml` on the same numbers, in the
same batch order, times only the epochs, and prints one JSON object on
stdout. `bench/run.sh --workloads train-semul` runs both sides back to back.
Input and command line as pytorch_amuse.py's (the export of `mmer bench
train-epoch --export`, whose labels here are lists of 0/1 bits, and the
epoch orders of `--order-out`), whose export reader and batch builder this
reuses; the report has the same fields plus `epoch_terms`.

Model (crates/mmer-models/src/multimodal/, same sizes, read from train.json):
  per modality  x = LayerNorm(P f) + time code   (encoder.rs, temporal = false:
                no Bi-LSTM; no input dropout)
  streams       per modality [agg_m, x_1 … x_f], agg_m a learned token (N(0,
                0.02²)); a fusion stream of one learned token (peers.rs)
  layer         `peers.layers` distinct layers; each: every modality stream
                h = LN(x + SelfAttn(x)) (own padding masked), y = LN(h +
                FFN(h)), FFN = Linear(d→4d) → GELU → Linear(4d→d); the fusion
                token the same block with its keys = the concatenation of
                every stream as the layer receives it (padding masked);
                attention-weight and residual dropout min(dropout, 0.1)
                (nn.MultiheadAttention)
  pooling       index 0: the aggregation tokens (peers) and the fusion token
  peers         mode heads, Linear(d → classes) per aggregation token;
                contrastive projections z_m = P_m(agg_m)/‖·‖, P_m: Linear(d →
                d_projection); scale exp(s) clamped at 100, s learned from
                ln(1/0.07)
  fusion head   mmer's ErcModel with context none on the fusion token:
                Dropout → Linear(d → d_model) → ReLU → Linear(d_model →
                d_model) → ReLU → Dropout → Linear(d_model → classes)
  loss          (multi_label_loss.rs, trainer.rs `batch_loss`) mean BCE with
                logits of the fused head + peer_weight · mean over peers of
                their BCE + nce_weight · NCE + calibration_weight ·
                calibration + distill_weight · KD, over the labelled turns;
                NCE: mean over modality pairs of the symmetric CLIP InfoNCE
                with same-turn positives over the batch's turns; calibration:
                each positive logit against the sample's negatives (softplus(
                logsumexp(negatives) − z_c)), mean over positives, then over
                samples with one; KD: per-label Bernoulli KL of σ(z/T) from
                the detached peer ensemble mean σ(z_m/T), mean × T²
  optimiser     Adam with mmer's lr, L2 weight decay (burn's
                WeightDecayConfig adds it to the gradient, as torch's Adam
                weight_decay does) and ε = 1e-5 (burn's default)
Every turn must have every modality (the synthetic multi-label clips do), so
no presence masks: none of the peers' or fusion keys are masked beyond
padding. Known difference: `bench/run.sh` runs mmer with `--data-parallel
T`, which computes each of T batch shards' loss on its own, so mmer's NCE
contrasts a shard's turns where this one contrasts the batch's. The
parameter count is the same on both sides (torch's packed in-projection of
nn.MultiheadAttention has as many weights as mmer's four Linears).

Usage:
  pytorch_semul.py --export DIR --order order.json [--epochs 1] [--threads 2]
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

# Sets OMP_WAIT_POLICY before torch loads (see pytorch_reference.py).
from pytorch_amuse import load_export, make_batch
from pytorch_reference import environment, rss_mib


def build_model(torch, widths, num_classes, spec):
    nn, F = torch.nn, torch.nn.functional
    if spec["fusion"] != "semul_pcd":
        sys.exit(f"error: fusion {spec['fusion']!r}: this benchmark implements semul_pcd")
    expected = {
        "temporal": False,
        "context": "none",
        "input_dropout": 0.0,
        "modality_dropout": 0.0,
        "frame_dropout": 0.0,
    }
    unsupported = {key: spec[key] for key, value in expected.items() if spec[key] != value}
    if unsupported:
        sys.exit(f"error: {unsupported}: this benchmark implements {expected}")
    peers = spec["peers"]
    num_modalities = len(widths)
    if num_modalities < 2:
        sys.exit("error: SeMuL-PCD's peers align modalities; this benchmark needs two or more")
    d = spec["d_modality"]
    attention_dropout = min(spec["dropout"], 0.1)

    def time_code(t):
        freqs = math.pi * torch.arange(1, d // 2 + 1, dtype=torch.float32)
        angle = t.unsqueeze(2) * freqs  # [n, f, d/2]
        return torch.cat([angle.sin(), angle.cos()], 2)

    class ModalityEncoder(nn.Module):
        """encoder.rs with temporal = false."""

        def __init__(self, d_input):
            super().__init__()
            self.projection = nn.Linear(d_input, d)
            self.norm = nn.LayerNorm(d)

        def forward(self, m):
            return self.norm(self.projection(m["frames"])) + time_code(m["time"])

    class StreamBlock(nn.Module):
        """peers.rs `StreamBlock`: masked attention → LN, FFN(4d, GELU) → LN."""

        def __init__(self):
            super().__init__()
            self.attention = nn.MultiheadAttention(d, spec["man_heads"], dropout=attention_dropout, batch_first=True)
            self.attention_norm = nn.LayerNorm(d)
            self.feed_forward_in = nn.Linear(d, 4 * d)
            self.feed_forward_out = nn.Linear(4 * d, d)
            self.feed_forward_norm = nn.LayerNorm(d)
            self.dropout = nn.Dropout(attention_dropout)

        def forward(self, query, key_value, key_padding):
            a = self.attention(query, key_value, key_value, key_padding_mask=key_padding, need_weights=False)[0]
            h = self.attention_norm(query + self.dropout(a))
            f = self.feed_forward_out(F.gelu(self.feed_forward_in(h)))
            return self.feed_forward_norm(h + self.dropout(f))

    class PeerLayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.streams = nn.ModuleList([StreamBlock() for _ in widths])
            self.fusion = StreamBlock()

    class SemulPcdModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoders = nn.ModuleList([ModalityEncoder(w) for w in widths])
            self.aggregation = nn.ParameterList([nn.Parameter(torch.randn(1, d) * 0.02) for _ in widths])
            self.fusion_token = nn.Parameter(torch.randn(1, d) * 0.02)
            distinct = 1 if peers["share_layers"] else peers["layers"]
            self.layers = nn.ModuleList([PeerLayer() for _ in range(distinct)])
            self.depth = peers["layers"]
            self.projections = nn.ModuleList([nn.Linear(d, peers["d_projection"]) for _ in widths])
            self.log_scale = nn.Parameter(torch.tensor([math.log(1 / 0.07)]))
            self.mode_heads = nn.ModuleList([nn.Linear(d, num_classes) for _ in widths])
            # ErcModel, ContextMode::None.
            d_model = spec["d_model"]
            self.input_dropout = nn.Dropout(spec["dropout"])
            self.utterance = nn.Linear(d, d_model)
            self.hidden = nn.Linear(d_model, d_model)
            self.hidden_dropout = nn.Dropout(spec["dropout"])
            self.output = nn.Linear(d_model, num_classes)

        def head(self, x):
            u = torch.relu(self.utterance(self.input_dropout(x)))
            return self.output(self.hidden_dropout(torch.relu(self.hidden(u))))

        def forward(self, batch):
            """(fused logits [b, t, C], peer logits [b, t, C] per modality,
            the peers' NCE)."""
            modalities = batch["modalities"]
            n = modalities[0]["frames"].shape[0]
            streams, own_padding = [], []
            unmasked = torch.zeros(n, 1, dtype=torch.bool)
            for encoder, agg, m in zip(self.encoders, self.aggregation, modalities):
                streams.append(torch.cat([agg.unsqueeze(0).expand(n, 1, d), encoder(m)], 1))
                own_padding.append(torch.cat([unmasked, m["padding"]], 1))
            fusion_padding = torch.cat(own_padding, 1)
            fused = self.fusion_token.unsqueeze(0).expand(n, 1, d)
            for k in range(self.depth):
                layer = self.layers[k % len(self.layers)]
                fused = layer.fusion(fused, torch.cat(streams, 1), fusion_padding)
                streams = [block(x, x, pad) for block, x, pad in zip(layer.streams, streams, own_padding)]
            pooled = [x[:, 0] for x in streams]  # [n, d] each
            embedded = [F.normalize(p(x), dim=1, eps=1e-8) for p, x in zip(self.projections, pooled)]
            b, t = len(batch["lengths"]), int(batch["lengths"].max())

            def to_grid(rows):
                table = torch.cat([rows, rows.new_zeros(1, rows.shape[1])], 0)
                return table.index_select(0, batch["grid_rows"]).reshape(b, t, -1)

            modes = [to_grid(head(x)) for head, x in zip(self.mode_heads, pooled)]
            return self.head(to_grid(fused[:, 0])), modes, self.nce(embedded)

        def nce(self, embedded):
            """joint.rs `joint_nce`, same-turn positives, every turn present."""
            n = embedded[0].shape[0]
            if n < 2:
                return None
            scale = self.log_scale.exp().clamp(max=100.0)
            diagonal = torch.arange(n)
            losses = []
            for a in range(num_modalities):
                for b in range(a + 1, num_modalities):
                    logits = embedded[a] @ embedded[b].T * scale  # [n, n]
                    losses.append((F.cross_entropy(logits, diagonal) + F.cross_entropy(logits.T, diagonal)) / 2)
            return sum(losses) / len(losses)

    return SemulPcdModel()


def semul_loss(torch, model_out, batch, peers):
    """trainer.rs `batch_loss` for SeMuL-PCD on complete multi-label turns:
    (loss, [bce, peers, nce, calibration, distillation])."""
    F = torch.nn.functional
    logits, modes, nce = model_out
    bits = batch["targets"]

    def rows_of(x):
        b, t, c = x.shape
        return x.reshape(b * t, c).index_select(0, batch["rows"])

    fused = rows_of(logits)
    bce = F.binary_cross_entropy_with_logits(fused, bits)
    peer_rows = [rows_of(m) for m in modes]
    peer_bce = sum(F.binary_cross_entropy_with_logits(p, bits) for p in peer_rows) / len(peer_rows)
    # Calibration (multi_label_loss.rs `calibration_loss`).
    negatives_only = fused.masked_fill(bits > 0.5, -1.0e4)
    log_negatives = torch.logsumexp(negatives_only, 1, keepdim=True)
    per_label = F.softplus(log_negatives - fused)
    positives = bits.sum(1, keepdim=True)
    samples = (positives > 0.5).float().sum().clamp_min(1.0)
    calibration = (per_label * bits / positives.clamp_min(1.0)).sum() / samples
    # Peer teacher and Bernoulli KL × T² (`peer_teacher`, `bernoulli_distillation`).
    temperature = peers["distill_temperature"]
    teacher = sum(torch.sigmoid(p.detach() / temperature) for p in peer_rows) / len(peer_rows)
    p = teacher.clamp(1.0e-7, 1.0 - 1.0e-7)
    z = fused / temperature
    kl = p * (p.log() - F.logsigmoid(z)) + (1 - p) * ((1 - p).log() - F.logsigmoid(-z))
    distillation = kl.mean() * temperature**2
    zero = fused.new_zeros(())
    terms = [bce, peer_bce, nce if nce is not None else zero, calibration, distillation]
    weights = [1.0, peers["peer_weight"], peers["nce_weight"], peers["calibration_weight"], peers["distill_weight"]]
    loss = bce
    for term, weight in zip(terms[1:], weights[1:]):
        if weight > 0:
            loss = loss + weight * term
    return loss, terms


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    if train["class_weighting"]["kind"] != "none":
        sys.exit("error: this benchmark implements the unweighted losses")
    if any(label is not None and not isinstance(label, list) for d in dialogues for label in d[2]):
        sys.exit(f"error: {args.export} holds single-label data; SeMuL-PCD trains on multi-label bits")
    by_id = {d[0]: d for d in dialogues}
    orders = json.loads(Path(args.order).read_text(encoding="utf-8"))
    if len(orders) < args.epochs:
        sys.exit(f"error: {args.order} has {len(orders)} epoch orders, --epochs is {args.epochs}")
    widths = [w for _, w in settings["modalities"]]
    spec = train["model"]
    model = build_model(torch, widths, len(settings["classes"]), spec)
    optim = torch.optim.Adam(
        model.parameters(), lr=train["learning_rate"], weight_decay=train["weight_decay"], eps=1e-5
    )
    model.train()
    batch_size = train["batch_size"]

    rss_before = rss_mib()
    epoch_seconds, epoch_loss, epoch_terms = [], [], []
    for order in orders[: args.epochs]:
        started = time.perf_counter()
        loss_sum, terms_sum, batches = 0.0, None, 0
        for start in range(0, len(order), batch_size):
            # Built inside the timing, as mmer builds its batches.
            batch = make_batch([by_id[i] for i in order[start : start + batch_size]], widths, torch, np)
            if len(batch["rows"]) == 0:
                continue
            batch["targets"] = batch["targets"].float()
            loss, terms = semul_loss(torch, model(batch), batch, spec["peers"])
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            loss_sum += loss.item()
            terms = torch.stack([t.detach() for t in terms])
            terms_sum = terms if terms_sum is None else terms_sum + terms
            batches += 1
        epoch_seconds.append(time.perf_counter() - started)
        epoch_loss.append(loss_sum / max(batches, 1))
        names = ["bce", "peer_bce", "nce", "calibration", "distillation"]
        mean_terms = [] if terms_sum is None else (terms_sum / batches).tolist()
        epoch_terms.append(dict(zip(names, mean_terms)))
    seconds = sum(epoch_seconds)
    utterances = sum(sum(label is not None for label in d[2]) for d in dialogues)
    print(
        json.dumps(
            {
                "workload": "train_epoch",
                "fusion": spec["fusion"],
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
                "epoch_terms": epoch_terms,
                "utterances_per_second": utterances * args.epochs / seconds,
                "environment": environment(torch, rss_before),
            }
        )
    )


if __name__ == "__main__":
    main()
