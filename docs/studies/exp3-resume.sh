#!/bin/sh
# Experiment 3 (docs/results.md): continue the 5x retrainings from the committed snapshots, on a
# machine where this repository is installed and built (npm ci && npm run build). Two chains, one
# core each; every finished run is written to the study at once, and running this again continues.
#   sh docs/studies/exp3-resume.sh WORKDIR
# WORKDIR holds the live studies (unpacked here from docs/studies/*.sqlite.gz when missing) and
# the logs (WORKDIR/runs/*.log). Snapshots back into the repository:
#   python3 docs/studies/exp3-snapshot.py WORKDIR exp3-evo1 exp3-evo2 exp3-random1
set -eu
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${1:?usage: sh docs/studies/exp3-resume.sh WORKDIR}
PRIMER="$REPO/node_modules/.bin/primer"
[ -x "$PRIMER" ] || { echo "build the repository first: npm ci && npm run build" >&2; exit 2; }
mkdir -p "$WORK/runs"
cd "$WORK"
for s in exp3-evo1 exp3-evo2 exp3-random1; do
  [ -f "$s.sqlite" ] || gunzip -c "$REPO/docs/studies/$s.sqlite.gz" > "$s.sqlite"
done
# evolution seed 1's best program that keeps attention (the exploratory addition of 03:15)
[ -f runs/evo1-candidate-105.json ] || "$PRIMER" study dna exp3-evo1.sqlite 105 --out runs/evo1-candidate-105.json
RETRAIN="--top 5 --seeds 3 --against primer-ez --workers 1"
(
  "$PRIMER" study retrain exp3-evo2.sqlite $RETRAIN --baselines primer-ez --reuse-from exp3-evo1.sqlite >> runs/exp3-evo2-retrain.log 2>&1
  echo "chain A done $(date -u)"
) &
(
  "$PRIMER" study retrain exp3-evo1.sqlite $RETRAIN --baselines primer-ez,primer >> runs/exp3-evo1-retrain.log 2>&1
  "$PRIMER" study retrain exp3-evo1.sqlite --top 0 --baselines runs/evo1-candidate-105.json,primer-ez --against primer-ez --seeds 3 --workers 1 >> runs/exp3-evo1-c105.log 2>&1
  "$PRIMER" study retrain exp3-random1.sqlite $RETRAIN --baselines primer-ez --reuse-from exp3-evo1.sqlite >> runs/exp3-random1-retrain.log 2>&1
  echo "chain B done $(date -u)"
) &
wait
