// `npm run bench:distributed`: what the PostgreSQL queue costs per candidate. The same search
// (step budget, so the same candidates) runs through the local worker pool and through a
// PostgreSQL study's pg-boss queue with `primer worker` processes, with 1 and 2 workers, side by
// side in one run. Overhead per candidate = its dispatch-to-result time through the queue less
// the same program's through the local pool (paired by program), and is set against a 60 s
// budget. Candidates per hour come from each search's wall time.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStudyStore } from '@primer-search/store';
import { startPostgres } from '../packages/store/src/__fixtures__/postgres-server.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const candidates = Number(process.argv[2] ?? 8);
const SEARCH = ['--candidates', String(candidates), '--budget-per-candidate', '60steps', '--layers', '1', '--d-model', '64', '--heads', '2', '--seq-len', '32', '--batch', '8',
  '--eval-windows', '2', '--population', '3', '--tournament', '2', '--hurdles', 'none', '--seed', '5', '--json'];

function primer(args: string[]): { child: ChildProcess; exited: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, ['--conditions=@primer-search/source', '--import', 'tsx', join(root, 'tools/primer-dev.ts'), ...args], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return { child, exited: new Promise((r) => child.on('exit', (code) => r(code))), stderr: () => err };
}

async function walls(location: string): Promise<Map<string, { wall: number; train: number }>> {
  const s = await openStudyStore(location, { readonly: true });
  try {
    return new Map((await s.evaluations()).map((e) => [e.hash, { wall: e.wallSeconds, train: e.trainSeconds }]));
  } finally {
    await s.close();
  }
}

async function timed(what: string, args: string[]): Promise<number> {
  const t0 = performance.now();
  const p = primer(args);
  const code = await p.exited;
  if (code !== 0) throw new Error(`${what} exited ${code}:\n${p.stderr()}`);
  return (performance.now() - t0) / 1000;
}

const pg = await startPostgres();
const dir = mkdtempSync(join(tmpdir(), 'primer-bench-dist-'));
const rows: string[] = [];
try {
  // warm the token cache and the file cache
  await timed('warm-up', ['search', ...SEARCH, '--candidates', '1', '--workers', '1', '--study', join(dir, 'warm.sqlite')]);
  for (const w of [1, 2]) {
    const local = join(dir, `local-${w}.sqlite`);
    const localWall = await timed('local search', ['search', ...SEARCH, '--workers', String(w), '--study', local]);
    const url = `${pg.url}?schema=bench_${w}`;
    // workers first: they wait for the study, so their start is not the queue's cost
    const workers = Array.from({ length: w }, () => primer(['worker', '--study', url, '--poll', '0.5']));
    const queueWall = await timed('queue search', ['search', ...SEARCH, '--workers', '0', '--in-flight', String(w), '--study', url]);
    for (const x of workers) x.child.kill('SIGTERM');
    await Promise.all(workers.map((x) => x.exited));
    const a = await walls(local);
    const b = await walls(url);
    const paired = [...a].filter(([h]) => b.has(h)).map(([h, l]) => ({ local: l, queue: b.get(h)! }));
    // dispatch-to-result less training time: process start, data, compile, evaluation, and the queue's part
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const extraLocal = mean(paired.map((p) => p.local.wall - p.local.train));
    const extraQueue = mean(paired.map((p) => p.queue.wall - p.queue.train));
    const overhead = extraQueue - extraLocal;
    rows.push(
      `${w} worker${w > 1 ? 's' : ' '} | local pool ${((candidates / localWall) * 3600).toFixed(0).padStart(5)} candidates/h | queue ${((candidates / queueWall) * 3600).toFixed(0).padStart(5)} candidates/h | ` +
        `per candidate, beyond training: local ${extraLocal.toFixed(2)} s, queue ${extraQueue.toFixed(2)} s -> queue overhead ${overhead.toFixed(2)} s = ${((overhead / 60) * 100).toFixed(2)}% of a 60 s budget (${paired.length} programs paired)`,
    );
  }
} finally {
  await pg.stop();
}
console.log(`${candidates} candidates of 60 steps (1 layer, dModel 64, seq 32, batch 8) per search; wall times include each search's process start`);
for (const r of rows) console.log(r);
