"""Which MPNet layer carries MELD's emotion? A linear probe per layer.

For every MELD utterance (train/dev/test CSVs), the masked mean of each of
all-mpnet-base-v2's 13 hidden states (embeddings + 12 layers; the last one
is what sentence-transformers' vector pools) is fitted by an utterance-only
logistic regression on train and scored (weighted F1) on dev and test. The
layer choice of docs/configs/meld-mpnet-layer8.toml is the best *dev* score;
test is printed only to report it.

Run from the repository root (CPU torch + transformers + scikit-learn;
weights from scripts/setup.sh), about 10 minutes on 2 cores:
    python scripts/probe_mpnet_layers.py [MELD dir] > docs/results/meld-mpnet-layer-probe.txt
"""
import csv, sys, time, numpy as np, torch
from transformers import AutoTokenizer, AutoModel
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
torch.set_num_threads(2)
root = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/meld"
def read(split):
    with open(f"{root}/{split}_sent_emo.csv", encoding="utf-8", errors="replace") as f:
        rows = list(csv.DictReader(f))
    return [r["Utterance"] for r in rows], [r["Emotion"] for r in rows]
tok = AutoTokenizer.from_pretrained("models/all-mpnet-base-v2")
model = AutoModel.from_pretrained("models/all-mpnet-base-v2").eval()
def embed(texts):
    order = np.argsort([len(t) for t in texts]); out = [None]*len(texts)
    for s in range(0, len(texts), 32):
        idx = order[s:s+32]
        enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=384, return_tensors="pt")
        with torch.no_grad():
            hs = model(**enc, output_hidden_states=True).hidden_states  # 13 x [b, s, 768]
        m = enc["attention_mask"].unsqueeze(-1).float()
        pooled = torch.stack([(h*m).sum(1)/m.sum(1) for h in hs], 1)  # [b, 13, 768]
        for k, i in enumerate(idx): out[i] = pooled[k].numpy()
    return np.stack(out)
data = {}
for split in ["train", "dev", "test"]:
    t0 = time.time(); x, y = read(split); data[split] = (embed(x), np.array(y))
    print(split, data[split][0].shape, f"{time.time()-t0:.0f}s", flush=True)
def probe(f):
    xtr, xdv, xte = (f(data[s][0]) for s in ["train", "dev", "test"])
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    clf = LogisticRegression(max_iter=300, C=0.1).fit((xtr-mu)/sd, data["train"][1])
    return [100*f1_score(data[s][1], clf.predict((x-mu)/sd), average="weighted") for s, x in [("dev", xdv), ("test", xte)]]
for layer in range(13):
    print("layer", layer, "dev/test wF1 %.2f %.2f" % tuple(probe(lambda x: x[:, layer])), flush=True)
print("mean 9-12", "%.2f %.2f" % tuple(probe(lambda x: x[:, 9:].mean(1))), flush=True)
print("concat 8+12", "%.2f %.2f" % tuple(probe(lambda x: np.concatenate([x[:, 8], x[:, 12]], 1))), flush=True)
