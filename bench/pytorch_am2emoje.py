#!/usr/bin/env python3
"""PyTorch side of mmer's AM²-EmoJE training-speed benchmark.

Trains the same AM²-EmoJE model as `mmer bench train-epoch --config
docs/configs/synthetic-am2emoje.toml` on the same numbers, in the same batch
order, times only the epochs, and prints one JSON object on stdout.
`bench/run.sh --workloads train-am2emoje` runs both sides back to back.
Input, command line and report as pytorch_amuse.py's, whose encoders, MAN,
pooling, context model, focal loss and Adam this reuses.

Model (crates/mmer-models/src/multimodal/, same sizes, read from train.json):
  dropout       training only (model.rs): modality dropout hides each
                modality of each turn with p = `modality_dropout` (a turn that
                would lose all keeps its own); frame dropout zeroes whole
                frames of every modality with more than one frame at
                `frame_dropout`, survivors rescaled
  descriptors   encoders → MAN → mean pooling, as pytorch_amuse.py; MAN
                injects only the peripherals a turn still has, σ(θ_p)/P' over
                its P' present ones, none: no injection join (attention.rs
                `inject_present`)
  joint space   z_m = P_m(f_m) / ‖P_m(f_m)‖, P_m: Linear(d → d_joint); f_m
                detached unless `align_descriptors` (joint.rs)
  imputation    a hidden slot m gets mean_{present n≠m} G_m(z_n), G_m:
                Linear(d_joint → d); loss: mean squared error against the
                detached real f_m over the (turn, m, n) with n present
  fusion        w = softmax over the available slots of Linear(GELU(Linear(
                [slots; presence] → d_query)) → M) (zero-initialised output
                layer; presence 1 real, 0 imputed); fused =
                ⊕_m M·w_m·slot_m, M·d wide, into the context model
  loss          focal + nce_weight · NCE + imputation_weight · imputation;
                NCE: mean over modality pairs of the symmetric CLIP InfoNCE over
                the turns that have both (pairs with fewer than two skipped),
                scale exp(s) clamped at 100, s learned from ln(1/0.07)
Implements the config's joint settings: imputation, query-adaptive weights,
same-turn positives; every turn must have every modality (the hidden ones
are modality dropout's).
Known differences: torch's LSTM has two bias vectors per gate, mmer's cell
one (4·h more parameters per LSTM direction); `bench/run.sh` runs mmer with
`--data-parallel T`, which computes each of T batch shards' loss on its own,
so mmer's NCE contrasts a shard's turns where this one contrasts the batch's.

Usage:
  pytorch_am2emoje.py --export DIR --order order.json [--epochs 1] [--threads 2]
"""

import math
import sys

# Sets OMP_WAIT_POLICY before torch loads (see pytorch_reference.py).
from pytorch_amuse import build_parts, run


def build_model(torch, widths, num_classes, spec):
    nn, F = torch.nn, torch.nn.functional
    if spec["fusion"] != "am2_emoje":
        sys.exit(f"error: fusion {spec['fusion']!r}: this benchmark implements am2_emoje (others: pytorch_amuse.py)")
    joint = spec["joint"]
    expected = {"impute": True, "query_adaptive": True, "positives": "same_turn"}
    unsupported = {key: joint[key] for key, value in expected.items() if joint[key] != value}
    if unsupported:
        sys.exit(f"error: joint {unsupported}: this benchmark implements {expected}")
    num_modalities = len(widths)
    if num_modalities < 2:
        sys.exit("error: AM²-EmoJE aligns modalities; this benchmark needs two or more")
    d, d_joint = spec["d_modality"], joint["d_joint"]

    def drop_modalities(present):
        """Each present modality of each turn hidden with probability
        `modality_dropout`; a turn that would lose all keeps its own."""
        kept = (torch.rand_like(present) >= spec["modality_dropout"]).float() * present
        return torch.where(kept.sum(1, keepdim=True) < 0.5, present, kept)

    def drop_frames(modalities):
        """Whole frames of every modality zeroed at `frame_dropout`,
        survivors rescaled; a one-frame modality (text) is left alone."""
        dropped = []
        for m in modalities:
            n, f, _ = m["frames"].shape
            if f == 1:
                dropped.append(m)
                continue
            mask = F.dropout(m["frames"].new_ones(n, f, 1), spec["frame_dropout"])
            dropped.append({**m, "frames": m["frames"] * mask})
        return dropped

    class JointFusion(nn.Module):
        """joint.rs `JointFusion` (imputation, query-adaptive weights) and
        `joint_nce` (same-turn positives)."""

        def __init__(self):
            super().__init__()
            self.projections = nn.ModuleList([nn.Linear(d, d_joint) for _ in widths])
            self.imputers = nn.ModuleList([nn.Linear(d_joint, d) for _ in widths])
            self.query_hidden = nn.Linear(num_modalities * (d + 1), joint["d_query"])
            self.query_scores = nn.Linear(joint["d_query"], num_modalities)
            # Zero init: every available modality starts with the same weight.
            nn.init.zeros_(self.query_scores.weight)
            nn.init.zeros_(self.query_scores.bias)
            self.log_scale = nn.Parameter(torch.tensor([math.log(1 / 0.07)]))

        def forward(self, descriptors, present, truth):
            """Descriptors [n, d] per modality, `present` (what the model
            sees) and `truth` (what the data has), [n, M] 1/0 →
            (fused [n, M·d], unit joint embeddings [n, d_joint] per modality,
            imputation loss)."""
            n = descriptors[0].shape[0]
            sources = descriptors if joint["align_descriptors"] else [f.detach() for f in descriptors]
            embedded = [F.normalize(p(f), dim=1, eps=1e-8) for p, f in zip(self.projections, sources)]
            slots, error_sum, error_count = [], 0.0, 0.0
            for m, (imputer, f) in enumerate(zip(self.imputers, descriptors)):
                target = f.detach()
                total, count = torch.zeros_like(f), f.new_zeros(n, 1)
                for k, z in enumerate(embedded):
                    if k == m:
                        continue
                    source = present[:, k : k + 1]  # [n, 1]
                    guess = imputer(z)  # [n, d]
                    weight = source * truth[:, m : m + 1]
                    error_sum = error_sum + (((guess - target) ** 2).mean(1, keepdim=True) * weight).sum()
                    error_count = error_count + weight.sum()
                    total = total + torch.where(source > 0.5, guess, 0.0)
                    count = count + source
                slots.append(torch.where(present[:, m : m + 1] > 0.5, f, total / count.clamp_min(1.0)))
            # Available: present, or imputed from a present one.
            available = (present.sum(1, keepdim=True) > 0.5).float().expand(n, num_modalities)
            hidden = F.gelu(self.query_hidden(torch.cat(slots + [present], 1)))
            weights = torch.softmax(self.query_scores(hidden).masked_fill(available < 0.5, -1.0e4), 1)  # [n, M]
            fused = (torch.stack(slots, 1) * (num_modalities * weights).unsqueeze(2)).reshape(n, num_modalities * d)
            return fused, embedded, error_sum / error_count.clamp_min(1.0)

        def nce(self, embedded, present):
            """Mean over modality pairs of the symmetric InfoNCE over the
            turns that have both; None when no pair has two such turns."""
            scale = self.log_scale.exp().clamp(max=100.0)
            losses = []
            for a in range(num_modalities):
                for b in range(a + 1, num_modalities):
                    rows = ((present[:, a] > 0.5) & (present[:, b] > 0.5)).nonzero().squeeze(1)
                    if len(rows) < 2:
                        continue
                    logits = embedded[a][rows] @ embedded[b][rows].T * scale  # [r, r]
                    diagonal = torch.arange(len(rows))
                    losses.append((F.cross_entropy(logits, diagonal) + F.cross_entropy(logits.T, diagonal)) / 2)
            return sum(losses) / len(losses) if losses else None

    class Am2EmoJeModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.descriptors, self.context = build_parts(torch, widths, num_classes, spec)
            self.joint = JointFusion()

        def forward(self, batch):
            """(logits [b, t, classes], the weighted NCE and imputation terms)."""
            modalities = batch["modalities"]
            # Every turn has every modality (load_export checks).
            truth = modalities[0]["frames"].new_ones(len(modalities[0]["lengths"]), len(modalities))
            present = truth
            if self.training:
                present, modalities = drop_modalities(truth), drop_frames(modalities)
            fused, embedded, imputation = self.joint(self.descriptors(modalities, present), present, truth)
            terms = [(self.joint.nce(embedded, present), joint["nce_weight"]), (imputation, joint["imputation_weight"])]
            auxiliary = sum(weight * term for term, weight in terms if term is not None and weight > 0)
            return self.context(fused, batch), auxiliary

    return Am2EmoJeModel()


if __name__ == "__main__":
    run(__doc__, build_model)
