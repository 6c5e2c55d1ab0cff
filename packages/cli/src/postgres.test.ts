import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { usePostgres } from '../../store/src/__fixtures__/postgres.js';
import { runPrimer as run } from './__fixtures__/run.js';

const TINY = ['--layers', '1', '--d-model', '16', '--heads', '2', '--seq-len', '16', '--batch', '4', '--eval-windows', '2'];

const postgres = usePostgres();

/** study show --json without the location line (the one field that names the store). */
const shown = async (study: string) => {
  const r = await run(['study', 'show', study, '--json']);
  expect(r.code, r.stderr).toBe(0);
  const { location: _l, ...rest } = JSON.parse(r.stdout);
  return rest;
};

describe('a study in PostgreSQL', () => {
  it('primer search records it there; study show and study dna read it; the password is never printed', async () => {
    const url = `${postgres().url}?schema=search_one`;
    const r = await run(['search', '--candidates', '4', '--budget-per-candidate', '2steps', ...TINY, '--workers', '2', '--population', '2', '--tournament', '1', '--study', url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('starting study postgres://primer:***@127.0.0.1');
    for (const text of [r.stdout, r.stderr]) expect(text).not.toContain('test-secret');
    const s = await shown(url);
    expect(s.candidates).toBe(4);
    expect(s.told).toBe(4);
    const dna = await run(['study', 'dna', url, '0']);
    expect(JSON.parse(dna.stdout).subprograms.length).toBeGreaterThan(0);
    const again = await run(['search', '--candidates', '4', '--study', url]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('already holds a study: add --resume');
    const more = await run(['search', '--study', url, '--resume', '--candidates', '6']);
    expect(more.code, more.stderr).toBe(0);
    expect((await shown(url)).candidates).toBe(6);
    // deleting it: asked first, then the schema is gone (nothing else was in it)
    expect((await run(['study', 'delete', url])).code).toBe(2);
    const deleted = await run(['study', 'delete', url, '--yes']);
    expect([deleted.code, deleted.stderr]).toEqual([0, expect.stringMatching(/^deleted the study postgres:\/\/primer:\*\*\*@.*\(evolution from vanilla: 6 candidates, 0 retrainings\)\n$/)]);
    const c = new pg.Client({ connectionString: postgres().url });
    await c.connect();
    try {
      expect((await c.query("SELECT 1 FROM information_schema.schemata WHERE schema_name = 'search_one'")).rowCount).toBe(0);
    } finally {
      await c.end();
    }
    expect((await run(['study', 'show', url])).code).not.toBe(0);
  });

  it('study copy moves a study between SQLite and PostgreSQL both ways, losslessly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-copy-'));
    const file = join(dir, 'local.sqlite');
    const made = await run(['search', '--candidates', '5', '--budget-per-candidate', '2steps', ...TINY, '--workers', '1', '--population', '2', '--tournament', '1', '--hurdles', '0.5', '--hurdle-min-samples', '1', '--study', file]);
    expect(made.code, made.stderr).toBe(0);
    const original = await shown(file);
    const url = `${postgres().url}?schema=copied`;
    const up = await run(['study', 'copy', file, url]);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stderr).toMatch(/copied .* to postgres:\/\/primer:\*\*\*@.*: 5 candidates, \d+ evaluations, \d+ strategy snapshots/);
    expect(await shown(url)).toEqual(original);
    const back = join(dir, 'back.sqlite');
    expect((await run(['study', 'copy', url, `sqlite://${back}`])).code).toBe(0);
    expect(await shown(back)).toEqual(original);
    // a copy resumes like the original
    const resumed = await run(['search', '--study', back, '--resume', '--candidates', '7']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect((await shown(back)).candidates).toBe(7);
    expect((await run(['study', 'copy', file, url])).stderr).toContain('already holds a study');
  });
});

describe('bad PostgreSQL locations on the command line', () => {
  it('unreachable, wrong credentials, a typo, another project\'s tables: exit 1, one line naming the URL with its password masked, nothing written', async () => {
    const port = new URL(postgres().url).port;
    const other = await postgres().database();
    const c = new pg.Client({ connectionString: other });
    await c.connect();
    await c.query('CREATE TABLE invoices (id INTEGER)');
    const cases: Array<[string, RegExp]> = [
      ['postgres://primer:test-secret@127.0.0.1:1/studies', /cannot reach the database at postgres:\/\/primer:\*\*\*@127\.0\.0\.1:1\/studies/],
      [`postgres://primer:wrong-secret@127.0.0.1:${port}/postgres`, /refused the credentials/],
      [`postgres://primer:test-secret@127.0.0.1:${port}/no_such_db`, /database "no_such_db" does not exist; create it first/],
      ['postgress://primer:test-secret@127.0.0.1/studies', /postgress:\/\/primer:\*\*\*@127\.0\.0\.1\/studies: not a study location this version knows/],
      [other, /schema public holds other tables \(invoices\), not a primer-search study; give another \?schema=/],
    ];
    for (const [url, why] of cases) {
      for (const args of [
        ['search', '--candidates', '1', '--budget-per-candidate', '1steps', ...TINY, '--study', url],
        ['study', 'show', url],
        ['worker', '--study', url],
      ]) {
        const r = await run(args);
        expect([r.code, r.stderr], args.join(' ')).toEqual([1, expect.stringMatching(why)]);
        expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
        expect(r.stderr + r.stdout).not.toContain('-secret@');
      }
    }
    const tables = await c.query("SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')");
    expect(tables.rows).toEqual([{ table_schema: 'public', table_name: 'invoices' }]);
    await c.end();
  });
});
