// `npx vite-node --config vitest.config.ts tools/exp3-trend.ts [STUDIES_DIR]`: experiment 3's
// compute-trend estimate (docs/results.md, "How the compute-trend estimate is made", fixed before
// the runs it reads). For each proxy budget B that was searched and retrained at 5x, the gap G(B)
// between the best attention-keeping searched program's 5x perplexity and Primer-EZ's, paired by
// seed (mean and 95% Student-t interval); then the line through log2(B) -> G and the B where it
// reaches 0, with the range the points' intervals allow. Reads the committed studies (gzipped or
// not) and the pilots' reference curves; writes nothing.
//
// "Attention-keeping": the program's main subprogram reaches its multi_head_attention subprogram
// through live calls (analyzeDna's `used`). "Searched": a program of the study other than its seed
// (a DNA file given to a retraining counts when it is one of the study's candidates). "Best": the
// lowest mean 5x perplexity over the seeds recorded, among the searched attention-keeping programs
// retrained at 5x.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeDna, dnaHash, type Dna } from '@primer-search/dna';
import { openStudyStore, type StudyStore } from '@primer-search/store';
import { seedStatistics } from '@primer-search/study';

const dir = process.argv[2] ?? 'docs/studies';

/** The final perplexity of each run of a `primer compare --csv` file, by model and seed. */
function finalFromCsv(file: string): Map<string, number> {
  const out = new Map<string, number>();
  const [head, ...rows] = readFileSync(file, 'utf8').trim().split('\n');
  const col = head!.split(',');
  const [m, s, p] = ['model', 'seed', 'perplexity'].map((c) => col.indexOf(c));
  for (const row of rows) {
    const x = row.split(',');
    out.set(`${x[m!]}/${x[s!]}`, Number(x[p!])); // the last row of a run is its end
  }
  return out;
}

function keepsAttention(dna: Dna): boolean {
  const used = analyzeDna(dna).used;
  return dna.subprograms.some((sp, i) => sp.name === 'multi_head_attention' && used[i]);
}

interface Program {
  study: string;
  label: string;
  attention: boolean;
  searched: boolean;
  bySeed: Map<number, number>;
}

/**
 * The programs of a study's retrainings at `budget`, with their runs by seed. `firstFidelity`: only
 * the study's first fidelity measurement (a pilot's sample; pilot 2 also holds an unplanned second
 * measurement, set aside in results.md).
 */
async function programsAt(file: string, budget: string, firstFidelity = false): Promise<Program[]> {
  const store: StudyStore = await openStudyStore(join(dir, file), { readonly: true, snapshot: true });
  try {
    const config = (await store.config()) as { seedDna: Dna } | undefined;
    if (!config) throw new Error(`${file} holds no study`);
    const candidates = new Set((await store.candidates()).filter((c) => c.id !== 0).map((c) => c.hash));
    const seedHash = dnaHash(config.seedDna);
    const byHash = new Map<string, Program>();
    const plans = await store.retrains();
    const firstSample = plans.find((p) => p.sample !== undefined);
    for (const plan of plans) {
      if (plan.budget.replace(/\s+/g, '').toLowerCase() !== budget) continue;
      if (firstFidelity && plan !== firstSample) continue;
      const runs = await store.retrainRuns(plan.id);
      plan.programs.forEach((p, i) => {
        const prog = byHash.get(p.hash) ?? {
          study: file,
          label: p.label,
          attention: keepsAttention(p.dna as Dna),
          searched: p.hash !== seedHash && candidates.has(p.hash),
          bySeed: new Map<number, number>(),
        };
        byHash.set(p.hash, prog);
        for (const r of runs) if (r.program === i && r.status === 'completed' && r.fitness !== null) prog.bySeed.set(r.seed, r.fitness);
      });
    }
    return [...byHash.values()];
  } finally {
    await store.close();
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const f2 = (x: number) => x.toFixed(2);

interface Point {
  name: string;
  budget: number;
  best: Program;
  gap: { mean: number; low: number; high: number; n: number };
}

async function point(name: string, budget: number, files: string[], retrainBudget: string, pez: (seed: number) => number | undefined, firstFidelity = false): Promise<Point | undefined> {
  const all = (await Promise.all(files.map((f) => programsAt(f, retrainBudget, firstFidelity)))).flat();
  console.log(`\n${name} (proxy ${budget.toExponential(0)} FLOPs; 5x runs at ${retrainBudget}):`);
  for (const p of all) {
    const seeds = [...p.bySeed.entries()].sort((a, b) => a[0] - b[0]);
    console.log(
      `  ${p.study.padEnd(26)} ${p.label.padEnd(24)} ${p.attention ? 'attention ' : 'no attention'} ${p.searched ? 'searched' : '        '}  ${seeds.map(([s, x]) => `s${s} ${f2(x)}`).join('  ')}`,
    );
  }
  const eligible = all.filter((p) => p.attention && p.searched && p.bySeed.size > 0).sort((a, b) => mean([...a.bySeed.values()]) - mean([...b.bySeed.values()]));
  const best = eligible[0];
  if (!best) {
    console.log('  no searched attention-keeping program retrained yet');
    return undefined;
  }
  const diffs = [...best.bySeed.entries()].flatMap(([s, x]) => {
    const ref = pez(s);
    return ref === undefined ? [] : [x - ref];
  });
  if (diffs.length === 0) {
    console.log(`  best: ${best.label}; no Primer-EZ run with its seeds yet`);
    return undefined;
  }
  const st = seedStatistics(diffs);
  const ci = { mean: st.mean, low: st.interval?.[0] ?? Number.NaN, high: st.interval?.[1] ?? Number.NaN };
  console.log(`  best attention-keeping: ${best.study} ${best.label}; minus Primer-EZ, paired over ${diffs.length} seed(s): ${f2(ci.mean)} [${f2(ci.low)}, ${f2(ci.high)}]`);
  return { name, budget, best, gap: { mean: ci.mean, low: ci.low, high: ci.high, n: diffs.length } };
}

async function pezInStudies(files: string[], retrainBudget: string): Promise<(seed: number) => number | undefined> {
  const runs = new Map<number, number>();
  for (const f of files) for (const p of await programsAt(f, retrainBudget)) if (p.label === 'primer-ez') for (const [s, x] of p.bySeed) if (!runs.has(s)) runs.set(s, x);
  return (seed) => runs.get(seed);
}

const pilot1Refs = finalFromCsv(join(dir, 'exp3-pilot1-refs-1e13.csv'));
const pilot2Refs = finalFromCsv(join(dir, 'exp3-pilot2-refs-2e13.csv'));
const main = ['exp3-evo1.sqlite.gz', 'exp3-evo2.sqlite.gz', 'exp3-random1.sqlite.gz'];
const points = [
  await point('pilot 1', 2e12, ['exp3-pilot1.sqlite.gz'], '1e13flops', (s) => pilot1Refs.get(`primer-ez/${s}`), true),
  await point('pilot 2', 4e12, ['exp3-pilot2.sqlite.gz'], '2e13flops', (s) => pilot2Refs.get(`primer-ez/${s}`), true),
  await point('main searches', 4e12, main, '2e13flops', await pezInStudies(main, '2e13flops')),
].filter((p): p is Point => p !== undefined);

// least squares through (log2 B, G)
function zeroOf(pts: Array<{ x: number; y: number }>): number | undefined {
  const mx = mean(pts.map((p) => p.x));
  const my = mean(pts.map((p) => p.y));
  const sxx = pts.reduce((a, p) => a + (p.x - mx) ** 2, 0);
  if (sxx === 0) return undefined;
  const slope = pts.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0) / sxx;
  if (slope >= 0) return undefined; // the gap does not shrink with B: no crossing ahead
  return 2 ** (mx - my / slope);
}
console.log('\nthe trend (a direction, not a forecast: two budgets, samples of different sizes):');
const line = points.map((p) => ({ x: Math.log2(p.budget), y: p.gap.mean }));
const z = zeroOf(line);
console.log(`  through the points' means: ${z === undefined ? 'no crossing (the gap does not shrink as B grows)' : `G reaches 0 at B = ${z.toExponential(1)} FLOPs per candidate`}`);
// the range the intervals allow: the line through every choice of each point's interval ends
const ends = points.map((p) => [p.gap.low, p.gap.high]);
if (ends.some(([a, b]) => !Number.isFinite(a!) || !Number.isFinite(b!))) console.log('  range: not yet (a point has one seed, so no interval)');
else {
  const zeros: Array<number | undefined> = [];
  for (let mask = 0; mask < 2 ** points.length; mask++) zeros.push(zeroOf(points.map((p, i) => ({ x: Math.log2(p.budget), y: ends[i]![(mask >> i) & 1]! }))));
  const found = zeros.filter((x): x is number => x !== undefined);
  const already = points.some((p) => p.gap.low <= 0);
  console.log(
    `  range over the lines through the points' interval ends: ${found.length ? `${Math.min(...found).toExponential(1)} to ${Math.max(...found).toExponential(1)}` : 'none crosses'}` +
      `${found.length < zeros.length ? `; ${zeros.length - found.length} of ${zeros.length} lines never cross (no upper bound)` : ''}${already ? '; an interval already reaches 0 (no lower bound)' : ''}`,
  );
}
