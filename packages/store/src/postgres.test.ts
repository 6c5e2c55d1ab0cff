import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { usePostgres } from './__fixtures__/postgres.js';
import { POSTGRES_MIGRATIONS, PostgresStudyStore } from './postgres.js';
import { SCHEMA_VERSION } from './schema.js';
import { contractCandidate, contractEnvironment, contractEvaluation, contractWorker, describeStoreContract } from './testing.js';

const postgres = usePostgres();

let schemas = 0;
const urls = new WeakMap<object, string>();
describeStoreContract('PostgresStudyStore', {
  // each study in a schema of its own in one database
  create: async () => {
    const url = `${postgres().url}?schema=study_${schemas++}`;
    const s = await PostgresStudyStore.open(url);
    urls.set(s, url);
    return s;
  },
  reopen: async (s) => PostgresStudyStore.open(urls.get(s)!),
});

describe('PostgresStudyStore refuses what it cannot use, in one line naming the URL (password masked)', () => {
  const refusal = async (f: () => Promise<unknown>) => {
    const e = await f().then(
      () => undefined,
      (x: Error) => x,
    );
    expect(e, 'expected a refusal').toBeDefined();
    expect(e!.message).not.toContain('test-secret');
    expect(e!.message.split('\n')).toHaveLength(1);
    return e!.message;
  };

  it('an unreachable server, wrong credentials, a database that does not exist, a URL with a typo', async () => {
    const port = new URL(postgres().url).port;
    expect(await refusal(() => PostgresStudyStore.open('postgres://primer:test-secret@127.0.0.1:1/db'))).toMatch(/cannot reach the database at postgres:\/\/primer:\*\*\*@127\.0\.0\.1:1\/db .*is PostgreSQL running there/);
    expect(await refusal(() => PostgresStudyStore.open(`postgres://primer:wrong@127.0.0.1:${port}/postgres`))).toMatch(/refused the credentials/);
    expect(await refusal(() => PostgresStudyStore.open(`postgres://primer:test-secret@127.0.0.1:${port}/nodb`))).toMatch(/database "nodb" does not exist; create it first/);
    expect(await refusal(() => PostgresStudyStore.open('postgress://primer:test-secret@127.0.0.1/x'))).toMatch(/is not a PostgreSQL URL/);
    expect(await refusal(() => PostgresStudyStore.open(`${postgres().url}?schema=bad-name`))).toMatch(/schema name "bad-name"/);
  });

  it("a schema of another project's tables, and a missing study when reading; nothing is written", async () => {
    const url = await postgres().database();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query('CREATE TABLE songs (title TEXT)');
    expect(await refusal(() => PostgresStudyStore.open(url))).toMatch(/schema public holds other tables \(songs\), not a primer-search study/);
    expect(await refusal(() => PostgresStudyStore.open(`${url}?schema=empty`, { readonly: true }))).toMatch(/^no study at /);
    const tables = await c.query("SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')");
    expect(tables.rows).toEqual([{ table_schema: 'public', table_name: 'songs' }]);
    await c.end();
  });
});

describe('PostgresStudyStore schema changes', () => {
  it('upgrades a study written at schema 1, keeping its rows; evaluations from before have no environment', async () => {
    const url = await postgres().database();
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    // what primer-search wrote before schema 2, by hand
    await c.query('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)');
    await c.query(POSTGRES_MIGRATIONS[0]!.sql);
    await c.query("INSERT INTO schema_migrations VALUES (1, 'v1', '2026-01-01')");
    await c.query("INSERT INTO study VALUES (1, '{\"seed\":1}', '2026-01-01')");
    await c.query("INSERT INTO candidates VALUES (0, 'h0', NULL, '[]', '{}', '[null]', '2026-01-01')");
    await c.query(
      "INSERT INTO evaluations (hash, candidate, status, fitness, hurdle, reason, curve, at_hurdles, steps, tokens, train_seconds, wall_seconds, budget, backend, machine, parameters, finished_at) VALUES ('h0', 0, 'completed', 12.5, NULL, NULL, '[]', '[12.5]', 10, 640, 1, 2, '10 steps', 'wasm', 'old-host', 100, '2026-01-01')",
    );
    await c.end();
    // read as it is (reads of what schema 1 lacks gated on its version), and left at schema 1
    const reader = await PostgresStudyStore.open(url, { readonly: true });
    try {
      expect((await reader.candidates()).map((x) => x.id)).toEqual([0]);
      expect([await reader.workers(), await reader.retrains(), await reader.retrainRuns()]).toEqual([[], [], []]);
      expect(JSON.parse(await reader.changeToken())).toMatchObject({ candidates: 1, evaluations: 1 });
      expect((await reader.dump()).workers).toEqual([]);
    } finally {
      await reader.close();
    }
    const s = await PostgresStudyStore.open(url);
    try {
      expect(await s.config()).toEqual({ seed: 1 });
      const [old] = await s.evaluations();
      expect(old).toMatchObject({ hash: 'h0', fitness: 12.5, machine: 'old-host', environment: null });
      await s.advance({ told: 1, candidates: [contractCandidate(1, 'h1', 0)], strategyState: {} });
      const e = await s.addEvaluation(contractEvaluation('h1', 1, 9, { environment: contractEnvironment('new-host') }));
      expect(await s.evaluationOf('h1')).toEqual(e);
      await s.registerWorker(contractWorker('w'));
      expect((await s.workers()).map((w) => w.id)).toEqual(['w']);
    } finally {
      await s.close();
    }
  });

  it('refuses a study written by a newer version, to readers and writers alike', async () => {
    const url = `${await postgres().database()}?schema=future`;
    const s = await PostgresStudyStore.open(url);
    await s.close();
    const c = new pg.Client({ connectionString: url.replace(/\?.*$/, '') });
    await c.connect();
    await c.query(`INSERT INTO future.schema_migrations VALUES (${SCHEMA_VERSION + 1}, 'future', 'now')`);
    await c.end();
    for (const readonly of [true, false]) {
      await expect(PostgresStudyStore.open(url, { readonly })).rejects.toThrow(new RegExp(`was written by a newer primer-search \\(schema ${SCHEMA_VERSION + 1}; this one knows up to ${SCHEMA_VERSION}\\)`));
    }
  });

  it('discardIfEmpty takes back the tables (and schema) of a new study that never began, and nothing else', async () => {
    const url = await postgres().database();
    const tablesIn = async (schema: string) => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      const r = await c.query('SELECT table_name FROM information_schema.tables WHERE table_schema = $1', [schema]);
      const sc = await c.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [schema]);
      await c.end();
      return { tables: r.rowCount, schema: sc.rowCount };
    };
    const fresh = await PostgresStudyStore.open(`${url}?schema=fresh`);
    expect(await fresh.discardIfEmpty()).toBe(true);
    await fresh.close();
    expect(await tablesIn('fresh')).toEqual({ tables: 0, schema: 0 });

    const kept = await PostgresStudyStore.open(`${url}?schema=kept`);
    await kept.createStudy({ seed: 1 });
    expect(await kept.discardIfEmpty()).toBe(false);
    await kept.close();
    // a second open did not create the tables: it never takes them back
    const again = await PostgresStudyStore.open(`${url}?schema=kept`);
    expect(await again.discardIfEmpty()).toBe(false);
    await again.close();
    expect((await tablesIn('kept')).tables).toBeGreaterThan(0);
  });
});
