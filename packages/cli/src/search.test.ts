import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { pluginIdentity } from '@primer-search/study';
import * as tfjs from '@tensorflow/tfjs';
import { compileLanguageModel } from '@primer-search/compiler';
import { createRng } from '@primer-search/core';
import { SqliteStudyStore, type EvaluationRecord } from '@primer-search/store';
import { describe, expect, it } from 'vitest';
import { runPrimer } from './__fixtures__/run.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const TINY = ['--layers', '1', '--d-model', '16', '--heads', '2', '--seq-len', '16', '--batch', '4', '--eval-windows', '2'];

const run = runPrimer;

const tmp = () => mkdtempSync(join(tmpdir(), 'primer-search-cli-'));

describe('primer search and primer study show', () => {
  it('a study file written by an earlier version (schema 1) shows as it did then, and resumes', async () => {
    const fixture = fileURLToPath(new URL('../../store/src/__fixtures__/study-v1.sqlite', import.meta.url));
    const before = JSON.parse(readFileSync(fileURLToPath(new URL('../../store/src/__fixtures__/study-v1.show.json', import.meta.url)), 'utf8'));
    const study = join(tmp(), 'old.sqlite');
    copyFileSync(fixture, study);
    const shown = await run(['study', 'show', study, '--json']);
    expect(shown.code, shown.stderr).toBe(0);
    const { location: _a, machines, equivalent, retrains, fidelity, keptWeights, ...now } = JSON.parse(shown.stdout);
    // what later versions added: no behaviour merges, no retrainings, no kept weights in a study from before them
    expect(equivalent).toEqual({ programs: 0, trainSecondsSaved: 0 });
    expect(retrains).toEqual([]);
    expect(fidelity).toEqual([]);
    expect(keptWeights).toEqual([]);
    const { location: _b, ...then } = before;
    expect(now).toEqual(then);
    // results from before environments were recorded: the host and backend are still known
    expect(machines).toEqual([expect.objectContaining({ backend: 'wasm', device: null, evaluations: 4 })]);
    const more = await run(['search', '--study', study, '--resume', '--candidates', '6']);
    expect(more.code, more.stderr).toBe(0);
    // the progress lines count the study's earlier candidates: its best and its seed from the start
    const first = /\[5\/6\] candidate 4: .* · best ([\d.]+) \(seed ([\d.]+)\)/.exec(more.stderr);
    expect(first, more.stderr).not.toBeNull();
    expect(Number(first![1])).toBeLessThanOrEqual(Number(then.leaderboard[0].fitness.toFixed(3)));
    expect(first![2]).toBe(then.seed.fitness.toFixed(3));
    const after = JSON.parse((await run(['study', 'show', study, '--json'])).stdout);
    expect(after.candidates).toBe(6);
    expect(after.machines.some((m: { device: string | null }) => m.device !== null)).toBe(true);
  });

  it('a study never says what code runs: its plugins are checked against --plugin, never imported from the record', async () => {
    const dir = tmp();
    const fixture = fileURLToPath(new URL('../../store/src/__fixtures__/study-v1.sqlite', import.meta.url));
    const withPlugins = async (name: string, plugins: string[], pluginIds?: unknown) => {
      const study = join(dir, name);
      copyFileSync(fixture, study);
      const store = SqliteStudyStore.open(study);
      await store.updateStudy({ ...(await store.config())!, plugins, ...(pluginIds ? { pluginIds } : {}) });
      await store.close();
      return study;
    };
    const marker = join(dir, 'ran');
    const evilFile = join(dir, 'evil.mjs');
    writeFileSync(evilFile, `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, 'x');\n`);
    const g = globalThis as { __primerStudyCode?: number };
    // a hostile study: a data: URL (which exited 42 in the controller before) and a file of its own choosing
    const hostile = await withPlugins('hostile.sqlite', ['data:text/javascript,globalThis.__primerStudyCode=(globalThis.__primerStudyCode??0)+1', pathToFileURL(evilFile).href]);
    for (const args of [
      ['search', '--study', hostile, '--resume'],
      ['study', 'retrain', hostile, '--top', '0', '--seeds', '1', '--workers', '1'],
      ['export', '--study', hostile, '--candidate', '0', '--out', join(dir, 'model')],
    ]) {
      const r = await run(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/the study was run with the plugins "data:text", "evil\.mjs": give --plugin/);
    }
    expect(g.__primerStudyCode).toBeUndefined();
    expect(existsSync(marker)).toBe(false);

    // a study run with a plugin file: continued with the same code, refused with other code or without it
    const ops = join(dir, 'ops.mjs');
    writeFileSync(ops, 'export const version = 1;\n');
    const recorded = await withPlugins('ops.sqlite', ['file:///elsewhere/ops.mjs'], [pluginIdentity(ops)]);
    const without = await run(['search', '--study', recorded, '--resume']);
    expect(without.code).toBe(2);
    expect(without.stderr).toMatch(/the study was run with the plugin "ops\.mjs": give --plugin/);
    const same = await run(['search', '--study', recorded, '--resume', '--plugin', ops]);
    expect(same.code, same.stderr).toBe(0);
    const extra = await run(['search', '--study', recorded, '--resume', '--plugin', ops, '--plugin', evilFile]);
    expect(extra.code).toBe(2);
    expect(extra.stderr).toMatch(/the plugin evil\.mjs is loaded here but not by the study/);
    writeFileSync(ops, 'export const version = 2;\n');
    const changed = await run(['search', '--study', recorded, '--resume', '--plugin', ops]);
    expect(changed.code).toBe(2);
    expect(changed.stderr).toMatch(/the plugin ops\.mjs has different code here/);
  });

  it('a study run through the PostgreSQL queue, copied to SQLite, continues on local workers', async () => {
    const study = join(tmp(), 'was-queued.sqlite');
    copyFileSync(fileURLToPath(new URL('../../store/src/__fixtures__/study-v1.sqlite', import.meta.url)), study);
    const store = SqliteStudyStore.open(study);
    await store.updateStudy({ ...(await store.config())!, dispatch: 'queue' });
    await store.close();
    const r = await run(['search', '--study', study, '--resume', '--candidates', '5', '--workers', '1']);
    expect(r.code, r.stderr).toBe(0);
    const again = await run(['search', '--study', study, '--resume', '--candidates', '6']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/the study went through a PostgreSQL queue; this SQLite copy continues on local workers/);
    expect(again.stderr).not.toMatch(/Invalid URL|TypeError/);
  });

  it('a study whose parents loop is diagnosed as damaged by study show, not followed forever', async () => {
    const study = join(tmp(), 'loop.sqlite');
    copyFileSync(fileURLToPath(new URL('../../store/src/__fixtures__/study-v1.sqlite', import.meta.url)), study);
    const db = new Database(study);
    db.pragma('foreign_keys = OFF');
    db.prepare('UPDATE candidates SET parent = 1 WHERE id = 1').run();
    db.close();
    for (const args of [['study', 'show', study], ['study', 'show', study, '--json'], ['study', 'dna', study, '1']]) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(/is damaged: candidate 1's parent 1 is not an earlier candidate/);
    }
  });

  it('never prints the password of a study in PostgreSQL, from its own messages or from a library quoting the URL', async () => {
    const url = 'postgres://alice:S3cretPw@127.0.0.1:1/db?sslpassword=K3yPass1';
    for (const args of [['study', 'show', url], ['search', '--study', url, '--resume'], ['study', 'retrain', url], ['export', '--study', url, '--candidate', '1', '--out', join(tmp(), 'm')], ['study', 'copy', url, join(tmp(), 'c.sqlite')]]) {
      const r = await run(args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(`${r.stdout}${r.stderr}`, args.join(' ')).not.toMatch(/S3cretPw|K3yPass1/);
      expect(r.stderr, args.join(' ')).toMatch(/cannot reach the database at postgres:\/\/alice:\*\*\*@127\.0\.0\.1:1\/db\?sslpassword=\*\*\*/);
    }
    // a command line that is wrong in another way: commander's own message quotes it, redacted too
    const wrong = await run(['study', 'show', url, '--no-such-flag', url]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).not.toMatch(/S3cretPw|K3yPass1/);
  });

  it('searches, prints the summary with the best program as code and its diff, and shows the study again', async () => {
    const study = join(tmp(), 'demo.sqlite');
    const r = await run(['search', '--candidates', '6', '--budget-per-candidate', '4steps', ...TINY, '--population', '4', '--tournament', '2', '--workers', '2', '--study', study, '--seed', '3']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/starting study .*demo\.sqlite: evolution from vanilla, 6 candidates, 4 steps each, 2 workers/);
    expect(r.stderr).toMatch(/\[6\/6\] candidate 5: /);
    expect(r.stdout).toMatch(/candidates 6 proposed, 6 told · trained \d+ · reused \d+/);
    expect(r.stdout).toMatch(/^rank +candidate +parent +perplexity +vs seed +params +steps +mutations$/m);
    expect(r.stdout).toMatch(/lineage of the best: 0( -> \d+)*/);

    const shown = await run(['study', 'show', study]);
    expect(shown.code).toBe(0);
    // the same report, from the file alone (without the closing words on the search just run)
    expect(r.stdout.trim().startsWith(shown.stdout.trim())).toBe(true);
    const json = JSON.parse((await run(['study', 'show', study, '--json'])).stdout);
    expect(json.candidates).toBe(6);
    expect(json.config.strategy).toBe('evolution');
    expect(json.leaderboard[0].fitness).toBeLessThanOrEqual(json.seed.fitness);
    const best = await run(['study', 'dna', study, String(json.leaderboard[0].id)]);
    expect(best.code).toBe(0);
    expect(JSON.parse(best.stdout).subprograms.length).toBeGreaterThan(0);
    expect((await run(['study', 'dna', study, '99'])).stderr).toMatch(/has no candidate 99 \(it has 6\)/);
    if (json.leaderboard[0].id !== 0) {
      const id = json.leaderboard[0].id;
      // the diff, under the candidate's own name; the whole code only on request, under that name too
      expect(r.stdout).toMatch(new RegExp(`candidate ${id}: perplexity [\\d.]+ against the seed's [\\d.]+ \\(-[\\d.]+%\\)\\. Its code's diff against the seed's \\(- vanilla, \\+ candidate ${id}\\):\n {2}@@ seed line \\d+ @@`));
      expect(r.stdout).not.toMatch(/^\/\/ vanilla · hash/m);
      expect(r.stdout).toMatch(/The search found a program [\d.]+% lower in perplexity than the seed in [\d.]+s: 6 candidates, each distinct program trained at most once, with one seed, for 4 steps\./);
      expect(r.stdout).toMatch(/or measure whether this budget orders programs as a longer one would \(primer study fidelity \S+\)/);
      const full = await run(['study', 'show', study, '--full']);
      expect(full.stdout).toMatch(new RegExp(`candidate ${id} as code:\n\n// candidate-${id} · hash [0-9a-f]+`));
    } else {
      expect(r.stdout).toContain('the best program is the seed itself');
    }
  });

  it('searches under a FLOP budget per candidate, hurdles included: the seed trains the steps the estimate pays for', async () => {
    const study = join(tmp(), 'flops.sqlite');
    const r = await run(['search', '--candidates', '4', '--budget-per-candidate', '4e7flops', '--hurdles', '0.5', '--hurdle-min-samples', '1', ...TINY, '--workers', '1', '--study', study, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const store = SqliteStudyStore.open(study, { readonly: true });
    try {
      const evaluations = await store.evaluations();
      expect(evaluations.length).toBeGreaterThan(0);
      for (const e of evaluations) expect(e.budget).toBe('4e7 FLOPs');
      const seed = evaluations.find((e) => e.candidate === 0)!;
      expect(seed.status).toBe('completed');
      // the seed's steps: its training FLOPs per step (the compiler's estimate) into the budget
      const c = (await store.candidate(0))!;
      const model = compileLanguageModel(c.dna, { tf: tfjs as never, vocabSize: 257, layers: 1, dModel: 16, seqLen: 16, seed: 0 });
      expect(seed.steps).toBe(Math.ceil(4e7 / (4 * 16 * model.estimate.trainingFlopsPerToken)));
      model.dispose();
    } finally {
      await store.close();
    }
  }, 120_000);

  it("the paper's halving rungs at 1/16, 1/8, 1/4 and 1/2 of a FLOP budget: each evaluated where the FLOPs reach it, the mean cost reported", async () => {
    const study = join(tmp(), 'rungs.sqlite');
    const r = await run(['search', '--candidates', '10', '--budget-per-candidate', '4e8flops', ...TINY, '--population', '4', '--tournament', '2', '--workers', '1', '--hurdles', '0.0625,0.125,0.25,0.5', '--hurdle-min-samples', '2', '--study', study]);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse((await run(['study', 'show', study, '--json'])).stdout);
    expect(s.stoppedAtHurdle).toHaveLength(4);
    const shown = (await run(['study', 'show', study])).stdout;
    expect(shown).toMatch(new RegExp(`hurdles at 6\\.25%, 12\\.5%, 25%, 50% of the budget: stopped ${s.stoppedAtHurdle.join(' / ')} · saved [\\d.]+ candidate budgets \\([\\d.]+% of full training\\); a candidate cost ${(1 - s.hurdleSavings.share).toFixed(2)} of the full budget on average`));
    const store = SqliteStudyStore.open(study, { readonly: true });
    try {
      for (const e of await store.evaluations()) {
        if (e.status === 'failed') continue;
        // each rung's evaluation is the first step at or past its share of the FLOPs
        const rungs = e.curve.slice(0, e.status === 'hurdle' ? e.hurdle! + 1 : 4);
        rungs.forEach((c, k) => {
          const f = [0.0625, 0.125, 0.25, 0.5][k]!;
          expect(c.flops! / 4e8).toBeGreaterThanOrEqual(f);
          expect(c.flops! / 4e8).toBeLessThan(f * 1.2);
        });
        if (e.status === 'hurdle') expect(e.curve).toHaveLength(e.hurdle! + 1);
      }
    } finally {
      await store.close();
    }
  }, 60_000);

  it('refuses to overwrite a study, an unknown strategy, and a missing study, saying what to do', async () => {
    const dir = tmp();
    const study = join(dir, 's.sqlite');
    expect((await run(['search', '--candidates', '1', '--budget-per-candidate', '1steps', ...TINY, '--study', study])).code).toBe(0);
    const again = await run(['search', '--candidates', '1', '--study', study]);
    expect(again.code).toBe(2);
    // study report writes what the file's name says, or nothing
    const pdf = await run(['study', 'report', study, '--out', join(dir, 'r.pdf')]);
    expect([pdf.code, pdf.stderr]).toEqual([2, expect.stringContaining('study report writes HTML (.html), SVG (.svg) or PNG (.png), not .pdf')]);
    expect(existsSync(join(dir, 'r.pdf'))).toBe(false);
    const clash = await run(['study', 'report', study, '--out', join(dir, 'r.png'), '--format', 'svg']);
    expect([clash.code, clash.stderr]).toEqual([2, expect.stringContaining('and --format svg disagree: name the file .svg')]);
    // several studies: one chart, and a table of what each spent and found
    const other = join(dir, 't.sqlite');
    expect((await run(['search', '--strategy', 'random', '--seed', '2', '--candidates', '1', '--budget-per-candidate', '1steps', ...TINY, '--study', other])).code).toBe(0);
    const both = await run(['study', 'report', study, other, '--out', join(dir, 'both.svg')]);
    expect(both.code, both.stderr).toBe(0);
    expect(both.stdout).toMatch(/^study +results +trained +training FLOPs +best +best within \S+ FLOPs\nevolution seed 1 +1 +1 +\d\.\d\de\+\d+ +\d+\.\d{3} +\d+\.\d{3}\nrandom seed 2 +1 +1 /);
    expect(readFileSync(join(dir, 'both.svg'), 'utf8')).toContain('training FLOPs spent');
    // written again over the old chart: replaced whole (writeWhole), nothing left beside it
    expect((await run(['study', 'report', study, other, '--out', join(dir, 'both.svg')])).code).toBe(0);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(await run(['study', 'report', study, other, '--out', join(dir, 'both.html')])).toMatchObject({ code: 2, stderr: expect.stringContaining('write it as SVG (.svg) or PNG (.png), not HTML') });
    expect(await run(['study', 'report', study, other, '--out', join(dir, 'l.svg'), '--labels', 'one'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--labels names 1 study (one), but 2 are given') });
    expect(await run(['study', 'report', study, other, '--out', join(dir, 'l.svg'), '--labels', 'a,a'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--labels: "a" names two studies') });
    expect(await run(['study', 'report', study, other, '--out', join(dir, 'no', 'such', 'l.svg')])).toMatchObject({ code: 2, stderr: expect.stringContaining(`cannot write it: its folder ${join(dir, 'no', 'such')} does not exist`) });
    expect(await run(['study', 'report', study, '--out', join(dir, 'no', 'such', 'one.html')])).toMatchObject({ code: 2, stderr: expect.stringContaining(`cannot write it: its folder ${join(dir, 'no', 'such')} does not exist`) });
    expect(await run(['study', 'report', study, '--out', join(dir, 'l.svg'), '--labels', 'one'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--labels names the studies of a comparison') });
    expect(existsSync(join(dir, 'l.svg'))).toBe(false);
    // study delete: asked first, then the file and the files beside it are gone
    expect((await run(['study', 'delete', study])).code).toBe(2);
    expect(existsSync(study)).toBe(true);
    const deleted = await run(['study', 'delete', study, '--yes']);
    expect([deleted.code, deleted.stderr]).toEqual([0, expect.stringContaining('deleted the study')]);
    for (const f of [study, `${study}-wal`, `${study}-shm`]) expect(existsSync(f), f).toBe(false);
    expect((await run(['study', 'delete', study, '--yes'])).stderr).toContain('no study file at');
    expect(again.stderr).toMatch(/already exists: add --resume to continue that study/);
    const unknown = await run(['search', '--strategy', 'evolutoin', '--study', join(dir, 'x.sqlite')]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no search strategy "evolutoin" \(did you mean evolution\?\)/);
    expect((await run(['search', '--resume'])).stderr).toMatch(/--resume needs --study FILE/);
    const missing = await run(['study', 'show', join(dir, 'none.sqlite')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no study file at/);
    const noPlugin = await run(['search', '--plugin', './no/such/plugin.js', '--study', join(dir, 'z.sqlite')]);
    expect(noPlugin.code).toBe(2);
    expect(noPlugin.stderr).toContain('--plugin: no such file ./no/such/plugin.js');
    // a plugin that is there but fails to load is invalid input
    const broken = join(dir, 'broken-plugin.mjs');
    writeFileSync(broken, 'throw new Error("this plugin is broken");\n');
    const badPlugin = await run(['search', '--plugin', broken, '--study', join(dir, 'z.sqlite')]);
    expect(badPlugin.code).toBe(1);
    expect(badPlugin.stderr).toMatch(/cannot load the plugin file:.*broken-plugin\.mjs: this plugin is broken/);
    // a syntax error: the file, the line and the source line, not just "Unexpected token"
    const typo = join(dir, 'typo-plugin.mjs');
    writeFileSync(typo, 'export const ok = 1;\nconst broken = ;\n');
    const syntax = await run(['search', '--plugin', typo, '--study', join(dir, 'z.sqlite')]);
    expect(syntax.code).toBe(1);
    expect(syntax.stderr).toMatch(/cannot load the plugin file:.*typo-plugin\.mjs: .*typo-plugin\.mjs:2: Unexpected token ';'\n {2}const broken = ;\n {2} +\^/);
    // a dataset that reads files the user keeps, without --data-dir: the command line's fault
    for (const command of [['train', '--model', 'vanilla'], ['search', '--study', join(dir, 'w.sqlite')]]) {
      const noData = await run([...command, '--dataset', 'lm1b', '--budget', '3steps'].filter((x, k, a) => !(command[0] === 'search' && (x === '--budget' || a[k - 1] === '--budget'))));
      expect(noData.code, noData.stderr).toBe(2);
      expect(noData.stderr).toMatch(/--dataset lm1b reads files you keep: give --data-dir DIR/);
    }
    const badOption = await run(['search', '--strategy', 'random', '--strategy-option', 'maxMutation=2', '--study', join(dir, 'y.sqlite')]);
    expect(badOption.code).toBe(2);
    expect(badOption.stderr).toMatch(/random has no option "maxMutation"; its options: maxMutations/);
  });
});

describe('studies that cannot be used', () => {
  it('a damaged study: study show and search --resume name the file and the way out, exit 1, no stack trace', async () => {
    const study = join(tmp(), 'd.sqlite');
    expect((await run(['search', '--candidates', '2', '--budget-per-candidate', '1steps', ...TINY, '--study', study])).code).toBe(0);
    const bytes = Buffer.from(readFileSync(study));
    const page = bytes.readUInt16BE(16);
    bytes.fill(0x5a, page * 2, page * 3);
    writeFileSync(study, bytes);
    for (const args of [['study', 'show', study], ['study', 'dna', study, '0'], ['search', '--study', study, '--resume']]) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toContain(`${study} is damaged`);
      expect(r.stderr).toContain('.recover');
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('search --resume on a missing file refuses and creates nothing; a refused new search leaves no file', async () => {
    const dir = tmp();
    const study = join(dir, 'new.sqlite');
    const r = await run(['search', '--study', study, '--resume']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`no study file at ${study} to resume`);
    expect(existsSync(study)).toBe(false);
    // a forced backend that is not installed is refused before the study is opened
    const refused = await run(['search', '--candidates', '2', '--budget-per-candidate', '1steps', ...TINY, '--backend', 'tfjs-node', '--study', study]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--backend tfjs-node: @tensorflow/tfjs-node is not installed here');
    expect(existsSync(study)).toBe(false);
    // a new study whose data cannot be prepared (an LM1B folder without the release in it) leaves no file
    const noData = await run(['search', '--candidates', '2', '--budget-per-candidate', '1steps', ...TINY, '--dataset', 'lm1b', '--data-dir', tmp(), '--study', study]);
    expect(noData.code).toBe(1);
    expect(noData.stderr).toMatch(/LM1B/);
    expect(existsSync(study)).toBe(false);
    expect((await run(['search', '--candidates', '1', '--budget-per-candidate', '1steps', ...TINY, '--study', study])).code).toBe(0);
  });

  it('resuming a study the user cannot write is refused before any training, naming the file', async (ctx) => {
    const dir = tmp();
    const study = join(dir, 'ro.sqlite');
    expect((await run(['search', '--candidates', '2', '--budget-per-candidate', '1steps', ...TINY, '--study', study])).code).toBe(0);
    // root writes through permissions: run the resume as an unprivileged user where we are root
    const asRoot = process.getuid?.() === 0;
    const user = asRoot ? { uid: 65534, gid: 65534 } : {};
    if (asRoot) {
      const probe = spawnSync(process.execPath, ['-e', `require('fs').accessSync(${JSON.stringify(join(root, 'node_modules/tsx/package.json'))})`], user);
      if (probe.status !== 0) {
        console.warn(`skipped: the unprivileged user 65534 cannot read this checkout (${root}), so the read-only case cannot be run as it`);
        return ctx.skip();
      }
      // readable by everyone, writable by its owner (root) alone
      chmodSync(dir, 0o755);
      chmodSync(study, 0o644);
    } else {
      chmodSync(study, 0o444);
      chmodSync(dir, 0o555);
    }
    const t0 = Date.now();
    const r = spawnSync(
      process.execPath,
      ['--conditions=@primer-search/source', '--import', 'tsx', join(root, 'tools/primer-dev.ts'), 'search', '--study', study, '--resume', '--candidates', '4'],
      { cwd: root, encoding: 'utf8', ...user },
    );
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`cannot write the study's folder ${dir}|${study} cannot be written`));
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(Date.now() - t0).toBeLessThan(30_000);
    const s = SqliteStudyStore.open(study, { readonly: true });
    expect(await s.evaluations()).toHaveLength(2);
    await s.close();
    // a closed study is one self-contained file: it reads from a folder the reader cannot write
    const show = spawnSync(process.execPath, ['--conditions=@primer-search/source', '--import', 'tsx', join(root, 'tools/primer-dev.ts'), 'study', 'show', study], {
      cwd: root,
      encoding: 'utf8',
      ...user,
    });
    expect(show.status, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/candidates 2 proposed/);
  });
});

describe('a search killed with SIGKILL', () => {
  const ARGS = ['search', '--candidates', '20', '--budget-per-candidate', '60steps', ...TINY, '--population', '4', '--tournament', '2', '--workers', '2', '--hurdles', '0.5', '--hurdle-min-samples', '2', '--seed', '5'];
  const start = (args: string[]) =>
    spawn(process.execPath, ['--conditions=@primer-search/source', '--import', 'tsx', join(root, 'tools/primer-dev.ts'), ...args], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  const exited = (p: ReturnType<typeof start>) => {
    let stderr = '';
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    return new Promise<number | null>((resolve) =>
      p.on('exit', (code) => {
        if (code !== 0 && code !== null) console.error(stderr);
        resolve(code);
      }),
    );
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const read = async <T>(file: string, f: (s: SqliteStudyStore) => Promise<T>): Promise<T | undefined> => {
    try {
      const s = SqliteStudyStore.open(file, { readonly: true });
      try {
        return await f(s);
      } finally {
        await s.close();
      }
    } catch {
      return undefined; // not created yet
    }
  };
  const key = (e: EvaluationRecord) => JSON.stringify([e.id, e.hash, e.candidate, e.status, e.fitness, e.finishedAt]);

  it('a second controller on a running study is refused, naming it; once the first is killed, the study continues', async () => {
    const study = join(tmp(), 'busy.sqlite');
    const first = start([...ARGS, '--study', study]);
    const firstDone = exited(first);
    for (let i = 0; i < 600 && !((await read(study, (s) => s.candidates()))?.length); i++) await sleep(100);
    for (const args of [['search', '--study', study, '--resume'], ['study', 'retrain', study, '--top', '1', '--seeds', '1', '--workers', '1']]) {
      const second = await run(args);
      expect(second.code, second.stderr).toBe(1);
      expect(second.stderr).toContain(`${study} is in use by another primer search or study retrain (one controller at a time)`);
    }
    first.kill('SIGKILL');
    await firstDone;
    // the lock was the killed process's: nothing stale is left to refuse the next one
    const third = await run(['search', '--study', study, '--resume', '--candidates', String((await read(study, (s) => s.candidates()))!.length)]);
    expect(third.stderr).not.toMatch(/is in use/);
  }, 120_000);

  it('a Pareto search with a constraint: refused candidates fail before training, and a SIGKILL and resume end with the same front', async () => {
    const dir = tmp();
    const PARETO = [...ARGS.map((a, i) => (ARGS[i - 1] === '--candidates' ? '14' : a)), '--objectives', 'perplexity,parameters', '--constraint', 'block_parameters>=0.95*seed'];
    const whole = join(dir, 'whole.sqlite');
    expect(await exited(start([...PARETO, '--study', whole]))).toBe(0);
    // a seed outside the bounds is refused before anything starts
    const tight = await run([...PARETO.filter((a) => a !== 'block_parameters>=0.95*seed'), 'block_parameters<=10', '--study', join(dir, 'tight.sqlite')]);
    expect([tight.code, tight.stderr]).toEqual([2, expect.stringMatching(/--constraint: the seed \(vanilla\) itself breaks it: block_parameters<=10 not kept: block_parameters [\d,]+ > 10/)]);
    expect(existsSync(join(dir, 'tight.sqlite'))).toBe(false);
    // hurdles asked for in a Pareto search: said to cut by perplexity alone
    const hurdled = await run([...PARETO, '--candidates', '1', '--study', join(dir, 'hurdled.sqlite')]);
    expect(hurdled.stderr).toContain('warning: --hurdles stop candidates by perplexity alone');
    const shown = await run(['study', 'show', whole]);
    expect(shown.stdout).toMatch(/^ {2}pareto \(populationSize 4, tournamentSize 2\) from vanilla/m);
    expect(shown.stdout).toContain('  objectives: perplexity (lower is better), parameters (lower is better)');
    expect(shown.stdout).toContain('  constraints, decided before training: block_parameters>=0.95*seed');
    expect(shown.stdout).toMatch(/^Pareto front over perplexity, parameters: \d+ of \d+ completed programs/m);
    const evaluations = (await read(whole, (s) => s.evaluations()))!;
    const refused = evaluations.filter((e) => e.reason?.startsWith('constraint:'));
    expect(refused.length).toBeGreaterThan(0);
    for (const e of refused) {
      expect(e.reason).toMatch(/^constraint: block_parameters>=0\.95\*seed not kept: block_parameters [\d,]+ < [\d,]+ \(0\.95 x the seed's [\d,]+\)/);
      expect([e.steps, e.trainSeconds, e.backend]).toEqual([0, 0, null]);
    }
    // study show's "trained" counts the trainings that started: the refused are failures, not trainings
    const own = evaluations.filter((e) => !e.sameAs);
    expect(shown.stdout).toContain(`· trained ${own.length - refused.length} · `);
    expect(shown.stdout).toMatch(new RegExp(`failures by reason: (.*, )?constraint ${refused.length}(,|$)`, 'm'));
    const front = JSON.parse((await run(['study', 'show', whole, '--json'])).stdout).front;
    expect(front.objectives).toEqual(['perplexity', 'parameters']);
    expect(front.members.length).toBeGreaterThan(0);
    // no member is dominated by any completed program
    for (const m of front.members) for (const p of front.points) expect(p.values[0] <= m.values[0] && p.values[1] <= m.values[1] && (p.values[0] < m.values[0] || p.values[1] < m.values[1])).toBe(false);

    // the same search, killed once partway and resumed
    const killed = join(dir, 'killed.sqlite');
    const p = start([...PARETO, '--study', killed]);
    const done = exited(p);
    while (((await read(killed, async (s) => (await s.evaluations()).length)) ?? 0) < 3) await sleep(100);
    p.kill('SIGKILL');
    await done;
    expect(await exited(start(['search', '--study', killed, '--resume']))).toBe(0);
    const again = JSON.parse((await run(['study', 'show', killed, '--json'])).stdout).front;
    expect(again.members.map((m: { id: number }) => m.id)).toEqual(front.members.map((m: { id: number }) => m.id));
    expect(again.points.length).toBe(front.points.length);

    // objectives and constraints are the study's: a resume that asks for others is refused
    const other = await run(['search', '--study', killed, '--resume', '--objectives', 'perplexity,step_time']);
    expect([other.code, other.stderr]).toEqual([2, expect.stringContaining('was started with perplexity,parameters; a study\'s objectives cannot change on --resume')]);
    const bound = await run(['search', '--study', killed, '--resume', '--constraint', 'block_parameters>=0.5*seed']);
    expect([bound.code, bound.stderr]).toEqual([2, expect.stringContaining('was started with block_parameters>=0.95*seed; a study\'s constraints cannot change on --resume')]);
    // several objectives need a strategy that ranks by several
    const single = await run(['search', '--study', join(dir, 'x.sqlite'), '--strategy', 'random', '--objectives', 'perplexity,parameters']);
    expect([single.code, single.stderr]).toEqual([2, expect.stringContaining('--strategy random ranks by perplexity alone')]);
    // the front retrained
    const r = await run(['study', 'retrain', whole, '--front', '--seeds', '1', '--budget', '20steps', '--workers', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^retraining 1: the seed and the ${front.members.filter((m: { id: number }) => m.id !== 0).length} programs of the Pareto front of the search`, 'm'));
  }, 240_000);

  it('resumes each time without losing or re-training a finished evaluation, and ends where an uninterrupted run ends', async () => {
    const dir = tmp();
    const whole = join(dir, 'whole.sqlite');
    expect(await exited(start([...ARGS, '--study', whole]))).toBe(0);

    const killed = join(dir, 'killed.sqlite');
    const rng = createRng(Date.now());
    const seen = new Map<number, string>();
    let kills = 0;
    for (let round = 0; round < 12 && kills < 3; round++) {
      const p = start(round === 0 ? [...ARGS, '--study', killed] : ['search', '--study', killed, '--resume']);
      let stderr = '';
      p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const done = exited(p);
      if (round === 0) {
        // the first kill once something is stored, so that there is a study to resume
        while (((await read(killed, async (s) => (await s.evaluations()).length)) ?? 0) === 0) await sleep(100);
      }
      const moment = round === 0 ? rng.int(100, 2000) : rng.int(300, 3500);
      const finished = await Promise.race([done.then(() => true), sleep(moment).then(() => false)]);
      if (finished) {
        expect(stderr).not.toMatch(/Error/);
        break;
      }
      p.kill('SIGKILL');
      await done;
      kills++;
      const evaluations = (await read(killed, (s) => s.evaluations()))!;
      // everything stored before is still there, unchanged, and only once
      for (const e of evaluations) {
        if (seen.has(e.id)) expect(key(e)).toBe(seen.get(e.id));
        seen.set(e.id, key(e));
      }
      expect(evaluations.length).toBe(seen.size);
    }
    expect(kills).toBeGreaterThan(0);
    const last = start(['search', '--study', killed, '--resume']);
    expect(await exited(last)).toBe(0);

    const final = (await read(killed, async (s) => ({ evaluations: await s.evaluations(), candidates: await s.candidates(), snapshot: await s.latestSnapshot() })))!;
    const reference = (await read(whole, async (s) => ({ evaluations: await s.evaluations(), candidates: await s.candidates(), snapshot: await s.latestSnapshot() })))!;
    for (const e of final.evaluations) if (seen.has(e.id)) expect(key(e)).toBe(seen.get(e.id));
    // one evaluation per distinct program, none twice
    expect(final.evaluations.length).toBe(new Set(final.candidates.map((c) => c.hash)).size);
    expect(final.candidates.map((c) => c.hash)).toEqual(reference.candidates.map((c) => c.hash));
    expect(final.snapshot).toEqual(reference.snapshot);
    expect(existsSync(killed)).toBe(true);
  }, 240_000);
});
