import pg from 'pg';
import type { CandidateRecord, CandidateView, EvaluationRecord, NewEvaluation, NewRetrainPlan, NewRetrainRun, RetrainPlan, RetrainRun, WorkerRecord } from '@primer-search/study';
import { candidateOfRow, planBody, runBody, runOfRow, StoreError } from './sqlite.js';
import { maskUrl } from './secrets.js';
import { isConnectionLost, reconnectNotice, reconnectSeconds, withReconnect, within } from './reconnect.js';
import { hasTable, SCHEMA, SCHEMA_VERSION, schemaGate } from './schema.js';
import type { StudyDump, StudyStore } from './types.js';

/** The PostgreSQL schema, in order (`SCHEMA`); applied under an advisory lock, each in a transaction. */
export const POSTGRES_MIGRATIONS = SCHEMA.map((v) => ({ version: v.version, description: v.description, sql: v.sql.postgres }));

const SNAPSHOT_EVERY = 50;
const now = () => new Date().toISOString();


/** An evaluation's columns from hash to same_as, as bound values. */
const evaluationValues = (e: NewEvaluation) => [
  e.hash, e.candidate, e.status, e.fitness, e.hurdle, e.reason, JSON.stringify(e.curve), JSON.stringify(e.atHurdles), e.steps, e.tokens, e.trainSeconds, e.wallSeconds,
  e.budget, e.backend, e.machine, e.environment ? JSON.stringify(e.environment) : null, e.parameters, e.behaviour ?? null, e.sameAs ?? null,
];

/** BIGINT columns as numbers (counts of steps, tokens and parameters fit in a double). */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === 20 ? Number : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser,
};

/** Why a connection or a query failed, as one line naming the (masked) URL and what to do. */
function explain(location: string, e: unknown): StoreError {
  if (e instanceof StoreError) return e;
  const code = (e as { code?: string }).code ?? '';
  const message = ((e as Error).message ?? String(e)).split('\n')[0]!;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'ETIMEDOUT' || code === 'EHOSTUNREACH') {
    return new StoreError(`cannot reach the database at ${location} (${message}): is PostgreSQL running there, and are the host and port right?`);
  }
  if (code === '28P01' || code === '28000') return new StoreError(`the database at ${location} refused the credentials (${message}): check the user and password (in the URL, PGPASSWORD or ~/.pgpass)`);
  if (code === '3D000') return new StoreError(`${location}: ${message}; create it first (createdb), or name an existing database`);
  if (code === '42501') return new StoreError(`${location}: ${message}; the user needs rights to create and write tables in the schema`);
  return new StoreError(`${location}: ${message}`);
}

interface Row {
  [k: string]: unknown;
}

/**
 * A study in a PostgreSQL schema (the `schema` URL parameter, default `public`), through the
 * `pg` driver with pooled connections: every multi-row write in a transaction, every value a
 * bound parameter. Many processes can read and write one study at once.
 */
export class PostgresStudyStore implements StudyStore {
  /** This open created the study's tables (and the schema, when it did not exist): what `discardIfEmpty` may take back. */
  private created: { tables: boolean; schema: boolean } = { tables: false, schema: false };
  /** The schema the study is at once open (older than SCHEMA_VERSION only for a reader): reads are gated on it. */
  private version = SCHEMA_VERSION;
  private has(table: string): boolean {
    return hasTable(this.version, table);
  }

  private constructor(
    readonly location: string,
    private readonly pool: pg.Pool,
    private readonly schema: string,
  ) {}

  /** Opens (creating the schema's tables if needed, unless `readonly`) the study at a `postgres://` URL. */
  static async open(url: string, options: { readonly?: boolean; mustExist?: boolean } = {}): Promise<PostgresStudyStore> {
    const location = maskUrl(url);
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new StoreError(`${location} is not a database URL: write postgres://user@host:5432/database?schema=name`);
    }
    if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
      throw new StoreError(`${location} is not a PostgreSQL URL (it starts with ${parsed.protocol}): write postgres://user@host:5432/database`);
    }
    const schema = parsed.searchParams.get('schema') ?? 'public';
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) throw new StoreError(`${location}: the schema name "${schema}" must be letters, digits and _ (at most 63)`);
    parsed.searchParams.delete('schema');
    const pool = new pg.Pool({ connectionString: parsed.toString(), max: 4, types, connectionTimeoutMillis: 10_000 });
    pool.on('error', () => {}); // an idle client's error surfaces on the next query
    const store = new PostgresStudyStore(location, pool, schema);
    try {
      await store.prepare(options);
    } catch (e) {
      await pool.end().catch(() => {});
      throw explain(location, e);
    }
    // open: from now on a database that goes away is waited for
    store.url = url;
    return store;
  }

  private t(table: string): string {
    return `${pg.escapeIdentifier(this.schema)}.${pg.escapeIdentifier(table)}`;
  }

  private async prepare(options: { readonly?: boolean; mustExist?: boolean }): Promise<void> {
    const tables = (
      await this.pool.query<{ table_name: string }>('SELECT table_name FROM information_schema.tables WHERE table_schema = $1', [this.schema])
    ).rows.map((r) => r.table_name);
    if (tables.length > 0 && !tables.includes('schema_migrations')) {
      throw new StoreError(`${this.location}: schema ${this.schema} holds other tables (${tables.slice(0, 5).join(', ')}), not a primer-search study; give another ?schema=`);
    }
    if (tables.length === 0 && (options.readonly || options.mustExist)) throw new StoreError(`no study at ${this.location}`);
    if (options.readonly) {
      const found = (await this.pool.query<{ v: number | null }>(`SELECT MAX(version) AS v FROM ${this.t('schema_migrations')}`)).rows[0]!.v ?? 0;
      schemaGate(this.location, found, true, `e.g. primer search --study ${this.location} --resume`);
      this.version = found;
      return;
    }
    const schemaExisted = (await this.pool.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [this.schema])).rowCount! > 0;
    this.created = { tables: tables.length === 0, schema: !schemaExisted };
    await this.transaction(async (c) => {
      // one migrator at a time, whoever else opens the study now
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`primer-search:${this.schema}`]);
      await c.query(`CREATE SCHEMA IF NOT EXISTS ${pg.escapeIdentifier(this.schema)}`);
      await c.query(`CREATE TABLE IF NOT EXISTS ${this.t('schema_migrations')} (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)`);
      const current = (await c.query<{ v: number | null }>(`SELECT MAX(version) AS v FROM ${this.t('schema_migrations')}`)).rows[0]!.v ?? 0;
      schemaGate(this.location, current, false, '');
      await c.query(`SET LOCAL search_path TO ${pg.escapeIdentifier(this.schema)}`);
      for (const m of POSTGRES_MIGRATIONS.filter((m) => m.version > current)) {
        await c.query(m.sql);
        await c.query(`INSERT INTO ${this.t('schema_migrations')} (version, description, applied_at) VALUES ($1, $2, $3)`, [m.version, m.description, now()]);
      }
    });
  }

  /** The URL the store was opened with, for the reconnecting calls' messages (masked there); set once it is open: a database not there at the start is said at once, not waited for. */
  private url = '';
  private reconnecting<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return this.url ? withReconnect(this.url, what, fn) : fn();
  }

  /**
   * `fn` in a transaction; while the database is away (a restart), tried again whole until it is
   * back (`withReconnect`): callers make what it writes idempotent.
   */
  private async transaction<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.reconnecting('writing the study', async () => {
      const c = await this.pool.connect();
      let broken = false;
      // a checked-out client has no listener of the pool's: its connection dying must not crash the process (the query in flight fails instead)
      const onError = () => void (broken = true);
      c.on('error', onError);
      try {
        await c.query('BEGIN');
        const out = await fn(c);
        await c.query('COMMIT');
        return out;
      } catch (e) {
        broken = isConnectionLost(e);
        await c.query('ROLLBACK').catch(() => {});
        throw e;
      } finally {
        c.off('error', onError);
        // a client whose connection died is dropped, not handed to the next caller
        c.release(broken);
      }
    });
  }

  private async query<R extends Row>(sql: string, values: unknown[] = []): Promise<R[]> {
    return (await this.queryTries<R>(sql, values)).rows;
  }

  /** `query`, saying how many tries it took (more than one: the database went away meanwhile, and a write may have landed on an earlier try). */
  private async queryTries<R extends Row>(sql: string, values: unknown[] = []): Promise<{ rows: R[]; tries: number }> {
    let tries = 0;
    try {
      const rows = await this.reconnecting('reading or writing the study', async () => {
        tries++;
        return (await this.pool.query<R>(sql, values)).rows;
      });
      return { rows, tries };
    } catch (e) {
      throw explain(this.location, e);
    }
  }

  private parse(what: string, text: unknown): any {
    try {
      return JSON.parse(String(text));
    } catch {
      throw new StoreError(`${this.location} is damaged: the stored ${what} is not valid JSON; restore a copy made before the damage`);
    }
  }

  async config(): Promise<Record<string, unknown> | undefined> {
    const [row] = await this.query<{ config: string }>(`SELECT config FROM ${this.t('study')} WHERE id = 1`);
    return row ? this.parse('study configuration', row.config) : undefined;
  }

  async createStudy(config: Record<string, unknown>): Promise<void> {
    const createdAt = now();
    const { rows, tries } = await this.queryTries(`INSERT INTO ${this.t('study')} (id, config, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING RETURNING id`, [JSON.stringify(config), createdAt]);
    if (rows.length > 0) return;
    // ours after all, when an earlier try committed before the database went away
    if (tries > 1 && (await this.query(`SELECT 1 FROM ${this.t('study')} WHERE id = 1 AND config = $1 AND created_at = $2`, [JSON.stringify(config), createdAt])).length > 0) return;
    throw new StoreError(`${this.location} already holds a study`);
  }

  async updateStudy(config: Record<string, unknown>): Promise<void> {
    const rows = await this.query(`UPDATE ${this.t('study')} SET config = $1 WHERE id = 1 RETURNING id`, [JSON.stringify(config)]);
    if (rows.length === 0) throw new StoreError(`${this.location} holds no study to update`);
  }

  async advance(step: { told: number; candidates: CandidateRecord[]; strategyState: unknown }): Promise<void> {
    let tries = 0;
    try {
      await this.transaction(async (c) => {
        tries++;
        const latest = (await c.query<{ told: number | null }>(`SELECT MAX(told) AS told FROM ${this.t('strategy_snapshots')}`)).rows[0]!.told;
        if (latest !== null && step.told < latest) throw new StoreError(`the study has already been told ${latest} candidates; cannot go back to ${step.told}`);
        for (const r of step.candidates) {
          await c.query(`INSERT INTO ${this.t('candidates')} (id, hash, parent, mutations, dna, hurdles, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
            r.id,
            r.hash,
            r.parent,
            JSON.stringify(r.mutations),
            JSON.stringify(r.dna),
            JSON.stringify(r.hurdles),
            r.createdAt,
          ]);
        }
        await c.query(
          `INSERT INTO ${this.t('strategy_snapshots')} (told, state, created_at) VALUES ($1, $2, $3) ON CONFLICT (told) DO UPDATE SET state = EXCLUDED.state, created_at = EXCLUDED.created_at`,
          [step.told, JSON.stringify(step.strategyState), now()],
        );
        await c.query(`DELETE FROM ${this.t('strategy_snapshots')} WHERE told < $1 AND told % $2 != 0`, [step.told, SNAPSHOT_EVERY]);
      });
    } catch (e) {
      // tried again after the database came back, when the first try had committed after all: the same step is already there
      if ((e as { code?: string }).code === '23505' && tries > 1 && (await this.stepRecorded(step))) return;
      throw explain(this.location, e);
    }
  }

  /** Whether `step` is recorded as given (its snapshot's state and its candidates' hashes). */
  private async stepRecorded(step: { told: number; candidates: CandidateRecord[]; strategyState: unknown }): Promise<boolean> {
    const [snap] = await this.query<{ state: string }>(`SELECT state FROM ${this.t('strategy_snapshots')} WHERE told = $1`, [step.told]);
    if (!snap || snap.state !== JSON.stringify(step.strategyState)) return false;
    const ids = step.candidates.map((c) => c.id);
    const rows = ids.length ? await this.query<{ id: number; hash: string }>(`SELECT id, hash FROM ${this.t('candidates')} WHERE id = ANY($1::int[])`, [ids]) : [];
    return rows.length === ids.length && step.candidates.every((c) => rows.some((r) => r.id === c.id && r.hash === c.hash));
  }

  async latestSnapshot(): Promise<{ told: number; state: unknown } | undefined> {
    const [row] = await this.query<{ told: number; state: string }>(`SELECT told, state FROM ${this.t('strategy_snapshots')} ORDER BY told DESC LIMIT 1`);
    return row ? { told: row.told, state: this.parse(`strategy state after ${row.told} candidates`, row.state) } : undefined;
  }

  private candidateOf(r: Row): CandidateRecord {
    return candidateOfRow(this.location, r, (what, text) => this.parse(what, text));
  }

  private evaluationOfRow(r: Row): EvaluationRecord {
    return {
      id: r.id as number,
      hash: r.hash as string,
      candidate: r.candidate as number,
      status: r.status as EvaluationRecord['status'],
      fitness: r.fitness as number | null,
      hurdle: r.hurdle as number | null,
      reason: r.reason as string | null,
      curve: this.parse(`curve of evaluation ${r.id}`, r.curve),
      atHurdles: this.parse(`hurdle results of evaluation ${r.id}`, r.at_hurdles),
      steps: r.steps as number,
      tokens: r.tokens as number,
      trainSeconds: r.train_seconds as number,
      wallSeconds: r.wall_seconds as number,
      budget: r.budget as string,
      backend: r.backend as string | null,
      machine: r.machine as string,
      environment: r.environment ? this.parse(`environment of evaluation ${r.id}`, r.environment) : null,
      parameters: r.parameters as number | null,
      behaviour: (r.behaviour as string | null) ?? null,
      sameAs: (r.same_as as string | null) ?? null,
      finishedAt: r.finished_at as string,
    };
  }

  private async views(rows: Row[]): Promise<CandidateView[]> {
    const told = (await this.latestSnapshot())?.told ?? 0;
    const byHash = new Map((await this.evaluations()).map((e) => [e.hash, e]));
    return rows.map((r) => {
      const c = this.candidateOf(r);
      const evaluation = byHash.get(c.hash) ?? null;
      return { ...c, told: c.id < told, reused: evaluation !== null && evaluation.candidate !== c.id, evaluation };
    });
  }

  async changeToken(): Promise<string> {
    const [r] = await this.query(
      `SELECT (SELECT count(*) FROM ${this.t('candidates')}) AS candidates, (SELECT count(*) FROM ${this.t('evaluations')}) AS evaluations, (SELECT coalesce(max(id), 0) FROM ${this.t('evaluations')}) AS "lastEvaluation",
              (SELECT coalesce(max(told), 0) FROM ${this.t('strategy_snapshots')}) AS told, (SELECT coalesce(config, '') FROM ${this.t('study')}) AS config
              ${this.has('workers') ? `, (SELECT count(*) FROM ${this.t('workers')}) AS workers` : ''}
              ${this.has('retrains') ? `, (SELECT count(*) FROM ${this.t('retrain_runs')}) AS "retrainRuns", (SELECT count(*) FROM ${this.t('retrains')}) AS retrains` : ''}`,
    );
    return JSON.stringify(r);
  }

  async candidates(): Promise<CandidateView[]> {
    return this.views(await this.query(`SELECT * FROM ${this.t('candidates')} ORDER BY id`));
  }

  async candidate(id: number): Promise<CandidateView | undefined> {
    const rows = await this.query(`SELECT * FROM ${this.t('candidates')} WHERE id = $1`, [id]);
    return rows.length ? (await this.views(rows))[0] : undefined;
  }

  async evaluationOf(hash: string): Promise<EvaluationRecord | undefined> {
    const [row] = await this.query(`SELECT * FROM ${this.t('evaluations')} WHERE hash = $1`, [hash]);
    return row ? this.evaluationOfRow(row) : undefined;
  }

  async addEvaluation(e: NewEvaluation): Promise<EvaluationRecord> {
    const finishedAt = now();
    // written once per program: of two writers at once, one inserts and the other is told
    const { rows, tries } = await this.queryTries<{ id: number }>(
      `INSERT INTO ${this.t('evaluations')} (hash, candidate, status, fitness, hurdle, reason, curve, at_hurdles, steps, tokens, train_seconds, wall_seconds, budget, backend, machine, environment, parameters, behaviour, same_as, finished_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) ON CONFLICT (hash) DO NOTHING RETURNING id`,
      [...evaluationValues(e), finishedAt],
    );
    if (rows.length === 0) {
      // ours after all, when an earlier try committed before the database went away: the same finishing time and candidate
      const [mine] = tries > 1 ? await this.query<{ id: number }>(`SELECT id FROM ${this.t('evaluations')} WHERE hash = $1 AND candidate = $2 AND finished_at = $3`, [e.hash, e.candidate, finishedAt]) : [];
      if (!mine) throw new StoreError(`program ${e.hash} has already been evaluated`);
      rows.push(mine);
    }
    return { ...e, environment: e.environment ?? null, behaviour: e.behaviour ?? null, sameAs: e.sameAs ?? null, id: rows[0]!.id, finishedAt };
  }

  async evaluations(): Promise<EvaluationRecord[]> {
    return (await this.query(`SELECT * FROM ${this.t('evaluations')} ORDER BY id`)).map((r) => this.evaluationOfRow(r));
  }

  async dump(): Promise<StudyDump> {
    const [study] = await this.query<{ config: string; created_at: string }>(`SELECT config, created_at FROM ${this.t('study')} WHERE id = 1`);
    if (!study) throw new StoreError(`${this.location} holds no study`);
    const snapshots = await this.query<{ told: number; state: string; created_at: string }>(`SELECT told, state, created_at FROM ${this.t('strategy_snapshots')} ORDER BY told`);
    return {
      format: 'primer-study-dump',
      version: 1,
      config: this.parse('study configuration', study.config),
      createdAt: study.created_at,
      candidates: (await this.query(`SELECT * FROM ${this.t('candidates')} ORDER BY id`)).map((r) => this.candidateOf(r)),
      evaluations: await this.evaluations(),
      snapshots: snapshots.map((r) => ({ told: r.told, state: this.parse(`strategy state after ${r.told} candidates`, r.state), createdAt: r.created_at })),
      workers: await this.workers(),
      retrains: await this.retrains(),
      retrainRuns: await this.retrainRuns(),
      weights: this.has('weights')
        ? (await this.query<{ hash: string; data: Buffer; created_at: string }>(`SELECT hash, data, created_at FROM ${this.t('weights')} ORDER BY hash`)).map((r) => ({ hash: r.hash, data: r.data.toString('base64'), createdAt: r.created_at }))
        : [],
    };
  }

  async putWeights(hash: string, data: Uint8Array): Promise<void> {
    if (!this.has('weights')) throw new StoreError(`${this.location} is at an older schema: open it for writing once to keep weights`);
    await this.query(`INSERT INTO ${this.t('weights')} (hash, data, created_at) VALUES ($1, $2, $3) ON CONFLICT (hash) DO UPDATE SET data = EXCLUDED.data, created_at = EXCLUDED.created_at`, [hash, Buffer.from(data.buffer, data.byteOffset, data.byteLength), new Date().toISOString()]);
  }

  async weightsOf(hash: string): Promise<Uint8Array | undefined> {
    if (!this.has('weights')) return undefined;
    const [row] = await this.query<{ data: Buffer }>(`SELECT data FROM ${this.t('weights')} WHERE hash = $1`, [hash]);
    return row ? new Uint8Array(row.data) : undefined;
  }

  async deleteWeights(hash: string): Promise<void> {
    if (this.has('weights')) await this.query(`DELETE FROM ${this.t('weights')} WHERE hash = $1`, [hash]);
  }

  async weightHashes(): Promise<string[]> {
    if (!this.has('weights')) return [];
    return (await this.query<{ hash: string }>(`SELECT hash FROM ${this.t('weights')} ORDER BY hash`)).map((r) => r.hash);
  }

  async retrains(): Promise<RetrainPlan[]> {
    if (!this.has('retrains')) return [];
    const rows = await this.query<{ id: number; plan: string; created_at: string }>(`SELECT * FROM ${this.t('retrains')} ORDER BY id`);
    return rows.map((r) => ({ ...(this.parse(`plan of retraining ${r.id}`, r.plan) as NewRetrainPlan), id: r.id, createdAt: r.created_at }));
  }

  async createRetrain(plan: NewRetrainPlan): Promise<RetrainPlan> {
    if (!(await this.config())) throw new StoreError(`${this.location} holds no study to retrain`);
    const createdAt = now();
    const body = JSON.stringify(planBody(plan));
    // written once: a try that committed before the database went away is found, not written again
    const [row] = await this.reconnecting('recording a retraining', async () => {
      const [mine] = (await this.pool.query<{ id: number }>(`SELECT id FROM ${this.t('retrains')} WHERE plan = $1 AND created_at = $2`, [body, createdAt])).rows;
      if (mine) return [mine];
      return (await this.pool.query<{ id: number }>(`INSERT INTO ${this.t('retrains')} (plan, created_at) VALUES ($1, $2) RETURNING id`, [body, createdAt])).rows;
    });
    return { ...plan, id: row!.id, createdAt };
  }

  async retrainRuns(retrain?: number): Promise<RetrainRun[]> {
    if (!this.has('retrain_runs')) return [];
    const rows = await this.query<{ retrain: number; program: number; seed: number; run: string; finished_at: string }>(
      retrain === undefined
        ? `SELECT * FROM ${this.t('retrain_runs')} ORDER BY retrain, program, seed`
        : `SELECT * FROM ${this.t('retrain_runs')} WHERE retrain = $1 ORDER BY program, seed`,
      retrain === undefined ? [] : [retrain],
    );
    return rows.map((r) => runOfRow(r, (what, text) => this.parse(what, text)));
  }

  async addRetrainRun(run: NewRetrainRun): Promise<RetrainRun> {
    const finishedAt = now();
    const { rows, tries } = await this.queryTries(
      `INSERT INTO ${this.t('retrain_runs')} (retrain, program, seed, run, finished_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING retrain`,
      [run.retrain, run.program, run.seed, JSON.stringify(runBody(run)), finishedAt],
    );
    if (rows.length === 0) {
      const [mine] = tries === 1 ? [] : await this.query(`SELECT 1 FROM ${this.t('retrain_runs')} WHERE retrain = $1 AND program = $2 AND seed = $3 AND finished_at = $4`, [run.retrain, run.program, run.seed, finishedAt]);
      if (!mine) throw new StoreError(`retraining ${run.retrain} already has a run of program ${run.program} with seed ${run.seed}`);
    }
    return { ...run, finishedAt };
  }

  async registerWorker(w: WorkerRecord): Promise<void> {
    const values = [w.id, JSON.stringify(w.environment), JSON.stringify(w.plugins), w.allowMixedHardware, w.startedAt];
    const { rows, tries } = await this.queryTries(
      `INSERT INTO ${this.t('workers')} (id, environment, plugins, allow_mixed, started_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING RETURNING id`,
      values,
    );
    if (rows.length > 0) return;
    // ours after all, when an earlier try committed before the database went away; else a second worker with this id
    if (tries > 1 && (await this.query(`SELECT 1 FROM ${this.t('workers')} WHERE id = $1 AND started_at = $2`, [w.id, w.startedAt])).length > 0) return;
    throw new StoreError(`${this.location}: a worker ${w.id} is already on record`);
  }

  async workers(): Promise<WorkerRecord[]> {
    if (!this.has('workers')) return [];
    const rows = await this.query<{ id: string; environment: string; plugins: string; allow_mixed: boolean; started_at: string }>(`SELECT * FROM ${this.t('workers')} ORDER BY seq`);
    return rows.map((r) => ({
      id: r.id,
      environment: this.parse(`environment of worker ${r.id}`, r.environment),
      plugins: this.parse(`plugins of worker ${r.id}`, r.plugins),
      allowMixedHardware: r.allow_mixed,
      startedAt: r.started_at,
    }));
  }

  async restore(d: StudyDump): Promise<void> {
    try {
      await this.transaction(async (c) => {
        const held = await c.query(`SELECT 1 FROM ${this.t('study')} WHERE id = 1`);
        if (held.rowCount) throw new StoreError(`${this.location} already holds a study`);
        await c.query(`INSERT INTO ${this.t('study')} (id, config, created_at) VALUES (1, $1, $2)`, [JSON.stringify(d.config), d.createdAt]);
        for (const r of d.candidates) {
          await c.query(`INSERT INTO ${this.t('candidates')} (id, hash, parent, mutations, dna, hurdles, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
            r.id, r.hash, r.parent, JSON.stringify(r.mutations), JSON.stringify(r.dna), JSON.stringify(r.hurdles), r.createdAt,
          ]);
        }
        for (const e of d.evaluations) {
          await c.query(
            `INSERT INTO ${this.t('evaluations')} (hash, candidate, status, fitness, hurdle, reason, curve, at_hurdles, steps, tokens, train_seconds, wall_seconds, budget, backend, machine, environment, parameters, behaviour, same_as, finished_at, id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`,
            [...evaluationValues(e), e.finishedAt, e.id],
          );
        }
        for (const p of d.retrains ?? []) {
          await c.query(`INSERT INTO ${this.t('retrains')} (id, plan, created_at) VALUES ($1, $2, $3)`, [p.id, JSON.stringify(planBody(p)), p.createdAt]);
        }
        await c.query(`SELECT setval(pg_get_serial_sequence($1, 'id'), GREATEST((SELECT MAX(id) FROM ${this.t('retrains')}), 1), (SELECT COUNT(*) > 0 FROM ${this.t('retrains')}))`, [`${pg.escapeIdentifier(this.schema)}.retrains`]);
        for (const r of d.retrainRuns ?? []) {
          await c.query(`INSERT INTO ${this.t('retrain_runs')} (retrain, program, seed, run, finished_at) VALUES ($1, $2, $3, $4, $5)`, [r.retrain, r.program, r.seed, JSON.stringify(runBody(r)), r.finishedAt]);
        }
        for (const w of d.workers ?? []) {
          await c.query(`INSERT INTO ${this.t('workers')} (id, environment, plugins, allow_mixed, started_at) VALUES ($1, $2, $3, $4, $5)`, [w.id, JSON.stringify(w.environment), JSON.stringify(w.plugins), w.allowMixedHardware, w.startedAt]);
        }
        // the serial continues after the copied ids
        await c.query(`SELECT setval(pg_get_serial_sequence($1, 'id'), GREATEST((SELECT MAX(id) FROM ${this.t('evaluations')}), 1), (SELECT COUNT(*) > 0 FROM ${this.t('evaluations')}))`, [`${pg.escapeIdentifier(this.schema)}.evaluations`]);
        for (const x of d.snapshots) {
          await c.query(`INSERT INTO ${this.t('strategy_snapshots')} (told, state, created_at) VALUES ($1, $2, $3)`, [x.told, JSON.stringify(x.state), x.createdAt]);
        }
        for (const x of d.weights ?? []) {
          await c.query(`INSERT INTO ${this.t('weights')} (hash, data, created_at) VALUES ($1, $2, $3)`, [x.hash, Buffer.from(x.data, 'base64'), x.createdAt]);
        }
      });
    } catch (e) {
      throw explain(this.location, e);
    }
  }

  async deleteRetrain(id: number): Promise<number> {
    if (!this.has('retrains')) throw new StoreError(`${this.location} has no retraining ${id}`);
    return this.transaction(async (c) => {
      if (!(await c.query(`SELECT 1 FROM ${this.t('retrains')} WHERE id = $1 FOR UPDATE`, [id])).rowCount) throw new StoreError(`${this.location} has no retraining ${id}`);
      const runs = (await c.query(`DELETE FROM ${this.t('retrain_runs')} WHERE retrain = $1`, [id])).rowCount ?? 0;
      await c.query(`DELETE FROM ${this.t('retrains')} WHERE id = $1`, [id]);
      // runs other retrainings reused from it stay (copies), their provenance cleared, as in SQLite
      const reused = await c.query<{ retrain: number; program: number; seed: number; run: string }>(`SELECT retrain, program, seed, run FROM ${this.t('retrain_runs')} WHERE run LIKE '%reusedFrom%'`);
      for (const r of reused.rows) {
        const body = JSON.parse(r.run) as { reusedFrom?: { retrain: number; study?: string } | null };
        // (a run reused from another study's retraining of that number is not this one's)
        if (body.reusedFrom?.retrain === id && body.reusedFrom.study === undefined) await c.query(`UPDATE ${this.t('retrain_runs')} SET run = $1 WHERE retrain = $2 AND program = $3 AND seed = $4`, [JSON.stringify({ ...body, reusedFrom: null }), r.retrain, r.program, r.seed]);
      }
      return runs;
    });
  }

  async deleteStudy(): Promise<void> {
    if (!this.controllerLock) throw new StoreError(`${this.location}: deleting a study needs its controller lock (lockController)`);
    await this.transaction(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`primer-search:${this.schema}`]);
      const ours = ['weights', 'retrain_runs', 'retrains', 'workers', 'strategy_snapshots', 'evaluations', 'candidates', 'study', 'schema_migrations'];
      for (const t of ours) await c.query(`DROP TABLE IF EXISTS ${this.t(t)}`);
      const left = (await c.query('SELECT 1 FROM information_schema.tables WHERE table_schema = $1 LIMIT 1', [this.schema])).rowCount;
      if (!left && this.schema !== 'public') {
        // a schema this user may not drop (another role owns it) stays: the study is deleted all the same
        await c.query('SAVEPOINT drop_schema');
        await c.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(this.schema)}`).then(
          () => c.query('RELEASE SAVEPOINT drop_schema'),
          () => c.query('ROLLBACK TO SAVEPOINT drop_schema'),
        );
      }
    });
  }

  /**
   * Takes back what this open created when no study was recorded in it (a new study refused
   * or failed before it began): its tables, and its schema if this open created that too.
   * Anything else, or a study, is left alone. True when it removed something.
   */
  async discardIfEmpty(): Promise<boolean> {
    if (!this.created.tables) return false;
    return this.transaction(async (c) => {
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`primer-search:${this.schema}`]);
      if ((await c.query(`SELECT 1 FROM ${this.t('study')}`)).rowCount) return false;
      const ours = ['weights', 'retrain_runs', 'retrains', 'workers', 'strategy_snapshots', 'evaluations', 'candidates', 'study', 'schema_migrations'];
      const present = (await c.query<{ table_name: string }>('SELECT table_name FROM information_schema.tables WHERE table_schema = $1', [this.schema])).rows.map((r) => r.table_name);
      if (present.some((t) => !ours.includes(t))) return false;
      for (const t of ours) await c.query(`DROP TABLE IF EXISTS ${this.t(t)}`);
      if (this.created.schema && this.schema !== 'public') await c.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(this.schema)}`);
      return true;
    }).catch((e) => {
      throw explain(this.location, e);
    });
  }

  private controllerLock?: pg.PoolClient;

  async lockController(): Promise<{ release(): Promise<void> }> {
    if (this.controllerLock) return { release: async () => {} };
    // a session advisory lock on a connection of its own: PostgreSQL lets go of it when the connection ends (a crash included)
    let client: pg.PoolClient;
    let got: boolean;
    // the session can die with the database (a restart): never a crash; once it held the lock, the lock is taken again when the database is back
    const onError = () => {
      if (this.controllerLock !== client) return;
      this.controllerLock = undefined;
      client.release(true);
      void this.relock();
    };
    try {
      client = await this.pool.connect();
      client.on('error', onError);
      got = (await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [`primer-search:controller:${this.schema}`])).rows[0]!.ok;
    } catch (e) {
      throw explain(this.location, e);
    }
    if (!got) {
      client.off('error', onError);
      client.release();
      throw new StoreError(`${this.location} is in use by another primer search or study retrain (one controller at a time): wait for it to end, or stop it, then run this again`);
    }
    this.controllerLock = client;
    return {
      release: async () => {
        if (this.controllerLock !== client) return;
        this.controllerLock = undefined;
        await this.unlock(client);
      },
    };
  }

  /** Lets go of the controller lock at once (the next taker need not wait for the server to notice a closed connection), then ends its session. */
  private async unlock(client: pg.PoolClient): Promise<void> {
    await within(5000, client.query('SELECT pg_advisory_unlock(hashtext($1))', [`primer-search:controller:${this.schema}`]).catch(() => {}));
    client.release(true);
  }

  /** Takes the controller lock again after its session died; gives up quietly if the store closes or another controller holds it now. */
  private async relock(): Promise<void> {
    const end = Date.now() + reconnectSeconds() * 1000;
    while (!this.closing && Date.now() < end) {
      try {
        await this.lockController();
        return;
      } catch (e) {
        // held by another controller now: said; the study's writes still refuse a second evaluation of a program
        if (/is in use/.test((e as Error).message)) {
          reconnectNotice(`${this.location}: the controller lock was lost while the database was away, and another controller holds it now: stop one of them`);
          return;
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private closing = false;

  async close(): Promise<void> {
    this.closing = true;
    if (this.controllerLock) {
      const client = this.controllerLock;
      this.controllerLock = undefined;
      await this.unlock(client);
    }
    // clients whose connections died with their server may never say they ended: not waited for past a few seconds
    await within(5000, this.pool.end());
  }
}
