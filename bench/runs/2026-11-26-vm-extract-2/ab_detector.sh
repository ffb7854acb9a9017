#!/bin/bash
# Alternating A/B of mmer extract on one clip: old (lead's main release binary) vs new (extract-fixes).
export MMER_MODELS_DIR=/work/main/models RAYON_NUM_THREADS=2 RAYON_RS_NUM_CPUS=2
old=/work/main/target/release/mmer; new=/work/wt-extract-target/release/mmer
for i in 0 1 2 3 4 5; do
  for side in old new; do
    bin=${!side}
    echo "$side $i $(cut -d' ' -f1 /proc/loadavg) $(nice -n 19 $bin extract /tmp/bench10.mp4 --out /tmp/ab-$side --jobs 1 --force --json 2>/dev/null | python3 -c 'import json,sys; r=json.load(sys.stdin); f=r["files"][0]; print(round(r["wall_s"]*1e3,1), json.dumps({k: round(v,1) for k,v in f["stages_ms"].items()}))')"
  done
done
