// Ranking by several objectives, as NSGA-II does (Deb et al. 2002): non-dominated fronts and
// crowding distances. Every objective is minimised.

/** Whether `a` dominates `b`: no worse in every objective and better in one (all minimised). */
export function dominates(a: number[], b: number[]): boolean {
  // a value that is not a number (NaN) counts as the worst there is
  const v = (x: number) => (Number.isNaN(x) ? Infinity : x);
  let better = false;
  for (let i = 0; i < a.length; i++) {
    if (v(a[i]!) > v(b[i]!)) return false;
    if (v(a[i]!) < v(b[i]!)) better = true;
  }
  return better;
}

/**
 * The indices of the points no other point dominates (front 0 of `nonDominatedFronts`), in
 * memory proportional to the points: each point is compared with the front found so far.
 */
export function firstFront(points: number[][]): number[] {
  const order = points.map((_, i) => i).sort((a, b) => {
    for (let k = 0; k < (points[a]?.length ?? 0); k++) {
      const d = (Number.isNaN(points[a]![k]!) ? Infinity : points[a]![k]!) - (Number.isNaN(points[b]![k]!) ? Infinity : points[b]![k]!);
      if (d !== 0 && !Number.isNaN(d)) return d;
    }
    return a - b;
  });
  // sorted lexicographically, a point can only be dominated by one before it
  const front: number[] = [];
  for (const i of order) if (!front.some((j) => dominates(points[j]!, points[i]!))) front.push(i);
  return front.sort((a, b) => a - b);
}

/**
 * NSGA-II's fast non-dominated sort (Deb et al. 2002): each point's front, 0 for the points no
 * other dominates, 1 for those only front-0 points dominate, and so on. All objectives minimised.
 */
export function nonDominatedFronts(points: number[][]): number[] {
  const n = points.length;
  const dominatedBy = new Array<number>(n).fill(0);
  const dominating: number[][] = points.map(() => []);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (dominates(points[i]!, points[j]!)) {
        dominating[i]!.push(j);
        dominatedBy[j]!++;
      } else if (dominates(points[j]!, points[i]!)) {
        dominating[j]!.push(i);
        dominatedBy[i]!++;
      }
    }
  }
  const front = new Array<number>(n).fill(-1);
  let current = points.map((_, i) => i).filter((i) => dominatedBy[i] === 0);
  for (let rank = 0; current.length > 0; rank++) {
    const next: number[] = [];
    for (const i of current) {
      front[i] = rank;
      for (const j of dominating[i]!) if (--dominatedBy[j]! === 0) next.push(j);
    }
    current = next;
  }
  return front;
}

/**
 * NSGA-II's crowding distance of each point within its front: the sum over objectives of the
 * gap between its neighbours (normalised by the front's range); the extremes of each objective
 * get Infinity, so a front's ends are kept. Points of other fronts are not compared.
 */
export function crowdingDistances(points: number[][], fronts: number[]): number[] {
  const out = new Array<number>(points.length).fill(0);
  const byFront = new Map<number, number[]>();
  fronts.forEach((f, i) => byFront.set(f, [...(byFront.get(f) ?? []), i]));
  const m = points[0]?.length ?? 0;
  for (const members of byFront.values()) {
    if (members.length <= 2) {
      for (const i of members) out[i] = Infinity;
      continue;
    }
    for (let k = 0; k < m; k++) {
      const sorted = [...members].sort((a, b) => points[a]![k]! - points[b]![k]! || a - b);
      const lo = points[sorted[0]!]![k]!;
      const hi = points[sorted.at(-1)!]![k]!;
      out[sorted[0]!] = Infinity;
      out[sorted.at(-1)!] = Infinity;
      if (hi === lo) continue;
      for (let s = 1; s < sorted.length - 1; s++) out[sorted[s]!]! += (points[sorted[s + 1]!]![k]! - points[sorted[s - 1]!]![k]!) / (hi - lo);
    }
  }
  return out;
}

/** NSGA-II's crowded comparison: a lower front wins, then a larger crowding distance, then the lower index. */
export function crowdedBetter(i: number, j: number, fronts: number[], crowding: number[]): boolean {
  if (fronts[i] !== fronts[j]) return fronts[i]! < fronts[j]!;
  if (crowding[i] !== crowding[j]) return crowding[i]! > crowding[j]!;
  return i < j;
}
