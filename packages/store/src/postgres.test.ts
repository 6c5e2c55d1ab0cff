import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { usePostgres } from './__fixtures__/postgres.js';
import { PostgresStudyStore, maskUrl } from './postgres.js';
import { describeStoreContract } from './testing.js';

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

  it('masks passwords', () => {
    expect(maskUrl('postgres://u:p%40ss@h:5432/d?schema=s')).toBe('postgres://u:***@h:5432/d?schema=s');
  });
});
