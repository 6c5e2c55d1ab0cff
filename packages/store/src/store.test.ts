import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SCHEMA_VERSION, SqliteStudyStore, type CandidateRecord, type NewEvaluation } from './index.js';
import { contractEnvironment, contractWorker, describeStoreContract } from './testing.js';

const dir = () => mkdtempSync(join(tmpdir(), 'primer-store-'));
const cand = (id: number, hash: string, parent: number | null = null): CandidateRecord => ({
  id,
  hash,
  parent,
  mutations: parent === null ? [] : [{ kind: 'swap', description: 'swap' }],
  dna: { format: 'x', id },
  hurdles: [null],
  createdAt: new Date().toISOString(),
});
const evaluation = (hash: string, candidate: number, fitness: number): NewEvaluation => ({
  hash,
  candidate,
  status: 'completed',
  fitness,
  hurdle: null,
  reason: null,
  curve: [{ step: 10, tokens: 100, seconds: 1, perplexity: fitness }],
  atHurdles: [fitness + 1],
  steps: 10,
  tokens: 100,
  trainSeconds: 1,
  wallSeconds: 2,
  budget: '10steps',
  backend: 'wasm',
  machine: 'test',
  environment: null,
  parameters: 1234,
});

describeStoreContract('SqliteStudyStore', {
  create: async () => SqliteStudyStore.open(join(dir(), 'study.sqlite')),
  reopen: async (s) => SqliteStudyStore.open(s.location),
});

describe('SqliteStudyStore', () => {
  it('creates the schema, and keeps a study across reopening', async () => {
    const file = join(dir(), 'sub', 'study.sqlite');
    const s = SqliteStudyStore.open(file);
    expect(s.schemaVersion()).toBe(SCHEMA_VERSION);
    expect(await s.config()).toBeUndefined();
    await s.createStudy({ strategy: 'evolution', seed: 1 });
    await expect(s.createStudy({})).rejects.toThrow(/already holds a study/);
    await s.advance({ told: 0, candidates: [cand(0, 'h0'), cand(1, 'h1', 0)], strategyState: { n: 2 } });
    await s.addEvaluation(evaluation('h0', 0, 12.5));
    await s.close();

    const r = SqliteStudyStore.open(file, { readonly: true });
    expect(await r.config()).toEqual({ strategy: 'evolution', seed: 1 });
    expect(await r.latestSnapshot()).toEqual({ told: 0, state: { n: 2 } });
    const cs = await r.candidates();
    expect(cs.map((c) => [c.id, c.parent, c.told, c.evaluation?.fitness ?? null])).toEqual([
      [0, null, false, 12.5],
      [1, 0, false, null],
    ]);
    expect(cs[1]!.mutations).toEqual([{ kind: 'swap', description: 'swap' }]);
    await r.close();
  });

  it('uses write-ahead logging while open, and leaves one self-contained file when closed', async () => {
    const file = join(dir(), 's.sqlite');
    const s = SqliteStudyStore.open(file);
    const peek = new Database(file, { readonly: true });
    expect(peek.pragma('journal_mode', { simple: true })).toBe('wal');
    peek.close();
    await s.createStudy({ format: 'primer-study' });
    await s.close();
    expect(existsSync(`${file}-wal`)).toBe(false);
    expect(readFileSync(file)[18]).toBe(1); // rollback journal mode in the header
    const again = SqliteStudyStore.open(file);
    expect(await again.config()).toEqual({ format: 'primer-study' });
    await again.close();
  });

  it('advances atomically: a failed step leaves neither its candidates nor its snapshot', async () => {
    const s = SqliteStudyStore.open(join(dir(), 's.sqlite'));
    await s.advance({ told: 0, candidates: [cand(0, 'h0')], strategyState: { step: 0 } });
    // candidate 0 exists: the insert fails after candidate 1 went in
    await expect(s.advance({ told: 1, candidates: [cand(1, 'h1', 0), cand(0, 'again')], strategyState: { step: 1 } })).rejects.toThrow();
    expect((await s.candidates()).map((c) => c.id)).toEqual([0]);
    expect(await s.latestSnapshot()).toEqual({ told: 0, state: { step: 0 } });
    await expect(s.advance({ told: -1, candidates: [], strategyState: {} })).rejects.toThrow(/cannot go back/);
    await s.close();
  });

  it('keeps one evaluation per program; later candidates with the same hash show as reused', async () => {
    const s = SqliteStudyStore.open(join(dir(), 's.sqlite'));
    await s.advance({ told: 0, candidates: [cand(0, 'h0'), cand(1, 'h1', 0), cand(2, 'h1', 0)], strategyState: {} });
    await s.addEvaluation(evaluation('h1', 1, 9));
    await expect(s.addEvaluation(evaluation('h1', 2, 8))).rejects.toThrow(/already been evaluated/);
    const [, a, b] = await s.candidates();
    expect([a!.reused, b!.reused]).toEqual([false, true]);
    expect(b!.evaluation?.fitness).toBe(9);
    await s.advance({ told: 2, candidates: [], strategyState: {} });
    expect((await s.candidates()).map((c) => c.told)).toEqual([true, true, false]);
    await s.close();
  });

  it('thins old strategy snapshots but always keeps the latest', async () => {
    const file = join(dir(), 's.sqlite');
    const s = SqliteStudyStore.open(file);
    for (let t = 0; t <= 120; t++) await s.advance({ told: t, candidates: [], strategyState: { t } });
    expect(await s.latestSnapshot()).toEqual({ told: 120, state: { t: 120 } });
    await s.close();
    const db = new Database(file);
    expect((db.prepare('SELECT told FROM strategy_snapshots ORDER BY told').all() as Array<{ told: number }>).map((r) => r.told)).toEqual([0, 50, 100, 120]);
    db.close();
  });

  it('refuses files that are not studies, or come from a newer version, naming the file', async () => {
    const d = dir();
    const text = join(d, 'notes.txt');
    writeFileSync(text, 'hello, this is not a database at all, just some text that is long enough');
    expect(() => SqliteStudyStore.open(text)).toThrow(new RegExp(`${text}.*not a primer-search study`));
    const other = join(d, 'other.sqlite');
    const db = new Database(other);
    db.exec('CREATE TABLE songs (title TEXT)');
    db.close();
    expect(() => SqliteStudyStore.open(other)).toThrow(/not a primer-search study \(it has tables songs\)/);
    const newer = join(d, 'newer.sqlite');
    SqliteStudyStore.open(newer).close();
    const db2 = new Database(newer);
    db2.prepare('INSERT INTO schema_migrations VALUES (?, ?, ?)').run(SCHEMA_VERSION + 1, 'future', 'now');
    db2.close();
    expect(() => SqliteStudyStore.open(newer)).toThrow(/newer primer-search/);
    expect(() => SqliteStudyStore.open(join(d, 'missing.sqlite'), { readonly: true })).toThrow(/no study at/);
  });
});

describe('SqliteStudyStore opens studies written by earlier versions', () => {
  // a real study (4 candidates, 4 evaluations) written by primer-search at schema 1, before evaluations recorded where they ran
  const fixture = fileURLToPath(new URL('./__fixtures__/study-v1.sqlite', import.meta.url));

  it('a reader reads a schema-1 file as it is, and leaves it untouched', async () => {
    const file = join(dir(), 'old.sqlite');
    copyFileSync(fixture, file);
    const before = readFileSync(file);
    const s = SqliteStudyStore.open(file, { readonly: true });
    expect(s.schemaVersion()).toBe(1);
    const evaluations = await s.evaluations();
    expect(evaluations).toHaveLength(4);
    expect(evaluations.every((e) => e.environment === null && e.backend === 'wasm' && e.fitness! > 1)).toBe(true);
    expect((await s.candidates()).map((c) => c.id)).toEqual([0, 1, 2, 3]);
    expect(await s.workers()).toEqual([]);
    expect(await s.retrains()).toEqual([]);
    expect(await s.retrainRuns()).toEqual([]);
    expect((await s.dump()).workers).toEqual([]);
    // what the dashboard polls (it read the workers table, which schema 1 lacks)
    expect(JSON.parse(await s.changeToken!())).toMatchObject({ candidates: 4, evaluations: 4 });
    await s.close();
    expect(readFileSync(file).equals(before)).toBe(true);
  });

  it('a writer upgrades it to the current schema, keeping every row, and writes the new fields', async () => {
    const file = join(dir(), 'old.sqlite');
    copyFileSync(fixture, file);
    const old = SqliteStudyStore.open(file, { readonly: true });
    const dump = await old.dump();
    await old.close();
    const s = SqliteStudyStore.open(file);
    expect(s.schemaVersion()).toBe(SCHEMA_VERSION);
    expect(await s.dump()).toEqual(dump);
    await s.registerWorker(contractWorker('w'));
    await s.advance({ told: 4, candidates: [{ ...dump.candidates[3]!, id: 4, hash: 'new-program', parent: 3 }], strategyState: dump.snapshots.at(-1)!.state });
    const e = await s.addEvaluation({ ...evaluation('new-program', 4, 7), environment: contractEnvironment('here') });
    await s.close();
    const again = SqliteStudyStore.open(file, { readonly: true });
    expect(await again.evaluationOf('new-program')).toEqual(e);
    expect((await again.workers()).map((w) => w.id)).toEqual(['w']);
    expect(await again.evaluations()).toHaveLength(5);
    await again.close();
  });
});

describe('SqliteStudyStore diagnoses bad files', () => {
  /** A finished little study of 40 candidates with bulky DNA (many pages), closed. */
  const studyWithPages = async () => {
    const file = join(dir(), 'study.sqlite');
    const s = SqliteStudyStore.open(file);
    await s.createStudy({ format: 'primer-study' });
    const bulky = (id: number) => ({ ...cand(id, `h${id}`), dna: { format: 'x', id, filler: 'SECRET-DNA-TEXT '.repeat(200) } });
    await s.advance({ told: 0, candidates: Array.from({ length: 40 }, (_, i) => bulky(i)), strategyState: { population: 'SECRET-STATE '.repeat(1500) } });
    for (let i = 0; i < 40; i++) await s.addEvaluation(evaluation(`h${i}`, i, 10 + i));
    await s.close();
    return file;
  };
  const refusal = async (f: () => unknown) => {
    try {
      await f();
    } catch (e) {
      const m = (e as Error).message;
      expect((e as { code?: string }).code).toBe('STORE');
      expect(m).not.toContain('SECRET');
      expect(m.length).toBeLessThan(400);
      return m;
    }
    throw new Error('expected a refusal');
  };

  it('a damaged page: names the file and how to recover, prints no stored data, on open and on read', async () => {
    const file = await studyWithPages();
    const bytes = readFileSync(file);
    const pageSize = bytes.readUInt16BE(16);
    // scribble over a page in the middle
    const buf = Buffer.from(bytes);
    buf.fill(0xa5, pageSize * 5, pageSize * 6);
    writeFileSync(file, buf);
    for (const readonly of [true, false]) {
      expect(await refusal(() => SqliteStudyStore.open(file, { readonly }))).toMatch(new RegExp(`${file} is damaged .*sqlite3 ${file} "\\.recover"`));
    }
  });

  it('damaged JSON in a row: says which record, never quotes it', async () => {
    const file = await studyWithPages();
    const db = new Database(file);
    db.prepare('UPDATE strategy_snapshots SET state = ?').run(`{"population": "SECRET ${'x'.repeat(19_000)}`);
    db.close();
    const s = SqliteStudyStore.open(file, { readonly: true });
    expect(await refusal(() => s.latestSnapshot())).toBe(`${file} is damaged: the stored strategy state after 0 candidates is not valid JSON; restore a copy made before the damage`);
    await s.close();
  });

  it('a parent that is not an earlier candidate (a cycle, a text, a later id): diagnosed as damage, not followed', async () => {
    for (const [parent, shown] of [[1, '1'], [7, '7'], ['<b>x</b>', '"<b>x</b>"'], [-1, '-1']] as const) {
      const file = await studyWithPages();
      const db = new Database(file);
      db.pragma('foreign_keys = OFF'); // as the sqlite3 shell has it
      db.prepare('UPDATE candidates SET parent = ? WHERE id = 1').run(parent);
      db.close();
      const s = SqliteStudyStore.open(file, { readonly: true });
      const expected = `${file} is damaged: candidate 1's parent ${shown} is not an earlier candidate; restore a copy made before the damage`;
      expect(await refusal(() => s.candidates())).toBe(expected);
      expect(await refusal(() => s.candidate(1))).toBe(expected);
      expect(await refusal(() => s.dump())).toBe(expected);
      await s.close();
    }
  });

  it('a refused writer touches nothing: a damaged page, damaged JSON, another program\'s database are left byte for byte, with nothing beside them', async () => {
    const beside = (file: string) => readdirSync(dirname(file)).filter((f) => f !== basename(file));
    const cases: Array<[string, () => Promise<string>, RegExp]> = [
      [
        'a damaged page',
        async () => {
          const file = await studyWithPages();
          const buf = readFileSync(file);
          buf.fill(0xa5, buf.readUInt16BE(16) * 5, buf.readUInt16BE(16) * 6);
          writeFileSync(file, buf);
          return file;
        },
        /is damaged \(/,
      ],
      [
        'damaged JSON',
        async () => {
          const file = await studyWithPages();
          const db = new Database(file);
          db.prepare('UPDATE study SET config = ?').run('{"SECRET": ');
          db.close();
          return file;
        },
        /is damaged: the stored study configuration is not valid JSON/,
      ],
      [
        "another program's database",
        async () => {
          const file = join(dir(), 'songs.db');
          const db = new Database(file);
          db.exec("CREATE TABLE songs (title TEXT); INSERT INTO songs VALUES ('x')");
          db.close();
          return file;
        },
        /is a SQLite file but not a primer-search study/,
      ],
    ];
    for (const [what, make, message] of cases) {
      const file = await make();
      const before = readFileSync(file);
      const files = beside(file);
      expect(await refusal(() => SqliteStudyStore.open(file, { mustExist: true })), what).toMatch(message);
      expect(readFileSync(file).equals(before), what).toBe(true);
      expect(beside(file), what).toEqual(files);
    }
  });

  it('a one-time reader of a study left in WAL mode (its writer killed, the log checkpointed) leaves nothing beside it', async () => {
    const file = await studyWithPages();
    const raw = new Database(file);
    raw.pragma('journal_mode = WAL');
    raw.close(); // checkpoints and removes the -wal: the file stays in WAL mode, alone
    expect(readFileSync(file)[18]).toBe(2);
    chmodSync(file, 0o444);
    const s = SqliteStudyStore.open(file, { readonly: true, snapshot: true });
    expect(await s.candidates()).toHaveLength(40);
    await s.close();
    expect(readdirSync(dirname(file))).toEqual([basename(file)]);
  });

  it('reads a gzipped study (as studies are committed) in memory, writes nothing beside it, and refuses to write one', async () => {
    const file = await studyWithPages();
    const d = dirname(file);
    const gz = join(d, 'study.sqlite.gz');
    writeFileSync(gz, gzipSync(readFileSync(file)));
    const s = SqliteStudyStore.open(gz, { readonly: true, snapshot: true });
    expect((await s.candidates()).map((c) => c.evaluation?.fitness)).toEqual(Array.from({ length: 40 }, (_, i) => 10 + i));
    await s.close();
    // the live reader (the dashboard) too
    const live = SqliteStudyStore.open(gz, { readonly: true, mustExist: true });
    expect(await live.config()).toEqual({ format: 'primer-study' });
    await live.close();
    expect(readdirSync(d).sort()).toEqual(['study.sqlite', 'study.sqlite.gz']);
    for (const o of [{}, { mustExist: true }]) expect(await refusal(() => SqliteStudyStore.open(gz, o))).toContain(`${gz} is a gzipped study: to write to it, unpack it (gunzip -k ${gz}) and give ${file}`);
    // nor is one created gzipped
    expect(await refusal(() => SqliteStudyStore.open(join(d, 'new.sqlite.GZ')))).toContain('a study is not written gzipped; give a .sqlite file');
    expect(readdirSync(d).sort()).toEqual(['study.sqlite', 'study.sqlite.gz']);
    // what is not a gzipped study, said
    const notGzip = join(d, 'plain.sqlite.gz');
    copyFileSync(file, notGzip);
    expect(await refusal(() => SqliteStudyStore.open(notGzip, { readonly: true }))).toContain('is not a gzip file, though its name ends in .gz');
    // bytes after the whole gzip stream, which gzip -d ignores with a warning: the stream is read, its checksum verified
    const trailing = join(d, 'trailing.sqlite.gz');
    writeFileSync(trailing, Buffer.concat([readFileSync(gz), Buffer.from('appended by a careless copy')]));
    const t = SqliteStudyStore.open(trailing, { readonly: true, snapshot: true });
    expect((await t.candidates()).map((c) => c.evaluation?.fitness)).toEqual(Array.from({ length: 40 }, (_, i) => 10 + i));
    await t.close();
    // a stream damaged inside (one byte of its compressed data flipped): gzipped, but damaged
    const flipped = readFileSync(gz);
    flipped[Math.floor(flipped.length / 2)]! ^= 0xff;
    const damaged = join(d, 'damaged.sqlite.gz');
    writeFileSync(damaged, flipped);
    expect(await refusal(() => SqliteStudyStore.open(damaged, { readonly: true }))).toMatch(/damaged\.sqlite\.gz is gzipped but damaged: its compressed data cannot be unpacked or fails its checksum \(Z_DATA_ERROR\)/);
    // a whole stream followed by a damaged one: not read as if whole
    writeFileSync(damaged, Buffer.concat([readFileSync(gz), flipped]));
    expect(await refusal(() => SqliteStudyStore.open(damaged, { readonly: true }))).toContain('is gzipped but damaged');
    // two members (gzip's concatenation) and then other bytes: both members, as gzip -d reads them
    const image = readFileSync(file);
    const half = 5 * 4096;
    expect(image.length).toBeGreaterThan(half);
    writeFileSync(trailing, Buffer.concat([gzipSync(image.subarray(0, half)), gzipSync(image.subarray(half)), Buffer.from('tail')]));
    const two = SqliteStudyStore.open(trailing, { readonly: true, snapshot: true });
    expect((await two.candidates())).toHaveLength(40);
    await two.close();
    const notSqlite = join(d, 'text.sqlite.gz');
    writeFileSync(notSqlite, gzipSync('hello, this is not a database at all, just some text that is long enough to look at'));
    expect(await refusal(() => SqliteStudyStore.open(notSqlite, { readonly: true }))).toContain('unpacks to a file that is not a SQLite file');
    const cutStream = join(d, 'cut-stream.sqlite.gz');
    writeFileSync(cutStream, readFileSync(gz).subarray(0, 2000));
    expect(await refusal(() => SqliteStudyStore.open(cutStream, { readonly: true }))).toContain('is cut short (its gzip stream ends early)');
    const cutStudy = join(d, 'cut-study.sqlite.gz');
    writeFileSync(cutStudy, gzipSync(readFileSync(file).subarray(0, 3 * 4096)));
    expect(await refusal(() => SqliteStudyStore.open(cutStudy, { readonly: true }))).toMatch(/unpacks to a file that is truncated: 12,288 bytes of [\d,]+/);
    expect(await refusal(() => SqliteStudyStore.open(join(d, 'missing.sqlite.gz'), { readonly: true }))).toContain('no study at');
    const empty = join(d, 'empty.sqlite.gz');
    writeFileSync(empty, '');
    expect(await refusal(() => SqliteStudyStore.open(empty, { readonly: true }))).toContain(`${empty} is empty (0 bytes)`);
  });

  it('says what is really wrong: a folder, an empty file, a file cut short, not SQLite, a copy without its -wal', async () => {
    const d = dir();
    expect(await refusal(() => SqliteStudyStore.open(d, { readonly: true }))).toContain(`${d} is a folder, not a study file`);
    expect(await refusal(() => SqliteStudyStore.open(d))).toContain('is a folder');
    const empty = join(d, 'empty.sqlite');
    writeFileSync(empty, '');
    expect(await refusal(() => SqliteStudyStore.open(empty, { readonly: true }))).toContain(`${empty} is empty (0 bytes)`);
    const text = join(d, 'notes.sqlite');
    writeFileSync(text, 'hello, this is not a database at all, just some text that is long enough to look at');
    expect(await refusal(() => SqliteStudyStore.open(text, { readonly: true }))).toContain('is not a SQLite file');
    const whole = await studyWithPages();
    const cut = join(d, 'cut.sqlite');
    writeFileSync(cut, readFileSync(whole).subarray(0, 3 * 4096));
    expect(await refusal(() => SqliteStudyStore.open(cut, { readonly: true }))).toMatch(/is truncated: 12,288 bytes of [\d,]+/);

    // a study still open in its writer (its data in the -wal), copied without the -wal
    const live = join(d, 'live.sqlite');
    const writer = SqliteStudyStore.open(live);
    await writer.createStudy({ format: 'primer-study' });
    const copy = join(d, 'copy.sqlite');
    writeFileSync(copy, readFileSync(live));
    for (const readonly of [true, false]) {
      expect(await refusal(() => SqliteStudyStore.open(copy, { readonly }))).toContain(`its write-ahead log ${copy}-wal is missing or empty`);
    }
    await writer.close();
  });

  it('refuses to resume a missing file and creates nothing', async () => {
    const file = join(dir(), 'new.sqlite');
    expect(await refusal(() => SqliteStudyStore.open(file, { mustExist: true }))).toBe(`no study at ${file}`);
    expect(existsSync(file)).toBe(false);
  });
});
