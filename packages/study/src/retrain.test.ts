import { describe, expect, it } from 'vitest';
import type { RetrainPlan, RetrainRun } from './records.js';
import { summarizeRetrain } from './retrain.js';

const plan = (over: Partial<RetrainPlan> = {}): RetrainPlan => ({
  id: 1,
  top: 1,
  budget: '20s',
  seeds: [1, 2],
  references: [],
  settings: { dataset: 'brown', tokenizer: 'byte', layers: 1, dModel: 16, seqLen: 16, batch: 4, seed: 1, evalWindows: 2, train: {}, budget: { kind: 'seconds', seconds: 20 } },
  programs: [
    { label: 'seed (vanilla)', hash: 'h0', candidate: 0, searchFitness: 30, dna: {} },
    { label: 'candidate 3', hash: 'h3', candidate: 3, searchFitness: 25, dna: {} },
  ],
  createdAt: '2026-12-02T00:00:00.000Z',
  ...over,
});

/** A run whose validation loss is `losses[k]` after 10(k+1) seconds. */
const run = (program: number, seed: number, losses: number[] | null): RetrainRun => ({
  retrain: 1,
  program,
  seed,
  status: losses ? 'completed' : 'failed',
  fitness: losses ? Math.exp(losses.at(-1)!) : null,
  reason: losses ? null : 'diverged: the training loss stopped being finite at step 3',
  curve: (losses ?? []).map((loss, k) => ({ step: k + 1, tokens: 0, seconds: 10 * (k + 1), perplexity: Math.exp(loss) })),
  steps: 2,
  tokens: 0,
  trainSeconds: 20,
  wallSeconds: 21,
  backend: 'wasm',
  machine: 'here',
  environment: null,
  parameters: 100,
  vocabSize: Math.exp(5),
  finishedAt: '2026-12-02T00:00:00.000Z',
});

describe('summarizeRetrain', () => {
  it('gives mean ± sd over seeds, speedups paired by seed as a geometric mean, and with two seeds no interval and no verdict', () => {
    const runs = [run(0, 1, [4, 3]), run(1, 1, [3.5, 2.5]), run(0, 2, [4, 3.1]), run(1, 2, [3, 2.4])];
    const s = summarizeRetrain(plan(), runs);
    expect([s.done, s.total, s.axis]).toEqual([4, 4, 'seconds']);
    const [ref, c3] = s.rows;
    expect(ref!.perplexity!.mean).toBeCloseTo((Math.exp(3) + Math.exp(3.1)) / 2, 10);
    // seed 1: the seed reaches loss 3 at 20 s, candidate 3 halfway between 10 s (3.5) and 20 s (2.5): 15 s
    // seed 2: the seed reaches 3.1 at 20 s, candidate 3 between 0 s (loss 5) and 10 s (3): at 9.5 s
    expect(c3!.speedup!.mean).toBeCloseTo(Math.sqrt((20 / 15) * (20 / 9.5)), 10);
    expect(c3!.speedup!.interval).toBeUndefined();
    const diffs = [Math.exp(2.5) - Math.exp(3), Math.exp(2.4) - Math.exp(3.1)];
    expect(c3!.perplexityDifference!.mean).toBeCloseTo((diffs[0]! + diffs[1]!) / 2, 10);
    expect(c3!.perplexityDifference!.interval).toBeUndefined();
    expect(c3!.verdict).toBeUndefined();
    expect(ref!.verdict).toBeUndefined();
    expect(s.winner).toMatchObject({ program: 1, label: 'candidate 3', isReference: false });
    expect(s.winner!.verdict).toBeUndefined();
    expect(s.table.end).toMatch(/2 seeds: too few to say whether it differs from the seed beyond the noise/);
    expect(s.table.notes.join('\n')).toMatch(/2 seeds are too few for a 95% interval or a verdict/);
    expect(s.table.notes[0]).toMatch(/in seconds \(a time budget\), so it depends on the machine and its load/);
  });

  it('gives speedup intervals on the log scale from three seeds (never below 0), checked by hand', () => {
    const p = plan({ seeds: [1, 2, 3] });
    // the seed ends at loss 3 at 20 s; candidate 3 reaches 3 at 10 s, 5 s, 20 s (speedups 2, 4, 1)
    const runs = [run(0, 1, [4, 3]), run(0, 2, [4, 3]), run(0, 3, [4, 3]), run(1, 1, [3, 2.9]), run(1, 2, [3, 3, 2.9].slice(0, 2)), run(1, 3, [4, 3])];
    runs[4] = { ...runs[4]!, curve: [{ step: 1, tokens: 0, seconds: 5, perplexity: Math.exp(3) }, { step: 2, tokens: 0, seconds: 20, perplexity: Math.exp(2.95) }], fitness: Math.exp(2.95) };
    const s = summarizeRetrain(p, runs);
    const logs = [Math.log(2), Math.log(4), Math.log(1)];
    const m = logs.reduce((a, b) => a + b) / 3;
    const sd = Math.sqrt(logs.reduce((a, v) => a + (v - m) ** 2, 0) / 2);
    const half = (4.303 * sd) / Math.sqrt(3);
    const sp = s.rows[1]!.speedup!;
    expect(sp.mean).toBeCloseTo(2, 10);
    expect(sp.interval![0]).toBeCloseTo(Math.exp(m - half), 10);
    expect(sp.interval![1]).toBeCloseTo(Math.exp(m + half), 10);
    expect(sp.interval![0]).toBeGreaterThan(0);
    // the table words the same figures, and the verdict cell is beside the difference it is about
    const row = s.table.rows[1]!.cells;
    expect(row[5]).toBe(`2.00x [${Math.exp(m - half).toFixed(2)}, ${Math.exp(m + half).toFixed(2)}]`);
    expect(s.table.columns[6]).toMatch(/^perplexity − seed's \(mean \[95%\], verdict\)$/);
  });

  it('says better when every seed agrees beyond the noise, counts seeds where the reference quality is never reached, and names no winner before the end', () => {
    const p = plan({ seeds: [1, 2, 3], programs: [...plan().programs, { label: 'primer-ez', hash: 'hz', candidate: null, searchFitness: null, dna: {} }] });
    const runs = [1, 2, 3].flatMap((seed) => [run(0, seed, [4, 3 + seed / 100]), run(1, seed, [3, 2.5 + seed / 1000]), run(2, seed, [4.5, 3.5])]);
    const s = summarizeRetrain(p, runs);
    expect(s.rows[1]!.verdict).toBe('better');
    expect(s.rows[2]!.verdict).toBe('worse');
    expect(s.rows[2]!.notReached).toBe(3);
    expect(s.rows[2]!.speedup).toBeUndefined();
    expect(s.winner?.label).toBe('candidate 3');
    const partial = summarizeRetrain(p, runs.slice(0, 7));
    expect([partial.done, partial.total, partial.winner]).toEqual([7, 9, undefined]);
    // a failed run: counted, left out of the statistics, and no paired verdict
    const failed = summarizeRetrain(p, [...runs.filter((r) => !(r.program === 1 && r.seed === 2)), run(1, 2, null)]);
    expect([failed.rows[1]!.completed, failed.rows[1]!.failed, failed.rows[1]!.perplexity!.n, failed.rows[1]!.verdict]).toEqual([2, 1, 2, undefined]);
    // its steps are those of the runs that completed, not averaged with where the failure stopped
    const stoppedEarly = summarizeRetrain(p, [...runs.filter((r) => !(r.program === 1 && r.seed === 2)), { ...run(1, 2, null), steps: 50 }]);
    expect(stoppedEarly.rows[1]!.steps).toBe(2);
    // the winner is of the programs that completed every seed, and the one left out is named with its mean
    expect(failed.winner!.label).toBe('seed (vanilla)');
    expect(failed.table.end).toMatch(/^winner: the seed itself .*: no other program that completed every seed has a lower mean perplexity\. Left out for failing at a seed: candidate 3 \([\d.]+ over the 2 of 3 seeds it completed\)\.$/);
  });

  it("gives each program's in-context score at its last evaluation, mean ± sd over the seeds, and no column for runs that recorded none", () => {
    const p = plan({ seeds: [1, 2, 3] });
    const scored = (r: RetrainRun, scores: Array<number | undefined>): RetrainRun => ({ ...r, curve: r.curve.map((c, k) => (scores[k] === undefined ? c : { ...c, inContext: scores[k] })) });
    const runs = [
      scored(run(0, 1, [4, 3]), [0.5, 0.1]),
      scored(run(0, 2, [4, 3]), [0.5, 0.2]),
      scored(run(0, 3, [4, 3]), [0.5, 0.3]),
      // the last evaluation's score, not the first's; a seed whose score was not finite is left out and said
      scored(run(1, 1, [3, 2.9]), [0.9, 0.4]),
      scored(run(1, 2, [3, 2.8]), [0.9, 0.6]),
      scored(run(1, 3, [3, 2.7]), [0.9, Number.NaN]),
    ];
    const s = summarizeRetrain(p, runs);
    expect(s.rows[0]!.inContext!.mean).toBeCloseTo(0.2, 12);
    expect(s.rows[0]!.inContext!.sd).toBeCloseTo(0.1, 12);
    expect([s.rows[1]!.inContext!.n, s.rows[1]!.inContext!.mean]).toEqual([2, 0.5]);
    expect(s.table.columns.at(-1)).toBe('in-context (mean ± sd)');
    expect(s.table.rows[0]!.cells.at(-1)).toBe('0.200 ± 0.100');
    expect(s.table.rows[1]!.cells.at(-1)).toBe(`0.500 ± ${Math.sqrt(0.02).toFixed(3)} (2 of 3 seeds)`);
    // a seed still to run: counted against the plan's seeds, as the perplexity column counts them
    const partial = summarizeRetrain(p, runs.filter((r) => !(r.program === 0 && r.seed === 3)));
    expect(partial.table.rows[0]!.cells.at(-1)).toBe(`0.150 ± ${Math.sqrt(0.005).toFixed(3)} (2 of 3 seeds)`);
    expect(partial.table.rows[0]!.cells[4]).toMatch(/ \(2 of 3 seeds\)$/);
    expect(s.table.notes.at(-1)).toMatch(/^in-context: the score at the last evaluation: validation loss over the first eighth of the positions minus over the last eighth .*, mean ± sd over the seeds\.$/);
    // older runs recorded no score: the table has no such column, nor its note
    const old = summarizeRetrain(p, runs.map((r) => ({ ...r, curve: r.curve.map(({ inContext: _, ...c }) => c) })));
    expect(old.rows[0]!.inContext).toBeUndefined();
    expect(old.table.columns.some((c) => c.startsWith('in-context'))).toBe(false);
    expect(old.table.notes.some((n) => n.startsWith('in-context'))).toBe(false);
  });

  it('measures against another program when asked (e.g. a reference model), and refuses one the plan does not have', () => {
    const p = plan({ programs: [...plan().programs, { label: 'primer-ez', hash: 'hz', candidate: null, searchFitness: null, dna: {} }] });
    const runs = [1, 2].flatMap((seed) => [run(0, seed, [4, 3 + seed / 10]), run(1, seed, [3.5, 2.5 + seed / 100]), run(2, seed, [3.8, 2.8 + seed / 50])]);
    const s = summarizeRetrain(p, runs, 2);
    expect([s.reference, s.referenceProgram]).toEqual(['primer-ez', 2]);
    expect(s.rows[2]!.verdict).toBeUndefined();
    // the seed's difference from primer-ez, paired by seed, by hand
    const diffs = [1, 2].map((seed) => Math.exp(3 + seed / 10) - Math.exp(2.8 + seed / 50));
    expect(s.rows[0]!.perplexityDifference!.mean).toBeCloseTo((diffs[0]! + diffs[1]!) / 2, 10);
    // the seed never reaches primer-ez's final loss; candidate 3 does: seed 1, primer-ez ends at 2.82 at 20 s, candidate 3 passes it between 10 s (3.5) and 20 s (2.51)
    expect([s.rows[0]!.notReached, s.rows[0]!.speedup]).toEqual([2, undefined]);
    expect(s.rows[1]!.notReached).toBe(0);
    const at1 = 10 + (10 * (3.5 - 2.82)) / (3.5 - 2.51);
    const at2 = 10 + (10 * (3.5 - 2.84)) / (3.5 - 2.52);
    expect(s.rows[1]!.speedup!.mean).toBeCloseTo(Math.sqrt((20 / at1) * (20 / at2)), 10);
    expect(s.winner).toMatchObject({ label: 'candidate 3', isReference: false });
    expect(s.table.title).toMatch(/^retraining 1: the seed and the 1 best program of the search, with references · /);
    // --top 0: the seed alone beside the references, said so
    expect(summarizeRetrain({ ...p, top: 0, programs: [p.programs[0]!, p.programs[2]!] }, runs.filter((r) => r.program !== 1).map((r) => ({ ...r, program: r.program === 2 ? 1 : 0 }))).table.title).toMatch(/^retraining 1: the seed, with references · 20s per run · /);
    expect(() => summarizeRetrain(p, runs, 3)).toThrow(/retraining 1 has no program 3 to measure against \(it has 3\)/);
    // by default, the seed
    expect(summarizeRetrain(p, runs).referenceProgram).toBe(0);
  });

  it('measures speedups in training FLOPs under a FLOP budget', () => {
    const p = plan({ settings: { ...plan().settings, budget: { kind: 'flops', flops: 2e9 } } });
    const withFlops = (r: RetrainRun, perSecond: number): RetrainRun => ({ ...r, curve: r.curve.map((e) => ({ ...e, flops: e.seconds * perSecond })) });
    // candidate 3 reaches the seed's final loss at 15 s but spends its FLOPs twice as fast
    const s = summarizeRetrain(p, [withFlops(run(0, 1, [4, 3]), 1e8), withFlops(run(1, 1, [3.5, 2.5]), 2e8)]);
    expect(s.axis).toBe('flops');
    expect(s.rows[1]!.speedup!.mean).toBeCloseTo(2e9 / 3e9, 10);
    expect(s.table.notes[0]).toMatch(/training FLOPs .* the same on every machine/);
  });

  it("measures speedups in steps under a step budget, whatever the seconds say (a loaded machine's slow run is no slower in steps)", () => {
    const p = plan({ seeds: [1], settings: { ...plan().settings, budget: { kind: 'steps', steps: 2 } } });
    const slow = (r: RetrainRun, factor: number): RetrainRun => ({ ...r, curve: r.curve.map((e) => ({ ...e, seconds: e.seconds * factor })) });
    // the same curves in steps; candidate 3's run took 3x the seconds
    const s = summarizeRetrain(p, [run(0, 1, [4, 3]), slow(run(1, 1, [4, 3]), 3)]);
    expect(s.axis).toBe('steps');
    expect(s.rows[1]!.speedup!.mean).toBeCloseTo(1, 12);
  });
});

describe('a retraining\'s provenance', () => {
  const env = (device: string, products: string) => ({ host: 'vm', backend: 'wasm', products, device, tfjs: '4.22.0', project: '0.1.0', node: 'v20' });
  it('says nothing when every run was made alike, here, also when one recorded no machine', () => {
    const env1 = env('AMD EPYC x2', 'native BLAS');
    const one = summarizeRetrain(plan(), [{ ...run(0, 1, [4, 3]), environment: env1 }, { ...run(1, 1, null), environment: null }]);
    expect(one.provenance).toEqual({ machines: [{ device: 'AMD EPYC x2', products: 'native BLAS', backend: 'wasm', runs: 1 }], unrecorded: 1, fromOtherStudies: [] });
    expect(one.table.notes.join('\n')).not.toMatch(/machines:/);

    const s = summarizeRetrain(plan(), [run(0, 1, [4, 3]), run(1, 1, [3.5, 2.5])]);
    expect(s.provenance).toEqual({ machines: [], unrecorded: 2, fromOtherStudies: [] });
    expect(s.table.notes.join('\n')).not.toMatch(/machines:|reused:/);
  });

  it('names the machines when there were several, and the runs copied from other studies', () => {
    const intel = env('Intel(R) Xeon(R) Processor x2', 'native BLAS (libopenblas.so.0, SkylakeX kernels)');
    const amd = env('AMD EPYC x2', 'native BLAS (libopenblas.so.0, Haswell kernels)');
    const runs = [
      { ...run(0, 1, [4, 3]), environment: intel },
      { ...run(1, 1, [3.5, 2.5]), environment: intel },
      { ...run(0, 2, [4, 3.1]), environment: amd, reusedFrom: { study: 'exp3-evo1.sqlite', studyId: 'x', retrain: 1, program: 0 } },
      // copied from this study's own retraining: not another study's
      { ...run(1, 2, [3, 2.4]), environment: intel, reusedFrom: { retrain: 2, program: 1 } },
      // a run that recorded no machine (a timeout): not a machine of its own
      { ...run(1, 3, null), environment: null },
      // the same machine with an older wording of its products: the same set-up
      { ...run(0, 3, [4, 3]), environment: { ...intel, products: 'native BLAS (libopenblas.so.0)' } },
    ];
    const s = summarizeRetrain(plan({ seeds: [1, 2, 3] }), runs);
    expect(s.provenance.machines.map((m) => [m.device, m.runs])).toEqual([['Intel(R) Xeon(R) Processor x2', 4], ['AMD EPYC x2', 1]]);
    expect(s.provenance.unrecorded).toBe(1);
    expect(s.provenance.fromOtherStudies).toEqual([{ study: 'exp3-evo1.sqlite', studyId: 'x', retrain: 1, runs: 1 }]);
    const notes = s.table.notes.join('\n');
    expect(notes).toContain(
      'machines: the runs were made on 2 set-ups (4 on Intel(R) Xeon(R) Processor x2, wasm, native BLAS (libopenblas.so.0, SkylakeX kernels); 1 on AMD EPYC x2, wasm, native BLAS (libopenblas.so.0, Haswell kernels); 1 recorded none); the same run made on two of them can differ slightly (floating-point sums in another order).',
    );
    expect(notes).toContain("reused: 1 run of exp3-evo1.sqlite's retraining 1 (the same program, seed and settings).");
  });
});
