#!/usr/bin/env bash
# Keep a copy of a campaign's last.pt after every finished epoch, for choosing a release on the
# validation hold-out later (last.pt alone is overwritten every 10 minutes). Runs beside
# campaign/run.sh until stopped; the copies (5.5 MB each) stay on the machine, outside the
# repository: ../snapshots/<run>/epoch_NNN.pt, NNN = epochs done.
#
#   nohup bash campaign/snapshots.sh > ../snapshots/watch.log 2>&1 &      # campaign/spotnet_s2
#   python scripts/checkpoint_weights.py ../snapshots/spotnet_s2/epoch_024.pt W.safetensors   # its EMA weights
set -uo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-campaign/spotnet_s2}
OUT=${2:-../snapshots/$(basename "$RUN")}
mkdir -p "$OUT"
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}  # one with facespot installed
while true; do
    n=$(grep -c '"epoch/loss"' "$RUN/metrics.jsonl" 2>/dev/null || echo 0)  # one line per finished epoch
    f=$OUT/epoch_$(printf %03d "$n").pt
    if [ "$n" != 0 ] && [ ! -f "$f" ] && [ ! -f "$f.missed" ] && [ -f "$RUN/last.pt" ]; then
        sleep 20  # last.pt is written right after the epoch's line
        # only a last.pt saved at that epoch's end (a watcher started mid-epoch finds one saved
        # inside the next epoch: that is not epoch n's state, and is marked missed, not kept)
        if cp "$RUN/last.pt" "$f.tmp" && "$PYTHON" - "$f.tmp" "$n" <<'PY'
import sys
from facespot.train.checkpoint import load_checkpoint
c = load_checkpoint(sys.argv[1])
sys.exit(0 if c.epoch == int(sys.argv[2]) and not c.batches_done else 1)
PY
        then
            mv "$f.tmp" "$f"
        else
            rm -f "$f.tmp"; touch "$f.missed"; echo "$(date -u +%FT%TZ) last.pt is not at the end of epoch $n: no copy"
        fi
    fi
    sleep 60
done
