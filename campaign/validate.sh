#!/usr/bin/env bash
# Validate one epoch of the default's campaign (or any weights) on a held-out list of WIDER
# training images: official protocol, each image at its native size, raw scores (the EMA weights
# as checkpoint_weights.py writes them, no calibration). The result is appended to
# campaign/spotnet_s2/validation.jsonl, committed with the campaign, so a number in MODELS.md's
# table is never lost with a machine (they lived in a terminal and a helper, and were lost with one).
#
#   bash campaign/validate.sh 47                  # ../snapshots/spotnet_s2/epoch_047.pt (snapshots.sh)
#   bash campaign/validate.sh W.safetensors NAME  # any weights, logged as NAME
#   SPLIT=calibration bash campaign/validate.sh 47   # the calibration hold-out instead (release choice)
#
# Under a minute for the 152 images on 2 cores beside the campaign. Needs ../data/wider-train
# (../shared/tools/wider_val_train.sh) and ../shared/data/widerface/eval_tools.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n '8,10p' "$0" >&2; exit 2; }
SPLIT=${SPLIT:-validation}
LIST=configs/splits/wider_val_train_$SPLIT.txt
[ -f "$LIST" ] || { echo "no $LIST (SPLIT is validation or calibration)" >&2; exit 2; }
IMAGES=../data/wider-train/WIDER_val/images
GT=../shared/data/widerface/eval_tools
[ -d "$IMAGES" ] || { echo "no $IMAGES: lay the data out first (../shared/tools/wider_val_train.sh)" >&2; exit 2; }
[ -d "$GT" ] || { echo "no $GT (the WIDER ground truth, from ../shared)" >&2; exit 2; }
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
FACESPOT=${FACESPOT:-$( [ -x .venv/bin/facespot ] && echo .venv/bin/facespot || echo facespot )}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
if [[ "$1" =~ ^[0-9]+$ ]]; then
    NAME=epoch_$(printf %03d "$((10#$1))")
    SNAPSHOT=../snapshots/spotnet_s2/$NAME.pt
    [ -f "$SNAPSHOT" ] || { echo "no $SNAPSHOT (campaign/snapshots.sh keeps one per finished epoch)" >&2; exit 2; }
    "$PYTHON" scripts/checkpoint_weights.py "$SNAPSHOT" "$WORK/weights.safetensors" >/dev/null
    WEIGHTS=$WORK/weights.safetensors
    SOURCE=$SNAPSHOT
else
    WEIGHTS=$1
    NAME=${2:-$(basename "$1")}
    SOURCE=$WEIGHTS
    [ -f "$WEIGHTS" ] || { echo "no $WEIGHTS" >&2; exit 2; }
fi
# the listed images, as <event>/<name>.jpg, so that --wider-out names its files for the protocol
grep -v '^\s*#' "$LIST" | grep -v '^\s*$' | while read -r key; do
    mkdir -p "$WORK/images/$(dirname "$key")"
    ln -s "$(realpath "$IMAGES/$key.jpg")" "$WORK/images/$key.jpg"
done
"$FACESPOT" detect "$WORK/images" --model "$WEIGHTS" --wider-out "$WORK/pred" --no-progress >/dev/null
"$FACESPOT" eval wider --pred "$WORK/pred" --gt "$GT" --images "$LIST" --json "$WORK/ap.json" >/dev/null
"$PYTHON" - "$WORK/ap.json" "$NAME" "$SPLIT" "$SOURCE" <<'PY' | tee -a campaign/spotnet_s2/validation.jsonl
import datetime, hashlib, json, sys
ap = json.load(open(sys.argv[1]))
sha = hashlib.sha256(open(sys.argv[4], "rb").read()).hexdigest()[:12]
s = ap["settings"]
print(json.dumps({"name": sys.argv[2], "split": sys.argv[3], "easy": round(s["easy"]["ap"], 4),
                  "medium": round(s["medium"]["ap"], 4), "hard": round(s["hard"]["ap"], 4),
                  "images": ap["images"], "source_sha256": sha,
                  "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")}))
PY
