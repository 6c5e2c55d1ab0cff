import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runPrimer as run } from './__fixtures__/run.js';
import { readKeptCompareRun } from './compare-runs.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const TINY = ['--d-model', '32', '--seq-len', '16', '--batch', '4', '--layers', '1', '--eval-windows', '4'];
const tmp = () => mkdtempSync(join(tmpdir(), 'primer-search-compare-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `primer compare` in a child process, to be stopped or killed part-way. */
function spawnCompare(args: string[]) {
  const p = spawn(process.execPath, ['--conditions=@primer-search/source', '--import', 'tsx', join(root, 'tools/primer-dev.ts'), 'compare', ...args], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  p.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => p.on('exit', (code) => resolve(code)));
  return { p, exited, stderr: () => stderr };
}

/** The kept runs and checkpoints in `dir`: finished records and folders with a saved step. */
function kept(dir: string) {
  const names = existsSync(dir) ? readdirSync(dir) : [];
  const records = names.filter((n) => n.endsWith('.json'));
  const saved = names
    .filter((n) => !n.endsWith('.json') && existsSync(join(dir, n, 'checkpoint.json')))
    .map((n) => {
      try {
        return JSON.parse(readFileSync(join(dir, n, 'checkpoint.json'), 'utf8')).step as number;
      } catch {
        return 0; // being replaced
      }
    });
  return { records, saved };
}

async function until(what: () => boolean, ms = 120_000) {
  for (let t = 0; t < ms && !what(); t += 50) await sleep(50);
  return what();
}

type Report = { perSeed: Array<{ model: string; seed: number; steps: number; finalPerplexity: number }>; records: Array<{ name: string; seed: number; record: { result: { evaluations: Array<{ step: number; loss: number }> } } }> };
const numbers = (r: Report) => ({
  perSeed: r.perSeed.map((x) => [x.model, x.seed, x.steps, x.finalPerplexity]),
  curves: r.records.map((x) => [x.name, x.seed, x.record.result.evaluations.map((e) => [e.step, e.loss])]),
});

describe('primer compare --checkpoint', () => {
  const ARGS = ['--models', 'vanilla,primer-ez', '--budget', '300steps', ...TINY];

  it('a comparison stopped (SIGTERM) and killed (SIGKILL) part-way continues with --resume, and ends with the numbers of one never stopped', async () => {
    const straight = await run(['compare', ...ARGS, '--json']);
    expect(straight.code, straight.stderr).toBe(0);
    const dir = join(tmp(), 'kept');

    // stopped with SIGTERM once the first run has saved a step: it saves the run and says how to go on
    const first = spawnCompare([...ARGS, '--checkpoint', dir, '--checkpoint-every', '0']);
    expect(await until(() => kept(dir).saved.some((s) => s > 0))).toBe(true);
    first.p.kill('SIGTERM');
    expect(await first.exited).toBe(143);
    expect(first.stderr()).toMatch(/stopped vanilla at step \d+, saved in .*kept\/run-[0-9a-f]{16}; continue with the same command and --resume/);
    expect(kept(dir).records).toEqual([]);
    expect(kept(dir).saved).toHaveLength(1);

    // the same command without --resume does not train over what is kept
    const refused = await run(['compare', ...ARGS, '--checkpoint', dir]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--checkpoint: .*kept holds 1 run of a comparison: continue it with --resume, or give another folder/);

    // continued, and killed outright once a run is finished and a later one has saved a step
    const second = spawnCompare([...ARGS, '--checkpoint', dir, '--checkpoint-every', '0', '--resume']);
    expect(await until(() => kept(dir).records.length >= 1 && kept(dir).saved.some((s) => s > 0))).toBe(true);
    second.p.kill('SIGKILL');
    await second.exited;
    expect(second.stderr()).toMatch(/vanilla: continuing from step \d+, saved in /);
    const finished = kept(dir).records.length;
    expect(finished).toBe(1);

    const last = await run(['compare', ...ARGS, '--checkpoint', dir, '--resume', '--json']);
    expect(last.code, last.stderr).toBe(0);
    expect(last.stderr.match(/: finished before \(perplexity [\d.]+\), kept in /g)).toHaveLength(finished);
    expect(numbers(JSON.parse(last.stdout))).toEqual(numbers(JSON.parse(straight.stdout)));
    // each finished run's record is kept, no checkpoint is left
    expect(readdirSync(dir).sort()).toEqual(kept(dir).records.sort());
    expect(kept(dir).records).toHaveLength(2);

    // all kept: nothing is trained again, the table is the same, and --csv gets every run's curve
    const csv = join(tmp(), 'curves.csv');
    const again = await run(['compare', ...ARGS, '--checkpoint', dir, '--resume', '--csv', csv, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr.match(/finished before/g)).toHaveLength(2);
    expect(again.stderr).not.toMatch(/continuing from step/);
    expect(numbers(JSON.parse(again.stdout))).toEqual(numbers(JSON.parse(straight.stdout)));
    expect(readFileSync(csv, 'utf8').trim().split('\n')).toHaveLength(1 + 2 * 10);
    // the data-parallel threads (the machine's cores by default) are where a run runs, not what it is
    const cores = await run(['compare', ...ARGS, '--checkpoint', dir, '--resume', '--data-parallel', '2']);
    expect(cores.stderr.match(/finished before/g)).toHaveLength(2);
    // the lock was released, and no checkpoint is left
    expect(readdirSync(dir).sort()).toEqual(kept(dir).records.sort());
  }, 300_000);

  it('takes its folder for itself: refuses one in use by a live process, here or elsewhere, and takes over a killed one\'s', async () => {
    const ONE = ['--models', 'vanilla', '--budget', '2steps', ...TINY];
    const dir = join(tmp(), 'kept');
    mkdirSync(dir);
    // a live process holds it
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: other.pid, host: hostname() }));
      const busy = await run(['compare', ...ONE, '--checkpoint', dir]);
      expect(busy.code).toBe(2);
      expect(busy.stderr).toContain(`kept is in use by another primer compare (process ${other.pid}); wait for it to end, or give another folder`);
    } finally {
      other.kill();
    }
    // this very process id, left by a killed process in an earlier container: not alive for this purpose
    writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: process.pid, host: hostname() }));
    const own = await run(['compare', ...ONE, '--checkpoint', dir]);
    expect(own.code, own.stderr).toBe(0);
    expect(readdirSync(dir)).toEqual([expect.stringMatching(/^run-[0-9a-f]{16}\.json$/)]);
    rmSync(join(dir, readdirSync(dir)[0]!));
    writeFileSync(join(dir, 'lock'), '');
    const empty = await run(['compare', ...ONE, '--checkpoint', dir]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/lock is not a lock this command made \(""\); if no comparison runs on .*kept, remove it/);
    writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: 123, host: 'elsewhere\u001b[31m' }));
    const far = await run(['compare', ...ONE, '--checkpoint', dir]);
    expect(far.code).toBe(2);
    expect(far.stderr).toMatch(/in use by process 123 on another machine \("elsewhere\\u001b\[31m"\); if none runs there any more, remove .*lock/);
    writeFileSync(join(dir, 'lock'), JSON.stringify({ pid: 99999999, host: hostname() }));
    const taken = await run(['compare', ...ONE, '--checkpoint', dir]);
    expect(taken.code, taken.stderr).toBe(0);
    expect(readdirSync(dir)).toEqual([expect.stringMatching(/^run-[0-9a-f]{16}\.json$/)]);
  });

  it('trains again a kept run whose data changed', async () => {
    const data = tmp();
    const text = Array.from({ length: 200 }, (_, i) => `line ${i} of a small corpus, with words enough to train on.`).join('\n');
    writeFileSync(join(data, 'train.txt'), `${text}\n`);
    writeFileSync(join(data, 'validation.txt'), `${text.slice(0, 2000)}\n`);
    const dir = join(tmp(), 'kept');
    const cache = join(tmp(), 'cache');
    const ONE = ['compare', '--models', 'vanilla', '--budget', '2steps', '--dataset', 'text', '--data-dir', data, '--cache', cache, ...TINY];
    expect((await run([...ONE, '--checkpoint', dir])).code).toBe(0);
    // the files changed, and the token cache (which refuses stale files) built again: in a new
    // process, as a user would (this one keeps the data it prepared)
    writeFileSync(join(data, 'train.txt'), `${text}\n\nmore text, added later.\n`);
    rmSync(cache, { recursive: true });
    const r = spawnCompare([...ONE.slice(1), '--checkpoint', dir, '--resume']);
    expect(await r.exited, r.stderr()).toBe(0);
    expect(r.stderr()).toMatch(/warning: .*run-[0-9a-f]{16}\.json was trained on other data \(11690 training and 2000 validation tokens, vocabulary 257, tokenizer "byte-utf8-257"; now 11714, 2000, 257 and "byte-utf8-257"\): training vanilla again/);
  });

  it('trains again a run whose kept record or checkpoint is damaged or not its own, saying so', async () => {
    const dir = join(tmp(), 'kept');
    const ONE = ['--models', 'vanilla', '--budget', '2steps', ...TINY];
    const whole = await run(['compare', ...ONE, '--checkpoint', dir, '--json']);
    expect(whole.code, whole.stderr).toBe(0);
    const [file] = readdirSync(dir);
    expect(file).toMatch(/^run-[0-9a-f]{16}\.json$/);
    const good = readFileSync(join(dir, file!), 'utf8');
    const figures = (r: { stdout: string }) => JSON.parse(r.stdout).perSeed.map((x: { finalPerplexity: number }) => x.finalPerplexity);
    // the reader, case by case: only a whole record of this model, settings and data is taken
    const key = file!.slice(4, 20);
    const kept = JSON.parse(good);
    // the good record with one thing changed
    const edited = (change: (k: any) => unknown) => {
      const k = JSON.parse(good);
      change(k);
      return JSON.stringify(k);
    };
    const read = (text: string, backend = kept.record.backend) => {
      writeFileSync(join(dir, file!), text);
      return readKeptCompareRun(dir, key, kept.record.settings, kept.data, backend);
    };
    expect(read(good)).toEqual({ record: kept.record });
    expect(read(good, { ...kept.record.backend, products: 'XNNPACK' })).toEqual({ record: kept.record, elsewhere: `${kept.record.backend.tfBackend}, ${kept.record.backend.products}` });
    for (const [text, why] of [
      ['\u001b]0;title\u0007{"format": "primer-compare-run", "ver', /is not JSON \(damaged, or cut short\)/],
      [good.replace('"format":"primer-compare-run"', '"format":"other"'), /is not a run record of primer compare/],
      [good.replace(`"key":"${key}"`, '"key":"0000000000000000"'), /is not a run record of primer compare/],
      [good.replace(/"final":\{[^}]*\}/, '"final":"x"'), /does not hold a whole run record/],
      [good.replace(/"data":\{[^}]*\},/, ''), /does not hold a whole run record/],
      [good.replace(/"data":\{[^}]*\},(?="result")/, ''), /does not hold a whole run record/],
      [good.replace(/"flops":[\d.e+]+/, '"flops":"1\\n2"'), /does not hold a whole run record/],
      [good.replace(/"tokenizer":"[^"]*"/, '"tokenizer":"another\\u001b[31m"'), /was trained on other data \(.*tokenizer "another\\u001b\[31m"/],
      [good.replace(/"budget":\{[^}]*\}/, '"budget":{"kind":"steps","steps":5}'), /records a run with other settings/],
      [edited((k) => (k.record.result.status = 'stopped')), /does not hold a whole run record/],
      [edited((k) => delete k.record.result.final), /does not hold a whole run record/],
      [edited((k) => (k.record.result.evaluations = [{ step: 1 }])), /does not hold a whole run record/],
      [edited((k) => (k.record.backend = [])), /does not hold a whole run record/],
      [edited((k) => (k.version = 2)), /is not a run record of primer compare/],
      [edited((k) => (k.record = null)), /records a run with other settings/],
      ['[]', /is not a run record of primer compare/],
      // values that would throw where a message prints them
      [edited((k) => (k.record.backend.tfBackend = { toString: 1 })), /does not hold a whole run record/],
      [edited((k) => (k.data.trainTokens = { toString: 1 })), /does not hold a whole run record/],
      [edited((k) => (k.record.settings.dataParallel = { toString: 1 })), /does not hold a whole run record/],
    ] as const) {
      const r = read(text);
      expect(r && 'problem' in r ? r.problem : r).toMatch(why);
      expect((r as { problem: string }).problem).not.toMatch(/\u001b|\u0007/);
    }
    // and through the command: named in a warning, trained again with the same numbers, and kept whole again
    writeFileSync(join(dir, file!), good.slice(0, 100));
    const again = await run(['compare', ...ONE, '--checkpoint', dir, '--resume', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/warning: .*run-[0-9a-f]{16}\.json is not JSON \(damaged, or cut short\): training vanilla again/);
    expect(figures(again)).toEqual(figures(whole));
    expect(JSON.parse(readFileSync(join(dir, file!), 'utf8')).record.result.final.perplexity).toBe(figures(whole)[0]);
    // kept runs of another budget are not read, and said so
    const other2 = await run(['compare', '--models', 'vanilla', '--budget', '3steps', ...TINY, '--checkpoint', dir, '--resume']);
    expect(other2.code, other2.stderr).toBe(0);
    expect(other2.stderr).toMatch(/warning: .*kept keeps 1 run that no run of this comparison stands for \(another budget, other settings or models\): it is not read/);
    // a checkpoint folder that holds something else: trained from the start
    const other = join(tmp(), 'other');
    const ckpt = join(other, file!.replace(/\.json$/, ''));
    expect((await run(['train', '--model', 'primer-ez', '--budget', '2steps', '--checkpoint', ckpt, ...TINY])).code).toBe(0);
    const fresh = await run(['compare', ...ONE, '--checkpoint', other, '--resume', '--json']);
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stderr).toMatch(/warning: the checkpoint .* training vanilla from the start/);
    expect(figures(fresh)).toEqual(figures(whole));
  }, 300_000);

  it('refuses --resume without --checkpoint, a file for a folder, and a missing folder to resume', async () => {
    const r = await run(['compare', '--models', 'vanilla', '--budget', '1steps', '--resume']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--resume needs --checkpoint DIR');
    const file = join(tmp(), 'f');
    writeFileSync(file, 'x');
    for (const extra of [[], ['--resume']]) {
      const f = await run(['compare', '--models', 'vanilla', '--budget', '1steps', '--checkpoint', file, ...extra]);
      expect(f.code).toBe(2);
      expect(f.stderr).toMatch(/--checkpoint: .* is a file, not a folder/);
    }
    const none = await run(['compare', '--models', 'vanilla', '--budget', '1steps', '--checkpoint', join(tmp(), 'none'), '--resume']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/--checkpoint: no such folder/);
    const every = await run(['compare', '--models', 'vanilla', '--budget', '1steps', '--checkpoint', join(tmp(), 'x'), '--checkpoint-every', 'never']);
    expect(every.code).toBe(2);
    expect(every.stderr).toContain('--checkpoint-every');
    const alone = await run(['compare', '--models', 'vanilla', '--budget', '1steps', '--checkpoint-every', '0']);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toContain('--checkpoint-every needs --checkpoint DIR');
  });
});
