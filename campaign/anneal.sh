#!/usr/bin/env bash
# Fork a release candidate off the default's campaign: 2 epochs of the same recipe from one
# epoch's EMA weights, the learning rate annealed (a fresh AdamW from 6e-4 down a cosine), while
# the campaign itself keeps its own schedule. Epoch 30 annealed this way found 7 points more of
# the faces >= 24 px at the operating point than epoch 24 (MODELS.md, "The second-generation default").
#
#   bash campaign/anneal.sh 30      # ../snapshots/spotnet_s2/epoch_030.pt (campaign/snapshots.sh keeps them)
#                                   #   -> campaign/spotnet_s2/epoch_030.safetensors (EMA weights, committed)
#                                   #   -> campaign/spotnet_s2_anneal30/ (niced, in the background)
#   then: python scripts/checkpoint_weights.py campaign/spotnet_s2_anneal30/last.pt W.safetensors
#   and bash scripts/release_default.sh W.safetensors DESCRIPTION (the release gates first).
#
# It shares the CPU with the campaign if that runs: stop it first (bash campaign/stop.sh) to
# have the fork done in ~30 minutes on 2 cores, and start it again afterwards (bash campaign/run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ "${1:-}" =~ ^[0-9]+$ ]] || { echo "usage: bash campaign/anneal.sh EPOCH (a finished epoch of the campaign, e.g. 30)" >&2; exit 2; }
EPOCH=$(printf %03d "$((10#$1))")
SNAPSHOT=../snapshots/spotnet_s2/epoch_$EPOCH.pt
INIT=campaign/spotnet_s2/epoch_$EPOCH.safetensors
RUN=campaign/spotnet_s2_anneal$((10#$EPOCH))
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}  # one with facespot installed
if [ ! -f "$INIT" ]; then
    [ -f "$SNAPSHOT" ] || { echo "no $SNAPSHOT (campaign/snapshots.sh keeps one per finished epoch) and no $INIT" >&2; exit 2; }
    "$PYTHON" scripts/checkpoint_weights.py "$SNAPSHOT" "$INIT"
fi
[ -f "$RUN/last.pt" ] && echo "$RUN exists: resuming it"
bash campaign/run.sh configs/spotnet_s2.yaml "$RUN" "$INIT" \
    --epochs 2 --set optim.lr=0.0006 --set schedule.warmup_epochs=0.1 --set val_every=100
