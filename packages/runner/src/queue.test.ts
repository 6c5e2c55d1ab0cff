// The queue's job rules against a real PostgreSQL and pg-boss (no training: the handlers answer
// at once): identity, reset of failed jobs, heartbeat leases, hand-back on stop, and one owner of
// the controller's connections.
import pg from 'pg';
import { environmentFailure, type EvaluationJob, type JobOutcome } from '@primer-search/study';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { usePostgres } from '../../store/src/__fixtures__/postgres.js';
import { DONE_CHANNEL, JOBS_CHANNEL, QueuePool, QueueSignals, deleteQueue, jobId, openQueuePool, serveQueue, startQueue, type QueuedJob } from './queue.js';

const postgres = usePostgres();
process.env.PRIMER_QUEUE_LEASE_SECONDS = '3';
process.env.PRIMER_QUEUE_MAINTENANCE_SECONDS = '1';

const job = (candidate: number, over: Partial<EvaluationJob> = {}): EvaluationJob => ({
  candidate,
  study: 'study-a',
  hash: `h${candidate}`,
  dna: { program: candidate },
  settings: { seed: 1, budget: { kind: 'steps', steps: 10 } } as never,
  hurdles: [],
  plugins: [],
  ...over,
});
const result = (j: EvaluationJob, fitness: number): JobOutcome => ({ candidate: j.candidate, hash: j.hash, status: 'completed', fitness }) as never;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A worker serving `url`'s queue with `handle` until the returned stop is called. */
async function worker(url: string, handle: (data: QueuedJob, id: string) => Promise<object>) {
  const { boss, queue } = await startQueue(url, { supervise: false });
  const signals = await QueueSignals.listen(url, boss, queue, JOBS_CHANNEL);
  const stop = new AbortController();
  const serving = serveQueue({ boss, queue, concurrency: 1, pollSeconds: 0.2, handle, signals, signal: stop.signal });
  return {
    boss,
    queue,
    stop: async () => {
      stop.abort();
      await serving;
      await signals.close();
      await boss.stop({ graceful: false, close: true, wait: true, timeout: 5000 });
    },
  };
}

describe('deleting a study\'s queue (primer study delete)', () => {
  it('removes the queue and its jobs, leaves the other studies\' queues, and is a no-op where there is none', async () => {
    const db = await postgres().database();
    expect(await deleteQueue(`${db}?schema=never_queued`)).toBe(false); // pg-boss never installed there
    const a = `${db}?schema=del_a`;
    const b = `${db}?schema=del_b`;
    const qa = await startQueue(a, { supervise: false });
    const qb = await startQueue(b, { supervise: false });
    await qa.boss.send(qa.queue, { x: 1 });
    await qb.boss.send(qb.queue, { x: 2 });
    expect(await deleteQueue(a)).toBe(true);
    expect(await qb.boss.getQueue(qa.queue)).toBeNull();
    expect(await qb.boss.getQueue(qb.queue)).not.toBeNull();
    expect(await deleteQueue(a)).toBe(false);
    for (const q of [qa, qb]) await q.boss.stop({ graceful: false, close: true, wait: true, timeout: 5000 });
  });
});

describe('the study queue', () => {
  let url: string;
  beforeAll(async () => {
    url = `${await postgres().database()}?schema=q`;
  });
  afterAll(() => {
    delete process.env.PRIMER_QUEUE_LEASE_SECONDS;
  });

  it('a job that ended with an environment failure, or failed, runs again on the next run (a resume), not its stale outcome', async () => {
    const controller = await openQueuePool(url, 2);
    let broken = true;
    const w = await worker(url, async ({ job: j }) => (broken ? environmentFailure(j, 'no GPU here') : result(j, 7)));
    try {
      const first = await controller.pool.run(job(1), { timeoutSeconds: 30 });
      expect(first).toMatchObject({ status: 'environment', reason: 'no GPU here' });
      broken = false; // the cause fixed
      expect(await controller.pool.run(job(1), { timeoutSeconds: 30 })).toMatchObject({ status: 'completed', fitness: 7 });
      // a job failed by its worker twice (lease lost, or an exception) is reset the same way
      let throwing = true;
      const w2 = await worker(url, async ({ job: j }) => {
        if (throwing) throw new Error('the worker fell over');
        return result(j, 8);
      });
      await w.stop();
      const failed = await controller.pool.run(job(2), { timeoutSeconds: 30 });
      expect(failed).toMatchObject({ status: 'environment' });
      expect((failed as { reason: string }).reason).toMatch(/worker lost: candidate 2's job failed after 2 tries \(the worker fell over\)/);
      throwing = false;
      expect(await controller.pool.run(job(2), { timeoutSeconds: 30 })).toMatchObject({ status: 'completed', fitness: 8 });
      await w2.stop();
    } finally {
      await w.stop().catch(() => {});
      await controller.stop();
    }
  }, 60_000);

  it('a job of another study, or with other settings, hurdles or program, is never taken for this one', async () => {
    const controller = await openQueuePool(url, 2);
    const w = await worker(url, async ({ job: j }) => result(j, (j.settings as { seed: number }).seed * 100 + (j.study === 'study-b' ? 1 : 0)));
    try {
      const a = await controller.pool.run(job(5), { timeoutSeconds: 30 });
      // same queue (the schema dropped and made again), same candidate number: other study, other settings
      const b = await controller.pool.run(job(5, { study: 'study-b' }), { timeoutSeconds: 30 });
      const c = await controller.pool.run(job(5, { settings: { seed: 2, budget: { kind: 'steps', steps: 10 } } as never }), { timeoutSeconds: 30 });
      const d = await controller.pool.run(job(5, { hurdles: [{ fraction: 0.5, threshold: 3 }] }), { timeoutSeconds: 30 });
      expect([a, b, c, d].map((x) => (x as { fitness: number }).fitness)).toEqual([100, 101, 200, 100]);
      expect(new Set([job(5), job(5, { study: 'study-b' }), job(5, { hurdles: [{ fraction: 0.5, threshold: 3 }] })].map((x) => jobId('q', x))).size).toBe(3);
      // the same job (a controller that came back) is found, not sent again: its result is taken
      expect(jobId('q', job(5, { label: 'another name', plugins: ['/elsewhere/x.mjs'] }))).toBe(jobId('q', job(5)));
    } finally {
      await w.stop();
      await controller.stop();
    }
  }, 60_000);

  it('holds a job by heartbeat past its lease while the worker lives; a worker that stops hands it back without a try, and it runs once elsewhere', async () => {
    const controller = await openQueuePool(url, 2);
    const started: string[] = [];
    // a job longer than three leases, on a live worker: no expiry, no retry
    const slow = await worker(url, async ({ job: j }, id) => {
      started.push(id);
      await sleep(10_000);
      return result(j, 9);
    });
    try {
      const out = await controller.pool.run(job(7), { timeoutSeconds: 60 });
      expect(out).toMatchObject({ fitness: 9 });
      expect(started).toHaveLength(1);
      const [{ retrycount }] = (await pgQuery(url, "SELECT retry_count AS retrycount FROM pgboss.job WHERE id = $1 UNION ALL SELECT retry_count FROM pgboss.archive WHERE id = $1", [jobId(controller.queue, job(7))])) as Array<{ retrycount: number }>;
      expect(retrycount).toBe(0);
      // stopped with a job in hand: it goes back at once, no try counted, and another worker finishes it
      const running = controller.pool.run(job(8), { timeoutSeconds: 60 });
      while (!started.includes(jobId(controller.queue, job(8)))) await sleep(50);
      await slow.stop();
      const state = await pgQuery(url, 'SELECT state, retry_count FROM pgboss.job WHERE id = $1', [jobId(controller.queue, job(8))]);
      expect(state).toEqual([{ state: 'created', retry_count: 0 }]);
      const fast = await worker(url, async ({ job: j }) => result(j, 10));
      expect(await running).toMatchObject({ fitness: 10 });
      await fast.stop();
    } finally {
      await slow.stop().catch(() => {});
      await controller.stop();
    }
  }, 90_000);

  it('a dead worker (no heartbeat, no hand-back) loses its job within about a lease, and it runs elsewhere', async () => {
    const controller = await openQueuePool(url, 2);
    // a worker that takes the job and then never renews or answers: as if killed
    const { boss, queue } = await startQueue(url, { supervise: false });
    const sent = controller.pool.run(job(9), { timeoutSeconds: 600 });
    let taken: unknown[] = [];
    while (taken.length === 0) {
      taken = await boss.fetch(queue, { batchSize: 1 });
      await sleep(50);
    }
    await boss.stop({ graceful: false, close: true, wait: true, timeout: 5000 });
    const t0 = Date.now();
    const w = await worker(url, async ({ job: j }) => result(j, 11));
    try {
      expect(await sent).toMatchObject({ fitness: 11 });
      // the lease is 3 s here, the maintenance 1 s: well under the candidate's 600 s limit
      expect(Date.now() - t0).toBeLessThan(15_000);
    } finally {
      await w.stop();
      await controller.stop();
    }
  }, 60_000);

  it("stopping the controller's pool closes its LISTEN connection too (nothing left to keep the process alive)", async () => {
    const listeners = async () => Number(((await pgQuery(url, "SELECT count(*) AS n FROM pg_stat_activity WHERE query ILIKE 'LISTEN%'", [])) as Array<{ n: string }>)[0]!.n);
    const before = await listeners();
    const controller = await openQueuePool(url, 1);
    expect(await listeners()).toBe(before + 1);
    await controller.stop();
    for (let i = 0; i < 50 && (await listeners()) > before; i++) await sleep(50);
    expect(await listeners()).toBe(before);
    void DONE_CHANNEL;
    void QueuePool;
  });
});

async function pgQuery(url: string, sql: string, values: unknown[]): Promise<unknown[]> {
  const u = new URL(url);
  u.searchParams.delete('schema');
  const c = new pg.Client({ connectionString: u.toString() });
  await c.connect();
  try {
    return (await c.query(sql, values)).rows;
  } finally {
    await c.end();
  }
}
