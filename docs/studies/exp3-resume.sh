#!/bin/sh
# Experiment 3 (docs/results.md): continue the runs from the committed snapshots (or from the live
# studies in WORKDIR, where they are), on a machine where this repository is installed and built
# (npm ci && npm run build). Every finished run is written to its study at once, a run under way
# keeps a checkpoint in WORKDIR/STUDY.checkpoints/ (so on the same disk it continues from there),
# and running this again continues everything.
#   sh docs/studies/exp3-resume.sh WORKDIR
# WORKDIR holds the live studies (unpacked here from docs/studies/*.sqlite.gz when missing) and
# the logs (WORKDIR/runs/*.log). Snapshots back into the repository:
#   python3 docs/studies/exp3-snapshot.py WORKDIR exp3-evo1 exp3-evo2 exp3-random1
# Two chains, one core each; the 20x retraining (priority 2 of the budget note of 06:20) trains two
# runs at once. Every run here is recorded (the experiment ended 2026-12-07 19:02): running this
# again trains nothing and prints the tables.
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
[ -f runs/best-c133.json ] || "$PRIMER" study dna exp3-evo1.sqlite 133 --out runs/best-c133.json
RETRAIN="--top 5 --seeds 3 --against primer-ez --workers 1"
TWENTY="--top 0 --budget 8e13flops --seeds 3 --against primer-ez --workers 2"
(
  # evolution seed 2's 5x retraining (done when it says 21 of 21)
  "$PRIMER" study retrain exp3-evo2.sqlite $RETRAIN --baselines primer-ez --reuse-from exp3-evo1.sqlite >> runs/exp3-evo2-retrain.log 2>&1
  # protocol item 5: candidate 133's parts ablated at the proxy budget (not recorded in the study: its output is committed)
  if [ ! -s "$REPO/docs/studies/exp3-evo1-ablate-133.txt" ] && [ ! -s runs/exp3-evo1-ablate-133.txt ]; then
    "$PRIMER" study ablate exp3-evo1.sqlite 133 --seeds 3 > runs/exp3-evo1-ablate-133.txt 2> runs/exp3-evo1-ablate-133.log
  fi
  # 20x: candidate 133 (the overall best at 5x), Primer-EZ and vanilla. Candidate 105's 20x runs are
  # not begun (the dated note of 2026-12-07 18:31 in docs/results.md); the experiment ended at 19:02.
  "$PRIMER" study retrain exp3-evo1.sqlite $TWENTY --baselines runs/best-c133.json,primer-ez >> runs/exp3-evo1-20x.log 2>&1
  echo "chain A done $(date -u)"
) &
(
  # the random search's 5x retraining
  "$PRIMER" study retrain exp3-random1.sqlite $RETRAIN --baselines primer-ez --reuse-from exp3-evo1.sqlite >> runs/exp3-random1-retrain.log 2>&1
  # candidate 105's ablation at the proxy budget (the dated note of 11:25; its output is committed)
  if [ ! -s "$REPO/docs/studies/exp3-evo1-ablate-105.txt" ] && [ ! -s runs/exp3-evo1-ablate-105.txt ]; then
    "$PRIMER" study ablate exp3-evo1.sqlite 105 --seeds 3 > runs/exp3-evo1-ablate-105.txt 2> runs/exp3-evo1-ablate-105.log
  fi
  echo "chain B done $(date -u)"
) &
wait
