import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { workerGrants } from '@primer-search/runner/controller';
import { openStudyStore } from '@primer-search/store';
import { afterAll, describe, expect, it } from 'vitest';
import { usePostgres } from '../../store/src/__fixtures__/postgres.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const TINY = ['--layers', '1', '--d-model', '16', '--heads', '2', '--seq-len', '16', '--batch', '4', '--eval-windows', '2'];
const SEARCH = ['--candidates', '10', '--budget-per-candidate', '30steps', ...TINY, '--population', '3', '--tournament', '2', '--hurdles', 'none', '--seed', '4', '--candidate-timeout', '15s'];

const postgres = usePostgres();

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

function primer(args: string[]): { child: ChildProcess; exited: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, ['--conditions=@primer-search/source', '--import', 'tsx', join(root, 'tools/primer-dev.ts'), ...args], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, PRIMER_QUEUE_MAINTENANCE_SECONDS: '1', PRIMER_QUEUE_LEASE_SECONDS: '4' },
  });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return { child, exited: new Promise((r) => child.on('exit', (code) => r(code))), stderr: () => err };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `done()` holds, or fails after `seconds`, showing what each process said. */
async function until(what: string, done: () => boolean | Promise<boolean>, seconds: number, logs: () => string): Promise<void> {
  const end = Date.now() + seconds * 1000;
  while (!(await done())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${logs()}`);
    await sleep(50);
  }
}

async function studyOf(location: string) {
  const s = await openStudyStore(location, { readonly: true });
  try {
    return { candidates: await s.candidates(), evaluations: await s.evaluations(), snapshot: await s.latestSnapshot(), workers: await s.workers(), retrainRuns: await s.retrainRuns() };
  } finally {
    await s.close();
  }
}

describe('a database that goes away in the middle of a queue search', () => {
  it('workers under a role that may only take jobs; the controller and the workers wait out the database (pg_ctl stop -m immediate for 10 s), then finish: nothing lost, nothing twice, no stack traces', async () => {
    const url = `${postgres().url}?schema=outage`;
    const args = ['search', '--candidates', '8', '--budget-per-candidate', '40steps', ...TINY, '--population', '3', '--tournament', '2', '--hurdles', 'none', '--seed', '6', '--candidate-timeout', '60s'];
    const controller = primer([...args, '--workers', '0', '--in-flight', '2', '--study', url]);
    // the workers' role: made once the controller has made the study and the queue, granted only docs/distributed.md's GRANTs
    const owner = new pg.Client({ connectionString: postgres().url });
    await owner.connect();
    await until('the study and its queue', async () => (await owner.query("SELECT to_regclass('outage.workers') IS NOT NULL AND to_regclass('pgboss.queue') IS NOT NULL AS ok")).rows[0].ok, 60, () => controller.stderr());
    await until('the queue', async () => (await owner.query('SELECT count(*)::int AS n FROM pgboss.queue')).rows[0].n > 0, 60, () => controller.stderr());
    await owner.query("CREATE ROLE primer_worker LOGIN PASSWORD 'worker-secret'");
    for (const sql of workerGrants('postgres', 'outage', 'primer_worker')) await owner.query(sql);
    const workerUrl = url.replace('primer:test-secret@', 'primer_worker:worker-secret@');
    // what the role cannot do: rewrite results, or make tables
    const asWorker = new pg.Client({ connectionString: workerUrl.replace(/\?.*$/, '') });
    await asWorker.connect();
    await expect(asWorker.query('UPDATE outage.evaluations SET fitness = 1')).rejects.toThrow(/permission denied/);
    await expect(asWorker.query('CREATE TABLE outage.mine (x int)')).rejects.toThrow(/permission denied/);
    await expect(asWorker.query("UPDATE outage.study SET config = '{}'")).rejects.toThrow(/permission denied/);
    await asWorker.end();
    await owner.end();
    const workers = [0, 1].map(() => primer(['worker', '--study', workerUrl, '--poll', '0.5']));
    const logs = () => `controller:\n${controller.stderr()}\n${workers.map((w, i) => `worker ${i}:\n${w.stderr()}`).join('\n')}`;
    const evaluated = async () => {
      try {
        return (await studyOf(url)).evaluations.length;
      } catch {
        return 0;
      }
    };
    await until('two results', async () => (await evaluated()) >= 2, 150, logs);
    await postgres().interrupt(10);
    const code = await Promise.race([controller.exited, sleep(240_000).then(() => 'hung')]);
    expect(code, logs()).toBe(0);
    for (const w of workers) w.child.kill('SIGTERM');
    const got = await studyOf(url);
    expect(got.candidates).toHaveLength(8);
    expect(new Set(got.evaluations.map((e) => e.hash)).size).toBe(got.evaluations.length);
    expect(got.evaluations.length).toBe(new Set(got.candidates.map((c) => c.hash)).size);
    expect(got.snapshot!.told).toBe(8);
    // no stack trace anywhere (its frames: "    at f (file:line:col)"); the outage was said, in a line
    expect(logs()).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
    expect(controller.stderr()).toMatch(/the database at postgres:\/\/primer:\*\*\*@[^ ]+ is away \(.*\) while .*: waiting for it, up to 300 s/);
  }, 300_000);
});

describe('one study, many worker processes, through PostgreSQL and pg-boss', () => {
  it('survives a worker and the controller killed mid-run: every candidate evaluated once, and the population of a local run', async () => {
    // the reference: the same search on one machine, two candidates at a time
    const local = join(mkdtempSync(join(tmpdir(), 'primer-dist-')), 'local.sqlite');
    const ref = primer(['search', ...SEARCH, '--workers', '2', '--study', local]);
    expect(await ref.exited, ref.stderr()).toBe(0);

    const url = `${postgres().url}?schema=distributed`;
    let controller = primer(['search', ...SEARCH, '--workers', '0', '--in-flight', '2', '--study', url]);
    const workers = [0, 1, 2].map(() => primer(['worker', '--study', url, '--poll', '0.5']));
    const evaluated = async () => {
      try {
        return (await studyOf(url)).evaluations.length;
      } catch {
        return 0; // not created yet
      }
    };
    const logs = () => `controller:\n${controller.stderr()}\n${workers.map((w, i) => `worker ${i}:\n${w.stderr()}`).join('\n')}`;
    // a worker dies mid-candidate once a few results are in
    await until('two results', async () => (await evaluated()) >= 2, 150, logs);
    // a worker in the middle of a candidate: it said it started one it has not finished
    const midCandidate = (w: (typeof workers)[number]) => (w.stderr().match(/: training\n/g) ?? []).length > (w.stderr().match(/^\[\d+\] candidate/gm) ?? []).length;
    await until('a worker in the middle of a candidate', () => workers.some(midCandidate), 120, logs);
    const busy = workers.find(midCandidate)!;
    busy.child.kill('SIGKILL');
    const lostJob = Number(/candidate (\d+): training\n$/.exec(busy.stderr())?.[1]);
    // then the controller dies, and comes back while the other workers go on
    await until('four results', async () => (await evaluated()) >= 4, 150, logs);
    controller.child.kill('SIGKILL');
    await controller.exited;
    await sleep(1500);
    // the study remembers that it runs through the queue
    controller = primer(['search', '--study', url, '--resume']);
    const code = await Promise.race([controller.exited, sleep(200_000).then(() => 'hung')]);
    expect(code, logs()).toBe(0);
    for (const w of workers) w.child.kill('SIGTERM');

    const got = await studyOf(url);
    const want = await studyOf(local);
    // every candidate once, no evaluation lost or written twice
    expect(got.candidates.map((c) => c.hash)).toEqual(want.candidates.map((c) => c.hash));
    expect(new Set(got.evaluations.map((e) => e.hash)).size).toBe(got.evaluations.length);
    expect(got.evaluations.map((e) => e.hash).sort()).toEqual(want.evaluations.map((e) => e.hash).sort());
    for (const e of got.evaluations) {
      const w = want.evaluations.find((x) => x.hash === e.hash)!;
      expect([e.status, e.steps]).toEqual([w.status, w.steps]);
      if (e.fitness !== null) expect(e.fitness).toBeCloseTo(w.fitness!, 4);
    }
    // the killed worker's candidate was trained again by another worker after its lease expired
    expect(Number.isInteger(lostJob)).toBe(true);
    const retrainedBy = workers.filter((w) => w !== busy && new RegExp(`candidate ${lostJob}: training`).test(w.stderr()));
    expect(retrainedBy.length).toBeGreaterThan(0);
    // with a step budget, the same final population as the local run
    expect(got.snapshot).toEqual(want.snapshot);
    // every result says where and with what it was trained; the three workers are on record
    for (const e of got.evaluations) {
      expect(e.environment).toMatchObject({ backend: 'wasm', tfjs: '4.22.0', project: expect.stringMatching(/^\d+\.\d+\.\d+/), node: process.version });
      expect(e.environment!.host).toBe(e.machine);
      expect(e.environment!.mixedHardware).toBeUndefined();
    }
    // each worker prepared the data before it took a job, not inside a candidate's time limit
    for (const w of workers) expect(w.stderr(), w.stderr()).toMatch(/^preparing brown with the byte tokenizer\.\.\.\ndata: [^\n]+\nworker /m);
    expect(got.workers).toHaveLength(3);
    expect(new Set(got.workers.map((w) => w.id)).size).toBe(3);
    expect(got.workers.every((w) => w.environment.backend === 'wasm' && !w.allowMixedHardware)).toBe(true);

    // a worker on other hardware, or with other plugins, is refused unless it says so, which is recorded
    const cpu = primer(['worker', '--study', url, '--backend', 'cpu']);
    expect(await cpu.exited).toBe(2);
    expect(cpu.stderr()).toMatch(/does not match the study .*backend cpu here, wasm on the study's first worker/);
    const plugin = join(mkdtempSync(join(tmpdir(), 'primer-dist-')), 'extra-ops.mjs');
    writeFileSync(plugin, 'export {};\n');
    const extra = primer(['worker', '--study', url, '--plugin', plugin]);
    expect(await extra.exited).toBe(2);
    expect(extra.stderr()).toMatch(/the plugin extra-ops\.mjs is loaded here but not by the study/);
    const mixed = primer(['worker', '--study', url, '--backend', 'cpu', '--allow-mixed-hardware']);
    await until('the mixed worker to join', () => /Ctrl-C to stop/.test(mixed.stderr()), 60, () => mixed.stderr());
    expect(mixed.stderr()).toMatch(/joining with different hardware \(--allow-mixed-hardware, recorded\): backend cpu here/);
    mixed.child.kill('SIGTERM');
    await mixed.exited;
    const after = await studyOf(url);
    expect(after.workers).toHaveLength(4);
    expect(after.workers[3]).toMatchObject({ allowMixedHardware: true, environment: { backend: 'cpu', mixedHardware: true } });
  }, 600_000);

  it('retrains through the queue: a controller killed and started again, and the numbers of a local retraining', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-dist-'));
    const SMALL = ['--candidates', '5', '--budget-per-candidate', '6steps', ...TINY, '--population', '3', '--tournament', '2', '--hurdles', 'none', '--seed', '4', '--workers', '1'];
    const RETRAIN = ['--top', '1', '--seeds', '2', '--budget', '30steps'];
    // the reference: searched and retrained on this machine
    const local = join(dir, 'local.sqlite');
    for (const args of [['search', ...SMALL, '--study', local], ['study', 'retrain', local, ...RETRAIN, '--workers', '1']]) {
      const p = primer(args);
      expect(await p.exited, p.stderr()).toBe(0);
    }
    // the same search into PostgreSQL, then its retraining sent to two workers through the queue
    const url = `${postgres().url}?schema=retrain_queue`;
    const searched = primer(['search', ...SMALL, '--study', url]);
    expect(await searched.exited, searched.stderr()).toBe(0);
    const workers = [0, 1].map(() => primer(['worker', '--study', url, '--poll', '0.5']));
    let controller = primer(['study', 'retrain', url, ...RETRAIN, '--workers', '0', '--in-flight', '2']);
    const logs = () => `controller:\n${controller.stderr()}\n${workers.map((w, i) => `worker ${i}:\n${w.stderr()}`).join('\n')}`;
    await until('a first retraining run', async () => (await studyOf(url)).retrainRuns.length >= 1, 150, logs);
    expect(controller.stderr()).toMatch(/retraining 1 of .*: seed \(vanilla\), candidate \d+ · 30 steps per run · seeds 4, 5 · 2 at a time through the queue/);
    controller.child.kill('SIGKILL');
    await controller.exited;
    controller = primer(['study', 'retrain', url, ...RETRAIN, '--workers', '0', '--in-flight', '2']);
    const code = await Promise.race([controller.exited, sleep(200_000).then(() => 'hung')]);
    expect(code, logs()).toBe(0);
    expect(controller.stderr()).toMatch(/continuing retraining 1 \([1-3] of 4 runs recorded\)/);
    for (const w of workers) w.child.kill('SIGTERM');
    // the workers name the runs they train
    expect(workers.map((w) => w.stderr()).join('')).toMatch(/retraining 1: (seed \(vanilla\)|candidate \d+), seed [45]: training/);
    const got = (await studyOf(url)).retrainRuns;
    const want = (await studyOf(local)).retrainRuns;
    // every run once, with the numbers of the local retraining
    const byRun = (runs: typeof got) => runs.map((r) => ({ program: r.program, seed: r.seed, status: r.status, steps: r.steps, fitness: r.fitness })).sort((a, b) => a.program - b.program || a.seed - b.seed);
    expect(got).toHaveLength(4);
    for (const [a, b] of byRun(got).map((r, i) => [r, byRun(want)[i]!] as const)) {
      expect({ ...a, fitness: undefined }).toEqual({ ...b, fitness: undefined });
      expect(a.fitness).toBeCloseTo(b.fitness!, 4);
    }
  }, 600_000);
});
