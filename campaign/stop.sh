#!/usr/bin/env bash
# Stop a campaign started by campaign/run.sh without losing what it trained: SIGTERM makes
# `facespot train` finish the step under way, save last.pt at that batch and exit (143); the
# next `bash campaign/run.sh ...` resumes there. Commit last.pt and metrics.jsonl afterwards.
#
#   bash campaign/stop.sh                          # campaign/spotnet_s2
#   bash campaign/stop.sh campaign/grid_mobilenetv2_reach
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${1:-campaign/spotnet_s2}
# the Python process of the run (not the `bash -c time ...` wrapper, which reports its CPU time)
PIDS=$(pgrep -f "python[0-9.]* .*facespot train .*--out $RUN( |$)" || true)
if [ -z "$PIDS" ]; then echo "no training of $RUN is running"; exit 0; fi
kill -TERM $PIDS
for _ in $(seq 1 600); do  # a step, the save, the loader's workers: seconds; a validation pass: minutes
    kill -0 $PIDS 2>/dev/null || { tail -n 2 "$RUN/train.log"; exit 0; }
    sleep 1
done
echo "still running after 10 minutes (validating?): pid(s) $PIDS" >&2; exit 1
