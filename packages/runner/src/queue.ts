/**
 * Candidates as jobs on a PostgreSQL queue (pg-boss, built on SKIP LOCKED): the controller
 * sends each candidate to its study's queue and waits for the outcome; `primer worker`
 * processes on any machine take jobs and train them in the same local worker pool a single
 * machine uses.
 *
 * The rules of a job, all here (docs/distributed.md says them for users):
 * - identity: a job is named by a hash of its queue and of everything that decides its result
 *   (the study's id, the program, the settings with the seed and budget, the hurdles and their
 *   thresholds, the checkpoints, the behaviours it is checked against, the plugins' identities):
 *   `jobIdentity`. A job found under a name whose identity differs is never reused.
 * - reuse: a controller that comes back finds the job it sent and waits for it, or takes its
 *   result; a job that ended failed, or whose outcome is an environment failure, is reset (taken
 *   off the queue and its archive) and sent again, so fixing the cause and resuming works.
 * - lease: a worker holds a job by heartbeat (`leaseSeconds()`, renewed every third of it),
 *   whatever the candidate's budget; a worker that dies stops renewing, and the job returns to the
 *   queue within about a lease. The candidate's own time limit is the worker's to enforce.
 * - retry: a lease lost twice fails the job (an environment failure: worker lost).
 * - hand-back: a worker told to stop hands its jobs back at once, without counting a try.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { environmentFailure, isEnvironmentFailure, jobName, type EvaluationJob, type JobOutcome } from '@primer-search/study';
import { withReconnect, within } from '@primer-search/store';
import type { EvaluationPool, RunJobOptions } from './pool.js';

/** What travels on the queue: the job and its time limit. */
export interface QueuedJob {
  job: EvaluationJob;
  timeoutSeconds: number;
}

/**
 * How long a job's lease lasts without a heartbeat (PRIMER_QUEUE_LEASE_SECONDS; tests shorten it):
 * a dead worker's job returns to the queue this long (plus a maintenance interval) after its last
 * heartbeat, whatever the candidate's budget.
 */
export const leaseSeconds = (): number => Math.max(2, Number(process.env.PRIMER_QUEUE_LEASE_SECONDS) || 45);

/** The queue of the study at a postgres:// URL: one per database and schema. */
export function queueName(url: string): string {
  const u = new URL(url);
  const schema = u.searchParams.get('schema') ?? 'public';
  return `primer-search.${u.pathname.replace(/^\//, '') || 'postgres'}.${schema}`;
}

/** JSON with object keys sorted, so the same value always writes the same text. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/**
 * A job's identity: a hash of its queue and of everything that decides its result. Left out:
 * the label (for logs), the plugins' paths (each machine has its own; their identities count) and
 * a checkpoint folder (a machine's own; a resumed run is the same run).
 */
export function jobIdentity(queue: string, job: EvaluationJob): string {
  const { label: _label, plugins: _plugins, checkpoint: _checkpoint, ...decides } = job;
  return createHash('sha256').update(canonical({ queue, ...decides })).digest('hex');
}

/** The job's id on the queue (a UUID made from its identity): a controller that comes back finds the job it sent. */
export function jobId(queue: string, job: EvaluationJob): string {
  const h = jobIdentity(queue, job);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** pg-boss's schema (its default). */
const BOSS_SCHEMA = 'pgboss';

/** Takes a job off the queue and out of the archive, so one with its id can be sent anew. */
async function resetJob(boss: PgBoss, queue: string, id: string): Promise<void> {
  const db = boss.getDb();
  await db.executeSql(`DELETE FROM ${BOSS_SCHEMA}.job WHERE name = $1 AND id = $2`, [queue, id]);
  await db.executeSql(`DELETE FROM ${BOSS_SCHEMA}.archive WHERE name = $1 AND id = $2`, [queue, id]);
}

/** Renews a job's lease (pg-boss expires an active job when started_on + expire_in has passed). */
export async function renewLease(boss: PgBoss, queue: string, id: string): Promise<void> {
  await boss.getDb().executeSql(`UPDATE ${BOSS_SCHEMA}.job SET started_on = now() WHERE name = $1 AND id = $2 AND state = 'active'`, [queue, id]);
}

/** Hands an active job back to the queue as if never taken: no try counted, available at once. */
export async function handBack(boss: PgBoss, queue: string, id: string): Promise<void> {
  await boss.getDb().executeSql(`UPDATE ${BOSS_SCHEMA}.job SET state = 'created', started_on = NULL, start_after = now() WHERE name = $1 AND id = $2 AND state = 'active'`, [queue, id]);
}

/** The study's URL as the server's: the `schema` parameter is ours, not a connection setting. */
function serverUrl(url: string): string {
  const u = new URL(url);
  u.searchParams.delete('schema');
  return u.toString();
}

/** NOTIFY channels (the payload is the queue's name): a job was sent; a job has its outcome. */
export const JOBS_CHANNEL = 'primer_search_jobs';
export const DONE_CHANNEL = 'primer_search_done';

/**
 * Wake-ups between the controller and its workers through PostgreSQL's LISTEN/NOTIFY, so that
 * neither waits out a polling interval: a worker hears of a job the moment it is sent, the
 * controller of an outcome the moment it is written. Polling stays as the fallback (a lost
 * notification, or a listener that dropped), so nothing depends on them arriving.
 */
export class QueueSignals {
  private readonly waiting = new Set<() => void>();
  private listener?: pg.Client;

  private constructor(
    private readonly boss: PgBoss,
    private readonly queue: string,
  ) {}

  /** Listens on `channel` (on a connection of its own) for notifications about this queue. */
  static async listen(url: string, boss: PgBoss, queue: string, channel: string): Promise<QueueSignals> {
    const s = new QueueSignals(boss, queue);
    const c = new pg.Client({ connectionString: serverUrl(url) });
    c.on('error', () => {
      // the listener dropped: polling carries on alone
      s.listener = undefined;
    });
    c.on('notification', (n) => {
      if (n.payload !== queue) return;
      for (const wake of [...s.waiting]) wake();
    });
    await c.connect();
    await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    s.listener = c;
    return s;
  }

  /** Tells the listeners of `channel` that something happened on this queue. */
  async notify(channel: string): Promise<void> {
    await this.boss
      .getDb()
      .executeSql('SELECT pg_notify($1, $2)', [channel, this.queue])
      .catch(() => {});
  }

  /** Resolves after `ms`, or sooner when a notification arrives, or `signal` aborts. */
  wait(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiting.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiting.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  async close(): Promise<void> {
    for (const wake of [...this.waiting]) wake();
    // a connection that died with its server never says it ended: not waited for past a few seconds
    await within(5000, this.listener?.end().catch(() => {}));
    this.listener = undefined;
  }
}

/**
 * Starts pg-boss on the study's database (its tables in the schema `pgboss`), the queue created.
 * A worker (`worker: true`) creates and changes nothing there: no schema, no migration, no
 * maintenance, no queue (it waits for the controller's), so it can run with a role that may only
 * take jobs and write their outcomes (`workerGrants`).
 */
export async function startQueue(url: string, options: { maintenanceSeconds?: number; supervise?: boolean; worker?: boolean } = {}): Promise<{ boss: PgBoss; queue: string }> {
  const boss = new PgBoss({
    connectionString: serverUrl(url),
    supervise: options.worker ? false : (options.supervise ?? true),
    ...(options.worker ? { migrate: false, schedule: false } : {}),
    // how soon an expired lease (a worker that died) is noticed (PRIMER_QUEUE_MAINTENANCE_SECONDS: tests shorten it)
    maintenanceIntervalSeconds: options.maintenanceSeconds ?? (Number(process.env.PRIMER_QUEUE_MAINTENANCE_SECONDS) || 10),
    max: 4,
  });
  boss.on('error', () => {}); // a lost connection surfaces on the next call
  // a worker started before its controller: pg-boss's tables are the controller's to make
  if (options.worker) await untilInstalled(url);
  await boss.start();
  const queue = queueName(url);
  if (options.worker) {
    // the controller makes the queue when it starts: a worker started first waits for it
    while (!(await boss.getQueue(queue))) await sleep(1000);
    return { boss, queue };
  }
  if (!(await boss.getQueue(queue))) await boss.createQueue(queue).catch(async (e) => {
    // two processes creating it at once
    if (!(await boss.getQueue(queue))) throw e;
  });
  return { boss, queue };
}

/**
 * Deletes the study's queue and its jobs from pg-boss (primer study delete), when pg-boss was
 * ever installed in the database and the queue exists; true when it deleted one.
 */
export async function deleteQueue(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: serverUrl(url) });
  c.on('error', () => {});
  await c.connect();
  try {
    if (!(await c.query<{ t: string | null }>("SELECT to_regclass('pgboss.version') AS t")).rows[0]!.t) return false;
    const queue = queueName(url);
    await c.query('BEGIN');
    if (!(await c.query('SELECT 1 FROM pgboss.queue WHERE name = $1 FOR UPDATE', [queue])).rowCount) {
      await c.query('ROLLBACK');
      return false;
    }
    // its jobs first (pg-boss's delete_queue refuses a queue that still has some), then the queue and its partition
    await c.query('DELETE FROM pgboss.job WHERE name = $1', [queue]);
    if ((await c.query<{ t: string | null }>("SELECT to_regclass('pgboss.archive') AS t")).rows[0]!.t) await c.query('DELETE FROM pgboss.archive WHERE name = $1', [queue]);
    await c.query('SELECT pgboss.delete_queue($1)', [queue]);
    await c.query('COMMIT');
    return true;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    await c.end().catch(() => {});
  }
}

/** Waits until pg-boss's tables exist in the study's database (a controller made them). */
async function untilInstalled(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: serverUrl(url) });
  c.on('error', () => {});
  await c.connect();
  try {
    while (!(await c.query<{ t: string | null }>("SELECT to_regclass('pgboss.version') AS t")).rows[0]!.t) await sleep(1000);
  } finally {
    await c.end().catch(() => {});
  }
}

/**
 * The SQL that lets `role` work a study in `schema` of `database` as a worker, and nothing more:
 * read the study, put itself on record, take jobs and write their outcomes. The controller (the
 * study's owner) runs it once the study and its queue exist; docs/distributed.md shows it.
 */
export function workerGrants(database: string, schema: string, role: string): string[] {
  const [db, s, r] = [database, schema, role].map((x) => pg.escapeIdentifier(x));
  return [
    `GRANT CONNECT ON DATABASE ${db} TO ${r}`,
    `GRANT USAGE ON SCHEMA ${s} TO ${r}`,
    // every table of the study but the kept weights, which workers never read
    ...['study', 'candidates', 'evaluations', 'strategy_snapshots', 'workers', 'retrains', 'retrain_runs', 'schema_migrations'].map((t) => `GRANT SELECT ON ${s}.${pg.escapeIdentifier(t)} TO ${r}`),
    `GRANT INSERT ON ${s}.workers TO ${r}`,
    `GRANT USAGE ON ALL SEQUENCES IN SCHEMA ${s} TO ${r}`,
    `GRANT USAGE ON SCHEMA pgboss TO ${r}`,
    `GRANT SELECT ON pgboss.version, pgboss.queue TO ${r}`,
    `GRANT SELECT, INSERT, UPDATE, DELETE ON pgboss.job TO ${r}`,
  ];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The controller's side of the queue: `run` sends a candidate (unless a job for it is already
 * there, from before a restart) and resolves with its outcome. Nothing here trains. With
 * `signals` (listening on DONE_CHANNEL) it wakes when a worker reports, and polls every
 * `pollMs` in case a notification is lost.
 */
export class QueuePool implements EvaluationPool {
  constructor(
    private readonly boss: PgBoss,
    private readonly queue: string,
    readonly size: number,
    private readonly pollMs = 250,
    private readonly signals?: QueueSignals,
    /** The study's URL: while its database is away, every call waits for it (`withReconnect`), and the message on giving up names it. */
    private readonly location = 'the study database',
  ) {}

  private db<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return withReconnect(this.location, what, fn);
  }

  async run(sent: EvaluationJob, options: RunJobOptions): Promise<JobOutcome> {
    // a checkpoint folder is a path on this machine, meaningless to a worker elsewhere
    const { checkpoint: _checkpoint, ...job } = sent;
    const identity = jobIdentity(this.queue, job);
    const id = jobId(this.queue, job);
    const existing = await this.db('looking for a job', () => this.boss.getJobById<QueuedJob>(this.queue, id, { includeArchive: true }));
    // a job from before (a controller that came back) is waited for, or its result taken, unless
    // it is another job's, or ended in a way that fixing the cause and resuming must retry
    const reusable =
      existing !== null &&
      jobIdentity(this.queue, existing.data.job) === identity &&
      existing.state !== 'failed' &&
      existing.state !== 'cancelled' &&
      !(existing.state === 'completed' && isEnvironmentFailure(existing.output as unknown as JobOutcome));
    if (!reusable) {
      if (existing) await this.db('resetting a job', () => resetJob(this.boss, this.queue, id));
      const payload: QueuedJob = { job, timeoutSeconds: options.timeoutSeconds };
      // sent again after the database came back, a job already there (the first send had landed) is found below
      await this.db('sending a job', () =>
        this.boss.send(this.queue, payload as unknown as object, {
          id,
          // held by heartbeat: the candidate's own time limit is the worker's to enforce
          expireInSeconds: leaseSeconds(),
          retryLimit: 1,
          retryDelay: 0,
          retentionDays: 30,
        }),
      );
      await this.signals?.notify(JOBS_CHANNEL);
    }
    for (;;) {
      const j = await this.db('waiting for a result', () => this.boss.getJobById<QueuedJob>(this.queue, id, { includeArchive: true }));
      if (!j) return environmentFailure(job, `the job of ${jobName(job)} disappeared from the queue ${this.queue}`);
      if (j.state === 'completed') {
        const outcome = j.output as unknown as JobOutcome;
        // weights (--keep-weights) are the controller's to keep or drop: not left in the queue's job records for its retention
        if (outcome && typeof outcome === 'object' && 'weights' in outcome) {
          for (const table of ['job', 'archive']) {
            await this.boss
              .getDb()
              .executeSql(`UPDATE pgboss.${table} SET output = output - 'weights' WHERE name = $1 AND id = $2`, [this.queue, id])
              .catch(() => undefined);
          }
        }
        return outcome;
      }
      if (j.state === 'failed' || j.state === 'cancelled') {
        const why = (j.output as { message?: string; value?: { message?: string } } | null)?.message ?? (j.output as { value?: { message?: string } })?.value?.message;
        return environmentFailure(job, `worker lost: ${jobName(job)}'s job ${j.state} after ${j.retryCount + 1} tries${why ? ` (${why})` : ''}`);
      }
      await (this.signals ? this.signals.wait(this.pollMs) : sleep(this.pollMs));
    }
  }

  async close(): Promise<void> {
    await this.signals?.close();
  }
}

/**
 * The controller's pool on the queue of the study at `url`: pg-boss started, woken by workers'
 * notifications, `size` jobs out at once. `stop` closes it all (pg-boss included).
 */
export async function openQueuePool(url: string, size: number): Promise<{ pool: QueuePool; queue: string; stop(): Promise<void> }> {
  const { boss, queue } = await startQueue(url);
  const signals = await QueueSignals.listen(url, boss, queue, DONE_CHANNEL);
  const pool = new QueuePool(boss, queue, size, 1000, signals, url);
  // one owner of both connections: a stop closes the listener too, whatever happened before
  return {
    pool,
    queue,
    stop: async () => {
      await signals.close();
      await within(10_000, boss.stop({ graceful: false, close: true, wait: true, timeout: 5000 }).catch(() => {}));
    },
  };
}

/**
 * A worker's side: `concurrency` loops that each take a job, run `handle` on it and write its
 * outcome (a thrown error fails the attempt, and pg-boss retries it once), then take the next at
 * once, renewing each job's lease while it is in hand. An idle loop waits for a notification that
 * a job was sent, or `pollSeconds`. When `signal` aborts, the jobs in hand are handed back to the
 * queue (no try counted) and it resolves, without waiting for their handlers.
 */
export async function serveQueue(args: {
  boss: PgBoss;
  queue: string;
  concurrency: number;
  pollSeconds: number;
  handle: (data: QueuedJob, jobId: string) => Promise<object>;
  signals?: QueueSignals;
  signal: AbortSignal;
  /** The study's URL: while its database is away, the loops wait for it, training goes on, and results are written once it is back. */
  location?: string;
  /** Told when a result reached the queue too late (the job had been taken back and runs again elsewhere). */
  onLate?: (jobId: string) => void;
}): Promise<void> {
  const { boss, queue } = args;
  const db = <T>(what: string, fn: () => Promise<T>) => withReconnect(args.location ?? 'the study database', what, fn);
  const inHand = new Set<string>();
  const handBackAll = async () => {
    const ids = [...inHand];
    inHand.clear();
    await Promise.all(ids.map((id) => db('handing a job back', () => handBack(boss, queue, id)).catch(() => {})));
    if (ids.length) await args.signals?.notify(JOBS_CHANNEL);
  };
  const stopped = new Promise<void>((resolve) => {
    const onAbort = () => void handBackAll().then(resolve);
    if (args.signal.aborted) onAbort();
    else args.signal.addEventListener('abort', onAbort, { once: true });
  });
  // results being written: a stop waits for them (they are not handed back: their training is done)
  const writing = new Set<Promise<unknown>>();
  const loop = async () => {
    while (!args.signal.aborted) {
      const [j] = await db('taking a job', () => boss.fetch<QueuedJob>(queue, { batchSize: 1 }));
      if (!j) {
        await (args.signals ? args.signals.wait(args.pollSeconds * 1000, args.signal) : sleep(args.pollSeconds * 1000));
        continue;
      }
      inHand.add(j.id);
      // taken just as the stop came: back at once
      if (args.signal.aborted) return handBackAll();
      // renewed at a third of the job's own lease (as its controller set it), whatever this machine's setting
      const lease = Number((j as { expireInSeconds?: number }).expireInSeconds) || leaseSeconds();
      const heartbeat = setInterval(() => void renewLease(boss, queue, j.id).catch(() => {}), (lease * 1000) / 3);
      let outcome: { output: object } | { error: string };
      try {
        outcome = { output: await args.handle(j.data, j.id) };
      } catch (e) {
        outcome = { error: (e as Error).message ?? String(e) };
      } finally {
        clearInterval(heartbeat);
      }
      // stopped meanwhile: what the handler got (its training cut short) is not the job's outcome; the job was handed back
      if (args.signal.aborted) return;
      // done: no longer the hand-back's, and a stop waits for this write; the result is kept here until the database takes it
      inHand.delete(j.id);
      const write = (async () => {
        const r = (await ('output' in outcome
          ? db('writing a result', () => boss.complete(queue, j.id, outcome.output))
          : db('writing a failure', () => boss.fail(queue, j.id, { message: outcome.error })))) as { affected?: number } | undefined;
        // 0 rows: the job was taken back meanwhile (its lease ran out during a long outage) and runs again elsewhere
        if (r?.affected === 0) args.onLate?.(j.id);
      })();
      writing.add(write);
      try {
        await write;
      } finally {
        writing.delete(write);
      }
      await args.signals?.notify(DONE_CHANNEL);
    }
  };
  const loops = Promise.all(Array.from({ length: args.concurrency }, loop));
  await Promise.race([loops, stopped]);
  if (args.signal.aborted) {
    await stopped;
    await Promise.allSettled([...writing]);
  }
}
