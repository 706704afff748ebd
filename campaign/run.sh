#!/usr/bin/env bash
# Start, or continue on any machine, a training campaign kept in this folder (niced, in the
# background; the log goes to campaign/<run>/train.log). Its state (last.pt: weights, optimiser,
# schedule, EMA, epoch) is committed with the repository, so a new machine continues where the
# last one stopped once the training data is laid out again (MODELS.md, "Training data").
#
#   bash campaign/run.sh                 # spotnet_s2: the second-generation default
#   bash campaign/run.sh RECIPE RUN [INIT_WEIGHTS [TRAIN_OPTIONS...]]   (the same options again to resume)
#   THREADS=1 NICE=12 bash campaign/run.sh configs/grid_mobilenetv2_cpu.yaml campaign/grid_mobilenetv2
#   bash campaign/stop.sh [RUN]          # stop it: last.pt saved at the step under way (SIGTERM)
#   bash campaign/snapshots.sh [RUN]     # beside it: a copy of last.pt per finished epoch (../snapshots/)
#   bash campaign/anneal.sh EPOCH        # a release candidate: that epoch, its learning rate annealed (2 epochs)
set -euo pipefail
cd "$(dirname "$0")/.."
RECIPE=${1:-configs/spotnet_s2.yaml}
RUN=${2:-campaign/spotnet_s2}
INIT=${3:-}
shift $(( $# < 3 ? $# : 3 ))  # what is left: facespot train options (--set ...), on every start and resume
mkdir -p "$RUN"
if [ -f "$RUN/last.pt" ]; then
    ARGS=(--resume "$RUN/last.pt")
elif [ -n "$INIT" ]; then
    ARGS=(--init "$INIT")
elif [ "$RUN" = campaign/spotnet_s2 ]; then
    # the first-generation default, as shipped in 2325a43 (its calibration is undone at load)
    git show 2325a43:src/facespot/weights/spotnet_s.safetensors > "$RUN/gen1_init.safetensors"
    ARGS=(--init "$RUN/gen1_init.safetensors")
else
    ARGS=()
fi
FACESPOT=${FACESPOT:-facespot}
command -v "$FACESPOT" >/dev/null || FACESPOT=.venv/bin/facespot
# THREADS=N: torch threads of this run (default: torch's, the cores) when several runs share the CPU;
# NICE=N: its niceness (default 10; the default's campaign ran at 2 beside niced test and benchmark work)
[ -n "${THREADS:-}" ] && export OMP_NUM_THREADS=$THREADS
echo "$(date -u +%FT%TZ) $FACESPOT train $RECIPE --out $RUN ${ARGS[*]} $* (OMP_NUM_THREADS=${OMP_NUM_THREADS:-default})" >> "$RUN/train.log"
# bash's `time` reports the CPU time of the run and its loader workers when it ends (CPU-hours in MODELS.md)
nohup nice -n "${NICE:-10}" bash -c 'time "$@"' _ "$FACESPOT" train "$RECIPE" --out "$RUN" "${ARGS[@]}" "$@" >> "$RUN/train.log" 2>&1 &
echo "started (pid $!): tail -f $RUN/train.log; metrics in $RUN/metrics.jsonl"
