#!/usr/bin/env bash
# Release new weights as the default (`spotnet-s2`), gates first: ship them into a copy of the
# weights folder, move the new files in, run the release gates, and put everything back if any
# gate fails. What a release then still needs is printed at the end (MODELS.md has each step).
#
#   bash scripts/release_default.sh campaign/spotnet_s2_anneal30/epoch_002.safetensors "SpotNet-s, second generation, ..."
#
# Gates: the fixture portraits and the rocket (tests/runtime/test_default_model.py), the 78
# held-out face-free photos (test_negatives_holdout.py), the landmarks (test_align.py), the other
# packaged models untouched (test_packaged_families.py). The docs come after, with the release's
# numbers (tests/runtime/test_weights_docs.py fails until they name the new files).
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:?usage: bash scripts/release_default.sh WEIGHTS.safetensors DESCRIPTION}
DESC=${2:?usage: bash scripts/release_default.sh WEIGHTS.safetensors DESCRIPTION}
[ -f "$W" ] || { echo "no weights file $W" >&2; exit 2; }
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
FOLDER=src/facespot/weights
if ! git diff HEAD --quiet -- "$FOLDER" || [ -n "$(git ls-files --others --exclude-standard -- "$FOLDER")" ]; then
    echo "$FOLDER has uncommitted changes: commit or restore them first (a failed gate restores it from git)" >&2; exit 2
fi
COPY=$(mktemp -d)/weights
trap 'rm -rf "$(dirname "$COPY")"' EXIT
cp -r "$FOLDER" "$COPY"
nice -n "${NICE:-5}" "$PYTHON" scripts/ship_model.py "$W" spotnet-s2 --recipe configs/spotnet_s2.yaml --file spotnet_s2 \
    --half --recall-offsets --default --folder "$COPY" --description "$DESC"
# the copy is the folder as this release leaves it (ship_model.py switched its manifest and removed
# the files it replaced; blur falls back until `anonymize_video.py --choose --write`): mirror it back
for f in "$FOLDER"/*; do [ -e "$COPY/${f##*/}" ] || rm -r -- "$f"; done
cp -r "$COPY"/. "$FOLDER"/
git status --short -- "$FOLDER"
if ! nice -n "${NICE:-5}" "$PYTHON" -m pytest -p no:cacheprovider tests/runtime/test_default_model.py \
        tests/runtime/test_negatives_holdout.py tests/runtime/test_align.py tests/runtime/test_packaged_families.py; then
    git checkout -- "$FOLDER"
    git clean -fq -- "$FOLDER"
    echo "a release gate failed: $FOLDER restored from git; nothing released" >&2
    exit 1
fi
cat <<EOF
released into $FOLDER (not committed). Still to do, with the campaign paused for the timings:
  python scripts/holdout_operating_point.py --model $FOLDER/spotnet_s2-NEW.safetensors --model OLD.safetensors  (git show HEAD:$FOLDER/<its spotnet_s2 file> > OLD.safetensors)
    first, on the validation hold-out: not better than the shipped default there, not worth the rest
  python benchmarks/model_report.py --model default --model spotnet-s --peers DIR --no-latency
    first: at 0.5 on wider-val-eval precision >= 0.95 and recall of faces >= 24 px >= 0.75 (MODELS.md,
    "Epoch 60, tried and not released"), else git checkout/clean $FOLDER: nothing released
  python benchmarks/anonymize_video.py --choose --choose-data wider-val-holdout --model default --write
  python -m pytest
  python benchmarks/anonymize_video.py
  python benchmarks/latency.py --models default src/facespot/weights/spotnet_s.safetensors --backends onnxruntime --threads 1 2 --peers DIR --runs 30 --rounds 3 --no-split --json LATENCY.json
  README.md, MODELS.md, src/facespot/weights/README.md (tests/runtime/test_weights_docs.py checks the file names)
EOF
