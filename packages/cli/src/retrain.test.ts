import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { SqliteStudyStore, type RetrainRun } from '@primer-search/store';
import { describe, expect, it } from 'vitest';
import { runPrimer as run } from './__fixtures__/run.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const TINY = ['--layers', '1', '--d-model', '16', '--heads', '2', '--seq-len', '16', '--batch', '4', '--eval-windows', '2'];
const tmp = () => mkdtempSync(join(tmpdir(), 'primer-search-retrain-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function runsOf(file: string): Promise<RetrainRun[] | undefined> {
  try {
    const s = SqliteStudyStore.open(file, { readonly: true });
    try {
      return await s.retrainRuns();
    } finally {
      await s.close();
    }
  } catch {
    return undefined; // being written for the first time
  }
}

const key = (r: RetrainRun) => JSON.stringify([r.retrain, r.program, r.seed, r.status, r.fitness, r.steps, r.finishedAt]);

describe('primer study retrain', () => {
  const RETRAIN = ['--top', '2', '--seeds', '2', '--budget', '40steps', '--workers', '1'];

  it('retrains the seed and the best programs with several seeds, continues after SIGKILL, and ends with the numbers of an uninterrupted run', async () => {
    const dir = tmp();
    const study = join(dir, 'search.sqlite');
    const searched = await run(['search', '--candidates', '6', '--budget-per-candidate', '6steps', ...TINY, '--population', '4', '--tournament', '2', '--workers', '1', '--study', study, '--seed', '4']);
    expect(searched.code, searched.stderr).toBe(0);
    const whole = join(dir, 'whole.sqlite');
    const killed = join(dir, 'killed.sqlite');
    copyFileSync(study, whole);
    copyFileSync(study, killed);

    const r = await run(['study', 'retrain', whole, ...RETRAIN, '--baselines', 'primer-ez', '--heads', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/retraining 1 of .*whole\.sqlite: seed \(vanilla\), candidate \d+, candidate \d+, primer-ez · 40 steps per run · seeds 4, 5 · 1 worker/);
    expect(r.stderr).toMatch(/\[8\/8\] primer-ez, seed 5: perplexity [\d.]+/);
    expect(r.stdout).toMatch(/^program +search ppl +params +steps +perplexity \(mean ± sd\) +speedup vs seed \(geo\. mean\) +perplexity − seed's \(mean\) +in-context \(mean ± sd\)$/m);
    expect(r.stdout).toMatch(/^seed \(vanilla\) .* 1\.00x +\(reference\) +-?\d\.\d{3} ± \d\.\d{3}$/m);
    expect(r.stdout).toMatch(/^winner: /m);
    const whole1 = (await runsOf(whole))!;
    expect(whole1).toHaveLength(8);
    for (const x of whole1) expect([x.status, x.steps]).toEqual(['completed', 40]);
    // seeds give different numbers
    for (let program = 0; program < 4; program++) {
      const [a, b] = whole1.filter((x) => x.program === program);
      expect(a!.fitness).not.toBe(b!.fitness);
    }
    // recorded in the study beside the search, and shown with it
    const shown = await run(['study', 'show', whole, '--json']);
    const summary = JSON.parse(shown.stdout);
    expect(summary.retrains).toHaveLength(1);
    expect(summary.retrains[0].rows.map((x: { label: string }) => x.label)).toEqual(expect.arrayContaining(['seed (vanilla)', 'primer-ez']));
    expect(summary.retrains[0].rows[0].perplexity.n).toBe(2);
    expect(summary.candidates).toBe(6);
    expect((await run(['study', 'show', whole])).stdout).toMatch(/retraining 1: the seed and the 2 best programs of the search, with references · 40 steps per run · seeds 4, 5 · 8 of 8 runs recorded/);
    // the same command again: nothing left to train
    const again = await run(['study', 'retrain', whole, ...RETRAIN, '--baselines', 'primer-ez', '--heads', '2']);
    expect(again.stderr).toMatch(/continuing retraining 1 \(8 of 8 runs recorded\)/);
    expect(again.stderr).not.toMatch(/preparing|data: /);
    expect((await runsOf(whole))!.map(key)).toEqual(whole1.map(key));
    // the same leaderboard against primer-ez instead of the seed
    const vsEz = await run(['study', 'retrain', whole, ...RETRAIN, '--baselines', 'primer-ez', '--heads', '2', '--against', 'primer-ez']);
    expect(vsEz.code, vsEz.stderr).toBe(0);
    expect(vsEz.stdout).toMatch(/^program +search ppl +params +steps +perplexity \(mean ± sd\) +speedup vs primer-ez \(geo\. mean\) +perplexity − primer-ez's \(mean\) +in-context \(mean ± sd\)$/m);
    expect(vsEz.stdout).toMatch(/^primer-ez .* 1\.00x +\(reference\) +-?\d\.\d{3} ± \d\.\d{3}$/m);
    // two seeds: no interval, and it says so
    expect(vsEz.stdout).toContain('2 seeds are too few for a 95% interval or a verdict');
    // study show --against prints the same table
    const table = (text: string) => text.slice(text.indexOf('\nprogram '), text.indexOf('\nwinner: '));
    const showVsEz = await run(['study', 'show', whole, '--against', 'primer-ez']);
    expect(showVsEz.code, showVsEz.stderr).toBe(0);
    expect(table(showVsEz.stdout)).toBe(table(vsEz.stdout));
    expect(table(showVsEz.stdout)).toMatch(/speedup vs primer-ez/);
    const noSuch = await run(['study', 'show', whole, '--against', 'primer']);
    expect([noSuch.code, noSuch.stderr]).toEqual([2, expect.stringMatching(/--against: no retraining of .*whole\.sqlite holds "primer" \(its programs: seed \(vanilla\), candidate \d+, candidate \d+, primer-ez\)/)]);
    const vsEzJson = JSON.parse((await run(['study', 'retrain', whole, ...RETRAIN, '--baselines', 'primer-ez', '--heads', '2', '--against', 'primer-ez', '--json'])).stdout);
    const fitness = (program: number, seed: number) => whole1.find((x) => x.program === program && x.seed === seed)!.fitness!;
    expect(vsEzJson.rows[0].perplexityDifference.mean).toBeCloseTo((fitness(0, 4) - fitness(3, 4) + fitness(0, 5) - fitness(3, 5)) / 2, 9);
    const notThere = await run(['study', 'retrain', whole, ...RETRAIN, '--against', 'primer']);
    expect([notThere.code, notThere.stderr]).toEqual([2, expect.stringMatching(/--against: "primer" is not a program of this retraining: give seed, candidate N, or one of --baselines \(none given\)/)]);
    // another retraining with the same settings (top 1, a third seed): the runs retraining 1 made are reused, the rest trained
    const more = await run(['study', 'retrain', whole, '--top', '1', '--seeds', '3', '--budget', '40steps', '--workers', '1']);
    expect(more.code, more.stderr).toBe(0);
    expect(more.stderr).toMatch(/retraining 2 of .*: seed \(vanilla\), candidate \d+ · 40 steps per run · seeds 4, 5, 6/);
    expect(more.stderr).toMatch(/\[1\/6\] seed \(vanilla\), seed 4: perplexity [\d.]+ · the same run as retraining 1's, reused/);
    expect(more.stderr).toMatch(/seed \(vanilla\), seed 6: perplexity [\d.]+ · 40 steps in /);
    const plan2 = (await runsOf(whole))!.filter((x) => x.retrain === 2);
    expect(plan2).toHaveLength(6);
    for (const x of plan2) {
      if (x.seed === 6) expect(x.reusedFrom ?? null).toBeNull();
      else {
        // retraining 1's run of the same program (its seed and top-1 candidate come first there too) and seed
        expect(x.reusedFrom).toEqual({ retrain: 1, program: x.program });
        const original = whole1.find((y) => y.program === x.program && y.seed === x.seed)!;
        expect([x.fitness, x.steps, x.curve]).toEqual([original.fitness, original.steps, original.curve]);
      }
    }
    // a candidate --against names that the new retraining does not hold: refused before anything is trained
    const absent = await run(['study', 'retrain', whole, '--top', '1', '--seeds', '1', '--budget', '41steps', '--workers', '1', '--against', 'candidate 999']);
    expect(absent.code, absent.stderr).toBe(2);
    expect(absent.stderr).toMatch(/--against: candidate 999 is not among the retraining's programs \(seed \(vanilla\), candidate \d+\); nothing was recorded or trained/);
    expect(absent.stderr).not.toMatch(/steps in|preparing/);
    expect((await runsOf(whole))!.filter((x) => x.retrain === 3)).toEqual([]);
    // and no retraining was recorded for it
    const plans = async () => JSON.parse((await run(['study', 'show', whole, '--json'])).stdout).retrains.map((r: { id: number }) => r.id);
    expect(await plans()).toEqual([1, 2]);

    // deleting a retraining: asked first (refused where nobody can be asked), then gone with its runs; the others stay
    const unasked = await run(['study', 'retrain', whole, '--delete', '2']);
    expect([unasked.code, unasked.stderr]).toEqual([2, expect.stringContaining('nobody can be asked here (standard input is not a terminal); add --yes to confirm')]);
    expect((await run(['study', 'retrain', whole, '--delete', '9', '--yes'])).stderr).toContain('has no retraining 9 (it has 1, 2)');
    expect((await run(['study', 'retrain', whole, '--delete', '2', '--top', '3'])).stderr).toContain('--delete deletes a retraining; it takes no --top');
    const gone = await run(['study', 'retrain', whole, '--delete', '2', '--yes']);
    expect([gone.code, gone.stderr]).toEqual([0, expect.stringMatching(/deleted retraining 2 of .*whole\.sqlite and its 6 runs/)]);
    expect(await plans()).toEqual([1]);
    expect((await runsOf(whole))!.every((x) => x.retrain === 1)).toBe(true);

    // the same retraining, killed at random moments and continued each time
    const start = () =>
      spawn(process.execPath, ['--conditions=@primer-search/source', '--import', 'tsx', join(root, 'tools/primer-dev.ts'), 'study', 'retrain', killed, ...RETRAIN, '--baselines', 'primer-ez', '--heads', '2'], {
        cwd: root,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    const seen = new Map<string, string>();
    let kills = 0;
    for (let round = 0; round < 8 && kills < 2; round++) {
      const p = start();
      let stderr = '';
      p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const done = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
      const before = seen.size;
      // killed once a run more than before is recorded, partway through the next
      const recorded = async () => {
        for (;;) {
          if (((await runsOf(killed)) ?? []).length > before) return;
          await sleep(100);
        }
      };
      const finished = await Promise.race([done.then(() => true), recorded().then(() => sleep(Math.floor(Math.random() * 250))).then(() => false)]);
      if (finished) {
        expect(stderr).not.toMatch(/Error/);
        break;
      }
      p.kill('SIGKILL');
      await done;
      kills++;
      const runs = (await runsOf(killed))!;
      for (const x of runs) {
        const k = `${x.program}/${x.seed}`;
        if (seen.has(k)) expect(key(x)).toBe(seen.get(k));
        seen.set(k, key(x));
      }
      expect(runs.length).toBe(seen.size);
    }
    expect(kills).toBeGreaterThan(0);
    const last = await run(['study', 'retrain', killed, ...RETRAIN, '--baselines', 'primer-ez', '--heads', '2']);
    expect(last.code, last.stderr).toBe(0);
    expect(last.stderr).toMatch(/continuing retraining 1 \(\d of 8 runs recorded\)/);
    const final = (await runsOf(killed))!;
    for (const x of final) if (seen.has(`${x.program}/${x.seed}`)) expect(key(x)).toBe(seen.get(`${x.program}/${x.seed}`));
    expect(final).toHaveLength(8);
    // reproducible: the interrupted retraining ends with the uninterrupted one's numbers
    const numbers = (runs: RetrainRun[]) => runs.map((x) => [x.program, x.seed, x.steps, x.fitness]);
    expect(numbers(final)).toEqual(numbers(whole1));
  }, 300_000);

  it('a run killed part-way continues from its checkpoint beside the study, with the numbers of a run never stopped', async () => {
    const dir = tmp();
    const study = join(dir, 's.sqlite');
    expect((await run(['search', '--candidates', '2', '--budget-per-candidate', '4steps', ...TINY, '--workers', '1', '--study', study])).code).toBe(0);
    const whole = join(dir, 'whole.sqlite');
    const killed = join(dir, 'killed.sqlite');
    copyFileSync(study, whole);
    copyFileSync(study, killed);
    const ONE = ['--top', '0', '--seeds', '1', '--budget', '400steps', '--workers', '1'];
    const straight = await run(['study', 'retrain', whole, ...ONE, '--checkpoint-every', 'off']);
    expect(straight.code, straight.stderr).toBe(0);
    expect(existsSync(`${whole}.checkpoints`)).toBe(false);
    // killed once its checkpoint (after every step) is there, partway through its 400 steps
    const folder = `${killed}.checkpoints`;
    const p = spawn(process.execPath, ['--conditions=@primer-search/source', '--import', 'tsx', join(root, 'tools/primer-dev.ts'), 'study', 'retrain', killed, ...ONE, '--checkpoint-every', '0'], { cwd: root, stdio: 'ignore' });
    const exited = new Promise((resolve) => p.on('exit', resolve));
    let at = 0;
    for (let i = 0; i < 1200 && at === 0; i++) {
      await sleep(50);
      const [name] = existsSync(folder) ? readdirSync(folder) : [];
      if (name && existsSync(join(folder, name, 'checkpoint.json'))) at = JSON.parse(readFileSync(join(folder, name, 'checkpoint.json'), 'utf8')).step;
    }
    p.kill('SIGKILL');
    await exited;
    expect(at).toBeGreaterThan(0);
    expect(at).toBeLessThan(400);
    expect(await runsOf(killed)).toEqual([]);
    const [left] = readdirSync(folder);
    expect(left).toMatch(/^retrain-1-program-0-seed-1-[0-9a-f]{12}$/);
    const again = await run(['study', 'retrain', killed, ...ONE, '--checkpoint-every', '0']);
    expect(again.code, again.stderr).toBe(0);
    // it continued from where it was killed (a step at or after the checkpoint seen before the kill), not from the start
    const from = /\[1\/1\] seed \(vanilla\), seed 1: perplexity [\d.]+ · 400 steps in \S+ \(continued from the checkpoint an earlier try left at step (\d+)\)/.exec(again.stderr);
    expect(from, again.stderr).not.toBeNull();
    expect(Number(from![1])).toBeGreaterThanOrEqual(at);
    expect(Number(from![1])).toBeLessThan(400);
    const numbers = (runs: RetrainRun[] | undefined) => runs!.map((x) => [x.program, x.seed, x.steps, x.tokens, x.fitness, x.curve.map((c) => [c.step, c.tokens, c.perplexity, c.inContext])]);
    expect(numbers(await runsOf(killed))).toEqual(numbers(await runsOf(whole)));
    // recorded, so its checkpoint is gone
    expect(readdirSync(folder)).toEqual([]);
    expect((await run(['study', 'retrain', killed, ...ONE, '--checkpoint-every', 'never'])).stderr).toContain('--checkpoint-every');
    // deleting the study takes the folder with it
    expect((await run(['study', 'delete', killed, '--yes'])).code).toBe(0);
    expect(existsSync(folder)).toBe(false);
  }, 300_000);

  it('refuses a missing study and a bad baseline, saying so', async () => {
    const missing = await run(['study', 'retrain', join(tmp(), 'none.sqlite')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no study file at/);
    const dir = tmp();
    const study = join(dir, 's.sqlite');
    expect((await run(['search', '--candidates', '1', '--budget-per-candidate', '1steps', ...TINY, '--workers', '1', '--study', study])).code).toBe(0);
    const bad = await run(['study', 'retrain', study, '--baselines', 'primer-zz']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--baselines: .*primer-zz/);
    const noQueue = await run(['study', 'retrain', study, '--workers', '0']);
    expect(noQueue.code).toBe(2);
    expect(noQueue.stderr).toMatch(/--workers 0 sends the runs to primer worker processes through a queue in PostgreSQL/);
    const inFlight = await run(['study', 'retrain', study, '--in-flight', '2']);
    expect(inFlight.code).toBe(2);
    expect(inFlight.stderr).toMatch(/--in-flight .* goes with --workers 0/);
  }, 60_000);

  it("reuses another study's runs of the same program, seed and settings (--reuse-from), naming that study; and refuses a study with other settings, saying what differs", async () => {
    const dir = tmp();
    const one = join(dir, 'one.sqlite');
    const two = join(dir, 'two.sqlite');
    const wide = join(dir, 'wide.sqlite');
    const search = (study: string, seed: string, ...more: string[]) =>
      run(['search', '--candidates', '2', '--budget-per-candidate', '4steps', ...TINY, ...more, '--workers', '1', '--study', study, '--seed', seed]);
    for (const [study, seed, ...more] of [[one, '4'], [two, '5'], [wide, '5', '--d-model', '32']]) {
      const r = await search(study!, seed!, ...more);
      expect(r.code, r.stderr).toBe(0);
    }
    const RETRAIN = ['--top', '0', '--seeds', '2', '--budget', '12steps', '--workers', '1', '--baselines', 'primer-ez', '--heads', '2'];
    // study one: seeds 4 and 5 of vanilla (its seed) and Primer-EZ
    expect((await run(['study', 'retrain', one, ...RETRAIN])).code).toBe(0);
    const theirs = (await runsOf(one))!;
    // a copy of study two, retrained without reuse: what its own runs would be
    const alone = join(dir, 'alone.sqlite');
    copyFileSync(two, alone);
    expect((await run(['study', 'retrain', alone, ...RETRAIN])).code).toBe(0);
    const own = (await runsOf(alone))!;
    // study two (seeds 5 and 6), reusing study one's seed-5 runs, read from a gzipped copy
    const gz = join(dir, 'one.sqlite.gz');
    writeFileSync(gz, gzipSync(readFileSync(one)));
    const r = await run(['study', 'retrain', two, ...RETRAIN, '--reuse-from', gz]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`--reuse-from ${gz}: 2 of its runs are reused (the same program, seed and settings; none trained here yet)`);
    expect(r.stderr).toMatch(new RegExp(`seed \\(vanilla\\), seed 5: perplexity [\\d.]+ · the same run as ${gz.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}'s retraining 1, reused`));
    expect(r.stderr.match(/, reused/g)).toHaveLength(2);
    expect(r.stderr.match(/12 steps in /g)).toHaveLength(2);
    const runs = (await runsOf(two))!;
    expect(runs).toHaveLength(4);
    for (const x of runs) {
      const same = own.find((y) => y.program === x.program && y.seed === x.seed)!;
      if (x.seed === 5) {
        // study one's run, copied, and naming where it came from
        const origin = theirs.find((y) => y.program === x.program && y.seed === 5)!;
        expect(x.reusedFrom).toEqual({ study: gz, studyId: expect.stringMatching(/^[0-9a-f-]{36}$/), retrain: 1, program: origin.program });
        expect([x.fitness, x.curve]).toEqual([origin.fitness, origin.curve]);
      } else expect(x.reusedFrom ?? null).toBeNull();
      // the same numbers as training it here: a reused run is this study's run
      expect(x.fitness).toBe(same.fitness);
    }
    // a study whose retrainings have other settings offers nothing, and says why
    const w = await run(['study', 'retrain', wide, ...RETRAIN, '--seeds', '1', '--reuse-from', one]);
    expect(w.code, w.stderr).toBe(0);
    expect(w.stderr).toContain(`--reuse-from ${one}: no run of it is reused: none of its 1 retraining has this one's settings (the closest differs in dModel)`);
    expect(w.stderr).not.toMatch(/, reused/);
    // the study itself is refused
    const self = await run(['study', 'retrain', two, ...RETRAIN, '--reuse-from', two]);
    expect([self.code, self.stderr]).toEqual([2, expect.stringContaining(`--reuse-from: ${two} is the same study as ${two} (the same study id`)]);
    // continued with the same source: nothing more to reuse, and it says so
    const again = await run(['study', 'retrain', two, ...RETRAIN, '--reuse-from', one, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).reuse).toEqual([{ from: one, matching: 0 }]);
  }, 300_000);
});

describe('primer study fidelity', () => {
  it("retrains a spread sample at a longer budget, reports rank correlations, continues, and shares runs with retrainings", async () => {
    const dir = tmp();
    const study = join(dir, 'search.sqlite');
    const searched = await run(['search', '--candidates', '8', '--budget-per-candidate', '6steps', ...TINY, '--population', '4', '--tournament', '2', '--workers', '1', '--study', study, '--seed', '4', '--hurdles', 'none']);
    expect(searched.code, searched.stderr).toBe(0);
    const FIDELITY = ['--sample', '4', '--factor', '2', '--seeds', '2', '--workers', '1'];
    const f = await run(['study', 'fidelity', study, ...FIDELITY]);
    expect(f.code, f.stderr).toBe(0);
    expect(f.stderr).toMatch(/^fidelity measurement 1 of .*search\.sqlite: seed \(vanilla\), candidate \d+, candidate \d+, candidate \d+ · 12 steps per run · seeds 4, 5 · 1 worker$/m);
    expect(f.stdout).toMatch(/^fidelity 1: 4 programs spread over the search's range · 12 steps per run · seeds 4, 5 · 8 of 8 runs recorded$/m);
    expect(f.stdout).toMatch(/^program +search ppl +search rank +retrained ppl \(mean ± sd\) +retrained rank +moved$/m);
    expect(f.stdout).toMatch(/^Spearman's rho -?[\d.]+ \[-?[\d.]+, -?[\d.]+\] \(bootstrap 95%\), Kendall's tau -?[\d.]+, over 4 programs: /m);
    expect(f.stdout).toMatch(/^the longer run against itself \(seed 4 against seed 5\): rho -?[\d.]+/m);
    const runs = (await runsOf(study))!;
    expect(runs).toHaveLength(8);
    for (const x of runs) expect([x.retrain, x.status, x.steps]).toEqual([1, 'completed', 12]);
    // the statistics are the study package's, over the recorded runs
    const json = JSON.parse((await run(['study', 'fidelity', study, ...FIDELITY, '--json'])).stdout);
    expect(json.points).toHaveLength(4);
    const seedPoint = json.points.find((p: { program: number }) => p.program === 0);
    const seedRuns = runs.filter((x) => x.program === 0).map((x) => x.fitness!);
    expect(seedPoint.retrained).toBeCloseTo((seedRuns[0]! + seedRuns[1]!) / 2, 9);
    // the same command again: nothing to train
    const again = await run(['study', 'fidelity', study, ...FIDELITY]);
    expect(again.stderr).toMatch(/continuing fidelity measurement 1 \(8 of 8 runs recorded\)/);
    expect(again.stderr).not.toMatch(/preparing|steps in/);
    // the bare command, most likely meant to show the measurement, starts no other: it says how to show or continue one
    const bare = await run(['study', 'fidelity', study, '--workers', '1']);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/already holds fidelity measurement 1: primer study show .*search\.sqlite prints it\. To continue measurement 1, give its options \(--sample 4 --budget 12steps --seeds 2\)/);
    const asSaid = await run(['study', 'fidelity', study, '--sample', '4', '--budget', '12steps', '--seeds', '2', '--workers', '1']);
    expect(asSaid.stderr).toMatch(/continuing fidelity measurement 1 \(8 of 8 runs recorded\)/);
    // shown with the study, apart from its retrainings
    const shown = JSON.parse((await run(['study', 'show', study, '--json'])).stdout);
    expect([shown.retrains.length, shown.fidelity.length]).toEqual([0, 1]);
    expect((await run(['study', 'show', study])).stdout).toMatch(/^fidelity 1: 4 programs/m);
    // a retraining with the same settings reuses the sample's runs of the seed and the best
    const r = await run(['study', 'retrain', study, '--top', '1', '--seeds', '2', '--budget', '12steps', '--workers', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/retraining 2 of/);
    expect(r.stderr.match(/the same run as retraining 1's, reused/g)).toHaveLength(4);
    // the runs' curves as CSV: every evaluation of every run, each run ending on its recorded perplexity
    const all = (await runsOf(study))!;
    const curves = await run(['study', 'curves', study]);
    expect(curves.code, curves.stderr).toBe(0);
    const [head, ...rows] = curves.stdout.trim().split('\n').map((l) => l.split(','));
    expect(head).toEqual(['retraining', 'kind', 'budget', 'program', 'label', 'seed', 'status', 'reused_from', 'step', 'tokens', 'seconds', 'flops', 'perplexity', 'in_context', 'recall']);
    expect(rows).toHaveLength(all.reduce((n, x) => n + x.curve.length, 0));
    for (const x of all) {
      const mine = rows.filter((c) => Number(c[0]) === x.retrain && Number(c[3]) === x.program && Number(c[5]) === x.seed);
      expect(mine.map((c) => Number(c[8]))).toEqual(x.curve.map((e) => e.step));
      expect(mine.map((c) => Number(c[11]))).toEqual(x.curve.map((e) => e.flops));
      expect(Number(mine.at(-1)![12])).toBeCloseTo(x.fitness!, 5);
      expect(new Set(mine.map((c) => [c[1], c[6], c[7]].join('/')))).toEqual(new Set([`${x.retrain === 1 ? 'fidelity' : 'retrain'}/${x.status}/${x.reusedFrom ? 'retraining 1' : ''}`]));
    }
    expect(rows.filter((c) => c[0] === '2' && c[7] === 'retraining 1').length).toBeGreaterThan(0);
    const second = join(dir, 'curves-2.csv');
    const one2 = await run(['study', 'curves', study, '--retrain', '2', '--out', second]);
    expect(one2.code, one2.stderr).toBe(0);
    expect(readFileSync(second, 'utf8').trim().split('\n').slice(1)).toEqual(curves.stdout.trim().split('\n').slice(1).filter((l) => l.startsWith('2,')));
    expect(one2.stderr).toMatch(/curves-2\.csv: \d+ evaluations of \d+ runs/);
    const none = await run(['study', 'curves', study, '--retrain', '7']);
    expect([none.code, none.stderr]).toEqual([2, expect.stringContaining('--retrain: the study has no retraining 7 (its retrainings: 1, 2)')]);
    // a budget and a factor at once: refused
    const both = await run(['study', 'fidelity', study, '--budget', '12steps', '--factor', '3']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--budget.*cannot be used with.*--factor/);
    const one = await run(['study', 'fidelity', study, '--sample', '1']);
    expect([one.code, one.stderr]).toEqual([2, expect.stringContaining('--sample must be an integer from 2 to 999')]);
  }, 180_000);
});
