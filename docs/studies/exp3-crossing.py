#!/usr/bin/env python3
"""Experiment 3 (docs/results.md): where two programs' validation curves cross, seed by seed.

Reads the CSV of `primer study curves` on stdin and prints, for each seed that both programs ran,
their perplexities at each evaluation (paired by the evaluation's place in the run: the same
FLOPs, give or take a step), the last evaluation at which A is below B, and whether B stays below
A from the evaluation after it to the end:

    npx primer study curves docs/studies/exp3-evo1.sqlite.gz --retrain 3 \
      | python3 docs/studies/exp3-crossing.py best-c133 primer-ez
"""
import csv
import sys


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    a, b = sys.argv[1], sys.argv[2]
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for row in csv.DictReader(sys.stdin):
        if row["label"] not in (a, b) or row["perplexity"] == "" or row["flops"] == "":
            continue
        runs.setdefault((row["label"], row["seed"]), []).append((float(row["flops"]), float(row["perplexity"])))
    seeds = sorted({s for (_, s) in runs} & {s for (l, s) in runs if l == a} & {s for (l, s) in runs if l == b}, key=int)
    if not seeds:
        print(f"no seed has runs of both {a} and {b}", file=sys.stderr)
        return 1
    for seed in seeds:
        ca, cb = sorted(runs[(a, seed)]), sorted(runs[(b, seed)])
        n = min(len(ca), len(cb))
        print(f"seed {seed}: FLOPs, {a}, {b}, {a} minus {b}")
        for (fa, pa), (_, pb) in zip(ca[:n], cb[:n]):
            print(f"  {fa:.3g}  {pa:8.2f}  {pb:8.2f}  {pa - pb:+7.2f}")
        ahead = [k for k in range(n) if ca[k][1] < cb[k][1]]
        if not ahead:
            print(f"  {a} is never below {b}")
        elif ahead[-1] == n - 1:
            print(f"  {a} is below {b} at the end")
        else:
            last = ahead[-1]
            print(f"  {a} is last below {b} at {ca[last][0]:.3g} FLOPs; {b} is below {a} from {cb[last + 1][0]:.3g} FLOPs to the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
