#!/usr/bin/env python3
"""PyTorch + transformers side of mmer's MPNet fine-tuning-step benchmark.

Does the step `mmer bench finetune-step --encoder mpnet` times, on the batches
its `--inputs-out` file holds (same token ids, same labels, same order), times
only the steps, and prints one JSON object on stdout.
`bench/run.sh --workloads finetune-step` runs both sides back to back.

Input (written by `mmer bench finetune-step --inputs-out FILE.json`):
  {"encoder": "mpnet", "layers": K, "num_classes": 7, "learning_rate": 2e-5,
   "weight_decay": 0.01, "batches": [{"ids": [[token ids, special tokens
   included, no padding], ...], "labels": [class index, ...]}, ...]}
  The first W batches are warm-up (run, not timed), the last S timed; S is
  --steps, W --warmup-steps (default: the file's "warmup_steps" when it has
  one, else the batches before the S timed ones).

Model: transformers' MPNetModel (no pooler) from the local copy
(./models/all-mpnet-base-v2; --model-dir, --models-dir or $MMER_MODELS_DIR;
never a hub: local_files_only, HF_HUB_OFFLINE=1), float32, train mode
(dropout 0.1 on the embeddings, the attention probabilities and both residual
branches, as its config.json says).
Step, per batch:
  ids padded to the batch's longest with config.json's pad_token_id,
  attention mask 1/0 (built before the timing, like the lower states below);
  K == num_hidden_layers: embeddings → relative position bias → all layers,
    everything trained (word/position embeddings, their LayerNorm, the
    relative attention bias table and every layer);
  K <  num_hidden_layers: the token states under the top K layers were
    computed beforehand (torch.no_grad, eval mode: no dropout), as were the
    relative position bias and the additive mask; the step runs only the top
    K MPNetLayers from them, the rest of MPNet frozen;
  mean pooling of the last layer over the mask (sentence-transformers', no
  L2 normalisation) → Linear(768 → num_classes) (fresh, seeded) →
  cross-entropy, mean over the batch → zero_grad(set_to_none) → backward →
  AdamW (lr and weight decay from the file, betas 0.9/0.999, eps 1e-5 as
  burn's default; decoupled decay on every trained tensor, biases and
  LayerNorms included) over the trained parameters and the head. torch's
  fused AdamW kernel by default (--adamw), as transformers' Trainer picks.
The timed work per step: forward + loss + zero_grad + backward + optimizer step.

The layers are called as MPNetEncoder.forward calls them: every layer gets the
same position bias (MPNetEncoder.compute_position_bias, added to the scaled
scores) and the additive mask (0 where attended, float32 min at padding).
Before timing, the script checks that this path gives transformers'
MPNetModel output (eval mode, first batch; --no-check skips it).

Usage:
  pytorch_finetune_step.py --inputs finetune-inputs.json --steps 5 [--threads 2]
"""

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

# Sets HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE and OMP_WAIT_POLICY before torch loads.
from pytorch_reference import ENCODER_DIRS, environment, rss_mib

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-5  # burn's AdamW default (torch's is 1e-8)


def load_inputs(args):
    data = json.loads(Path(args.inputs).read_text(encoding="utf-8"))
    if data.get("encoder", "mpnet") != "mpnet":
        sys.exit(f"error: {args.inputs}: encoder {data.get('encoder')!r}; this benchmark fine-tunes mpnet")
    batches = data.get("batches") or []
    for i, batch in enumerate(batches):
        ids, labels = batch.get("ids") or [], batch.get("labels") or []
        if not ids or len(ids) != len(labels) or any(len(x) == 0 for x in ids):
            sys.exit(f"error: {args.inputs}: batch {i}: {len(ids)} id lists, {len(labels)} labels (or an empty one)")
    warmup = args.warmup_steps if args.warmup_steps is not None else data.get("warmup_steps")
    if warmup is not None and data.get("warmup_steps") not in (None, warmup):
        sys.exit(f"error: --warmup-steps {warmup}, but {args.inputs} was written with {data['warmup_steps']}")
    steps = args.steps if args.steps is not None else len(batches) - (warmup or 0)
    warmup = warmup if warmup is not None else len(batches) - steps
    if steps < 1 or warmup < 0 or warmup + steps != len(batches):
        sys.exit(f"error: {args.inputs} holds {len(batches)} batches; --warmup-steps {warmup} + --steps {steps} must match")
    layers = data.get("layers")
    if args.layers is not None and layers is not None and args.layers != layers:
        sys.exit(f"error: --layers {args.layers}, but {args.inputs} was written for {layers}")
    layers = layers if layers is not None else args.layers
    if layers is None:
        sys.exit(f"error: {args.inputs} has no \"layers\"; give --layers")
    return data, batches, warmup, steps, layers


def model_dir(args):
    if args.model_dir:
        return Path(args.model_dir)
    return Path(args.models_dir) / ENCODER_DIRS["mpnet"]


def load_model(torch, transformers, directory):
    if not (directory / "model.safetensors").exists():
        sys.exit(f"error: {directory} has no model.safetensors (run scripts/setup.sh)")
    from transformers import MPNetModel

    # transformers 5 takes `dtype` (and defaults to "auto"); 4.x `torch_dtype`.
    dtype_key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    model = MPNetModel.from_pretrained(
        str(directory), local_files_only=True, add_pooling_layer=False, **{dtype_key: torch.float32}
    )
    return model.float()


def additive_mask(torch, mask, dtype):
    """[b, L] 1/0 → [b, 1, 1, L]: 0 where attended, dtype's min at padding
    (transformers' eager mask)."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def run_layers(layers, hidden, extended, bias):
    for layer in layers:
        hidden = layer(hidden, attention_mask=extended, position_bias=bias)[0]
    return hidden


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", required=True, help="JSON batches (mmer bench finetune-step --inputs-out)")
    parser.add_argument("--steps", type=int, help="timed steps: the file's last S batches (default: all after the warm-up)")
    parser.add_argument("--warmup-steps", type=int, help="untimed steps first (default: the batches before the timed ones)")
    parser.add_argument("--layers", type=int, help="trained top layers; must match the file's \"layers\" when both are given")
    parser.add_argument("--model-dir", help="the MPNet directory (config.json, model.safetensors)")
    parser.add_argument(
        "--models-dir",
        default=os.environ.get("MMER_MODELS_DIR", "models"),
        help="parent of all-mpnet-base-v2 when --model-dir is not given (default $MMER_MODELS_DIR or ./models)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=0, help="head initialisation and dropout")
    parser.add_argument(
        "--adamw",
        choices=["fused", "foreach", "loop"],
        default="fused",
        help="torch AdamW implementation: fused (default; what transformers' Trainer uses with torch >= 2.8, "
        "about 1.7x faster a full-model step than the loop), foreach, or loop (torch's own default on CPU)",
    )
    parser.add_argument("--no-check", action="store_true", help="skip the check against MPNetModel's own forward")
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F
    import transformers

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data, raw_batches, warmup, steps, k = load_inputs(args)
    directory = model_dir(args)
    model = load_model(torch, transformers, directory)
    config = model.config
    num_layers = config.num_hidden_layers
    if not 1 <= k <= num_layers:
        sys.exit(f"error: layers {k}: MPNet has {num_layers}")
    pad_id = config.pad_token_id
    if pad_id != model.embeddings.padding_idx:
        # MPNetEmbeddings derives position ids from input_ids with padding_idx 1.
        sys.exit(f"error: pad_token_id {pad_id} is not MPNetEmbeddings.padding_idx {model.embeddings.padding_idx}")
    limit = config.max_position_embeddings - pad_id - 1
    longest = max(len(x) for b in raw_batches for x in b["ids"])
    if longest > limit:
        sys.exit(f"error: an utterance of {longest} tokens; MPNet positions end at {limit}")
    num_classes = int(data.get("num_classes", 7))
    lr = float(data.get("learning_rate", 2e-5))
    weight_decay = float(data.get("weight_decay", 0.01))

    batches = []
    for raw in raw_batches:
        b, length = len(raw["ids"]), max(len(x) for x in raw["ids"])
        ids = torch.full((b, length), pad_id, dtype=torch.long)
        mask = torch.zeros((b, length), dtype=torch.long)
        for i, x in enumerate(raw["ids"]):
            ids[i, : len(x)] = torch.tensor(x, dtype=torch.long)
            mask[i, : len(x)] = 1
        labels = torch.tensor(raw["labels"], dtype=torch.long)
        if labels.min() < 0 or labels.max() >= num_classes:
            sys.exit(f"error: a label outside 0..{num_classes - 1}")
        batches.append({"ids": ids, "mask": mask, "labels": labels, "tokens": int(mask.sum())})

    # The layer path the step uses gives MPNetModel's output (eval, no dropout).
    check = None
    if not args.no_check:
        model.eval()
        with torch.no_grad():
            first = batches[0]
            expected = model(input_ids=first["ids"], attention_mask=first["mask"]).last_hidden_state
            hidden = model.embeddings(input_ids=first["ids"])
            bias = model.encoder.compute_position_bias(hidden)
            got = run_layers(model.encoder.layer, hidden, additive_mask(torch, first["mask"], hidden.dtype), bias)
            real = first["mask"].bool()
            check = float((got - expected).abs()[real].max())
        if not check < 1e-3:
            sys.exit(f"error: the layer-by-layer forward differs from MPNetModel's by {check} (transformers changed?)")

    split = num_layers - k
    top = model.encoder.layer[split:]
    lower_seconds = 0.0
    if split > 0:
        # Frozen lower part: cached states, bias and mask, computed untimed.
        for p in model.parameters():
            p.requires_grad_(False)
        trained = [p for layer in top for p in layer.parameters()]
        for p in trained:
            p.requires_grad_(True)
        model.eval()
        started = time.perf_counter()
        with torch.no_grad():
            for batch in batches:
                hidden = model.embeddings(input_ids=batch["ids"])
                bias = model.encoder.compute_position_bias(hidden)
                extended = additive_mask(torch, batch["mask"], hidden.dtype)
                batch["states"] = run_layers(model.encoder.layer[:split], hidden, extended, bias)
                batch["bias"], batch["extended"] = bias, extended
        lower_seconds = time.perf_counter() - started
    else:
        trained = [p for p in model.parameters()]
    model.train()

    torch.manual_seed(args.seed)
    head = torch.nn.Linear(config.hidden_size, num_classes)
    head.train()
    params = trained + list(head.parameters())
    implementation = args.adamw
    impl = {"loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}
    try:
        optim = torch.optim.AdamW(
            params, lr=lr, betas=ADAM_BETAS, eps=ADAM_EPS, weight_decay=weight_decay, **impl[implementation]
        )
    except (RuntimeError, ValueError) as err:  # fused AdamW on CPU needs torch >= 2.4
        print(f"note: AdamW {implementation} unavailable ({err}); using the loop", file=sys.stderr)
        implementation = "loop"
        optim = torch.optim.AdamW(params, lr=lr, betas=ADAM_BETAS, eps=ADAM_EPS, weight_decay=weight_decay, foreach=False)

    def step(batch):
        mask = batch["mask"]
        if split == 0:
            hidden = model.embeddings(input_ids=batch["ids"])
            bias = model.encoder.compute_position_bias(hidden)
            extended = additive_mask(torch, mask, hidden.dtype)
        else:
            hidden, bias, extended = batch["states"], batch["bias"], batch["extended"]
        hidden = run_layers(top, hidden, extended, bias)
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        loss = F.cross_entropy(head(pooled), batch["labels"])
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        return loss

    warmup_loss = [float(step(batch).detach()) for batch in batches[:warmup]]
    rss_before = rss_mib()
    seconds, losses = [], []
    for batch in batches[warmup:]:
        started = time.perf_counter()
        loss = step(batch)
        seconds.append(time.perf_counter() - started)
        losses.append(float(loss.detach()))
    if not all(math.isfinite(x) for x in losses):
        sys.exit(f"error: non-finite loss {losses}")

    timed = batches[warmup:]
    batch_size = len(timed[0]["labels"])
    median = statistics.median(seconds)
    env = environment(torch, rss_before)
    env["versions"]["transformers"] = transformers.__version__
    report = {
        "workload": "finetune-step",
        "encoder": "mpnet",
        "model_dir": str(directory),
        "batch": batch_size,
        "steps": steps,
        "warmup_steps": warmup,
        "layers": k,
        "num_hidden_layers": num_layers,
        "trained_parameters": sum(p.numel() for p in params),
        "tokens_per_batch": [b["tokens"] for b in timed],
        "padded_tokens_per_batch": [b["ids"].numel() for b in timed],
        "seconds_per_step": seconds,
        "median_seconds": median,
        "mean_seconds": statistics.fmean(seconds),
        "utterances_per_second": batch_size / median,
        "loss_per_step": losses,
        "checksum": sum(losses),  # as mmer's: the sum of the timed steps' losses
        "warmup_loss": warmup_loss,
        "lower_states_seconds": lower_seconds,
        "optimizer": {
            "name": "AdamW",
            "learning_rate": lr,
            "weight_decay": weight_decay,
            "betas": list(ADAM_BETAS),
            "eps": ADAM_EPS,
            "implementation": implementation,
        },
        "dropout": {"hidden": config.hidden_dropout_prob, "attention": config.attention_probs_dropout_prob},
        "reference_check_max_abs_diff": check,
        "environment": env,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
