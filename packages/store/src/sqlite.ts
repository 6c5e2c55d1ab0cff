import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { gunzipSync, inflateRawSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { quote } from '@primer-search/core';
import { StoreError } from './errors.js';
import { hasTable, SCHEMA, SCHEMA_VERSION, schemaGate } from './schema.js';
import type { CandidateRecord, CandidateView, EvaluationRecord, NewEvaluation, NewRetrainPlan, NewRetrainRun, RetrainPlan, RetrainRun, StudyDump, StudyStore, WorkerRecord } from './types.js';

/** Schema changes for SQLite, in order (`SCHEMA`); the store applies those it has not yet applied, each in a transaction. */
export const MIGRATIONS = SCHEMA.map((v) => ({ version: v.version, description: v.description, additive: v.additive, sql: v.sql.sqlite }));

/** Older snapshots are thinned to one every this many candidates (the latest is always kept). */
const SNAPSHOT_EVERY = 50;

export { StoreError };

/**
 * What a SQLite failure means for a study file, and what to do: one sentence naming the
 * file, never the stored data.
 */
function explain(location: string, e: unknown): StoreError {
  const code = (e as { code?: string } | null)?.code ?? '';
  const message = (e as Error)?.message ?? String(e);
  const recover = `recover what can be saved with \`sqlite3 ${location} ".recover" | sqlite3 recovered.sqlite\`, or use a copy made before the damage`;
  if (code.startsWith('SQLITE_CORRUPT')) return new StoreError(`${location} is damaged (${message.replace(/\s+/g, ' ').slice(0, 160)}): ${recover}`);
  if (code === 'SQLITE_NOTADB') return new StoreError(`${location} is not a SQLite database, so not a primer-search study (${message})`);
  if (code.startsWith('SQLITE_READONLY')) {
    return new StoreError(`${location} cannot be written (${message}): make the file and its folder writable (SQLite writes ${location}-wal and ${location}-shm beside it)`);
  }
  if (code === 'SQLITE_FULL') return new StoreError(`${location} cannot be written: the disk is full (${message}); free some space, then continue with --resume`);
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new StoreError(`${location} is locked by another process (${message}): is another search writing this study?`);
  }
  if (code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_CANTOPEN')) return new StoreError(`${location} cannot be read or written (${message})`);
  if (e instanceof StoreError) return e;
  return new StoreError(`${location}: ${message}`);
}

/** JSON stored in the study; damaged text is reported by what it held, never printed. */
function parseStored(location: string, what: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new StoreError(`${location} is damaged: the stored ${what} is not valid JSON; restore a copy made before the damage`);
  }
}

const SQLITE_HEADER = 'SQLite format 3\0';

const writable = (dir: string) => {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
};

/**
 * Looks at a study file before SQLite opens it, to say what is really wrong: a folder, an
 * empty file, not SQLite at all, or a file cut short (fewer bytes than its header says).
 */
function inspectFile(location: string): Buffer {
  const st = statSync(location);
  if (st.isDirectory()) throw new StoreError(`${location} is a folder, not a study file: give a file, e.g. ${location.replace(/\/+$/, '')}/study.sqlite`);
  if (st.size === 0) throw new StoreError(`${location} is empty (0 bytes), not a study: remove it, or give the study file`);
  const head = Buffer.alloc(100);
  const fd = openSync(location, 'r');
  let n: number;
  try {
    n = readSync(fd, head, 0, 100, 0);
  } finally {
    closeSync(fd);
  }
  checkHeader(location, head.subarray(0, n), st.size);
  return head;
}

/** What the first bytes of a study file (`size` bytes in all) say is wrong with it, if anything: not SQLite, or cut short. */
function checkHeader(location: string, head: Buffer, size: number, what = 'is'): void {
  if (head.subarray(0, 16).toString('latin1') !== SQLITE_HEADER) {
    throw new StoreError(`${location} ${what} not a SQLite file, so not a primer-search study`);
  }
  if (head.length < 100) throw new StoreError(`${location} ${what} truncated: ${size} bytes, less than a SQLite header`);
  const pageSize = head.readUInt16BE(16) === 1 ? 65536 : head.readUInt16BE(16);
  const pages = head.readUInt32BE(28);
  // the page count is valid when the change counter matches "version-valid-for"
  if (pages > 0 && head.readUInt32BE(24) === head.readUInt32BE(92) && size < pages * pageSize) {
    throw new StoreError(`${location} ${what} truncated: ${size.toLocaleString('en-US')} bytes of ${(pages * pageSize).toLocaleString('en-US')} (copied or moved only in part?); restore a whole copy`);
  }
}

/**
 * The most a gzipped study may unpack to. A reader holds it about twice (the unpacked image
 * and SQLite's copy of it): a hostile file cannot make it allocate without bound.
 */
export const GZIP_STUDY_LIMIT = 512 * 2 ** 20;

/** The file a gzipped study file (`x.sqlite.gz`) unpacks to (`x.sqlite`), or undefined for a study file that is not gzipped. */
export function unpackedStudyFile(location: string): string | undefined {
  return /\.gz$/i.test(location) ? location.slice(0, -3) : undefined;
}

/** The commands that read a gzipped study as it is. */
const GZIP_READERS = 'study show, study report, study dna, study ablate, study copy from it, export --study, dashboard';

/**
 * A gzipped study file (`x.sqlite.gz`, as studies are committed) unpacked in memory for reading:
 * the image a reader opens, nothing written anywhere. Writing one is refused: unpack it first.
 */
function gzippedImage(location: string, options: { readonly?: boolean }): Buffer {
  const exists = existsSync(location);
  if (!options.readonly) {
    throw new StoreError(
      exists
        ? `${location} is a gzipped study: to write to it, unpack it (gunzip -k ${location}) and give ${unpackedStudyFile(location)}; the commands that only read a study (${GZIP_READERS}) read it as it is; to delete it, remove the file`
        : `${location}: a study is not written gzipped; give a .sqlite file (and gzip it once it is written, to keep or share it)`,
    );
  }
  if (!exists) throw new StoreError(`no study at ${location}`);
  let packed: Buffer;
  try {
    const st = statSync(location);
    if (st.isDirectory()) throw new StoreError(`${location} is a folder, not a study file`);
    if (st.size === 0) throw new StoreError(`${location} is empty (0 bytes), not a study: remove it, or give the study file`);
    packed = readFileSync(location);
  } catch (e) {
    if (e instanceof StoreError) throw e;
    throw new StoreError(`${location} cannot be read: ${(e as Error).message}`);
  }
  let image: Buffer;
  try {
    try {
      image = gunzipSync(packed, { maxOutputLength: GZIP_STUDY_LIMIT });
    } catch (e) {
      // bytes after whole gzip members (gzip -d ignores them with a warning): the members, their checksums verified, else the first error
      const member = (e as { code?: string }).code === 'Z_DATA_ERROR' ? gzipMembers(packed) : undefined;
      if (!member) throw e;
      image = gunzipSync(member, { maxOutputLength: GZIP_STUDY_LIMIT });
    }
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') throw new StoreError(`${location} unpacks to more than ${GZIP_STUDY_LIMIT / 2 ** 20} MiB, too much to read in memory: unpack it (gunzip -k ${location}) and give the .sqlite file`);
    if (code === 'Z_BUF_ERROR') throw new StoreError(`${location} is cut short (its gzip stream ends early): copied or downloaded only in part? restore a whole copy`);
    if (packed[0] === 0x1f && packed[1] === 0x8b) throw new StoreError(`${location} is gzipped but damaged: its compressed data cannot be unpacked or fails its checksum (${code ?? 'unreadable'}): restore a whole copy`);
    throw new StoreError(`${location} is not a gzip file, though its name ends in .gz (${code ?? 'unreadable'}): give the study file itself`);
  }
  checkHeader(location, image.subarray(0, 100), image.length, 'unpacks to a file that is');
  // read as a file in rollback-journal mode: an image cannot have a -wal file beside it
  image[18] = 1;
  image[19] = 1;
  return image;
}

/**
 * The gzip members a file starts with (RFC 1952: each a header, a deflate stream, its CRC-32 and
 * size), where bytes that do not start another member follow them (as gzip -d, which ignores
 * them); undefined when the file does not start as one, a stream does not end, or nothing follows.
 */
function gzipMembers(packed: Buffer): Buffer | undefined {
  const gzipAt = (k: number) => packed[k] === 0x1f && packed[k + 1] === 0x8b;
  let end = 0;
  try {
    while (end < packed.length && gzipAt(end)) {
      if (packed[end + 2] !== 8) return undefined;
      const flags = packed[end + 3]!;
      let at = end + 10;
      if (flags & 4) at += 2 + packed.readUInt16LE(at);
      for (const bit of [8, 16]) if (flags & bit) at = packed.indexOf(0, at) + 1 || packed.length;
      if (flags & 2) at += 2;
      const { engine } = inflateRawSync(packed.subarray(at), { info: true, maxOutputLength: GZIP_STUDY_LIMIT }) as unknown as { engine: { bytesWritten: number } };
      end = at + engine.bytesWritten + 8;
    }
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw e;
    return undefined;
  }
  return end > 0 && end < packed.length ? packed.subarray(0, end) : undefined;
}

/** The file as an image to open in memory: its WAL-mode flag set back to a rollback journal (bytes 18-19), which SQLite needs to open an image. */
function imageOf(location: string): Buffer | undefined {
  // read whole and unchanged: a writer that opened the file meanwhile would make a torn copy (then it is read in place)
  for (let k = 0; k < 3; k++) {
    const before = statSync(location);
    const image = readFileSync(location);
    const after = statSync(location);
    if (before.size === after.size && before.mtimeMs === after.mtimeMs && image.length === after.size && !existsSync(`${location}-wal`)) {
      image[18] = 1;
      image[19] = 1;
      return image;
    }
  }
  return undefined;
}

/**
 * Whether the file is in WAL mode (header bytes 18-19) with no -wal file beside it, or an
 * empty one (what opening such a copy read-only leaves behind).
 */
function walMissing(location: string, head: Buffer): boolean {
  const wal = `${location}-wal`;
  return head[18] === 2 && (!existsSync(wal) || statSync(wal).size === 0);
}

interface EvaluationRow {
  id: number;
  hash: string;
  candidate: number;
  status: EvaluationRecord['status'];
  fitness: number | null;
  hurdle: number | null;
  reason: string | null;
  curve: string;
  at_hurdles: string;
  steps: number;
  tokens: number;
  train_seconds: number;
  wall_seconds: number;
  budget: string;
  backend: string | null;
  machine: string;
  /** Absent in files of schema 1. */
  environment?: string | null;
  /** Absent in files before schema 3. */
  behaviour?: string | null;
  same_as?: string | null;
  parameters: number | null;
  finished_at: string;
}

interface CandidateRow {
  id: number;
  hash: string;
  parent: number | null;
  mutations: string;
  dna: string;
  hurdles: string;
  created_at: string;
}

const evaluationOfRow = (r: EvaluationRow, parse: (what: string, text: string) => any): EvaluationRecord => ({
  id: r.id,
  hash: r.hash,
  candidate: r.candidate,
  status: r.status,
  fitness: r.fitness,
  hurdle: r.hurdle,
  reason: r.reason,
  curve: parse(`curve of evaluation ${r.id}`, r.curve),
  atHurdles: parse(`hurdle results of evaluation ${r.id}`, r.at_hurdles),
  steps: r.steps,
  tokens: r.tokens,
  trainSeconds: r.train_seconds,
  wallSeconds: r.wall_seconds,
  budget: r.budget,
  backend: r.backend,
  machine: r.machine,
  environment: r.environment ? parse(`environment of evaluation ${r.id}`, r.environment) : null,
  parameters: r.parameters,
  behaviour: r.behaviour ?? null,
  sameAs: r.same_as ?? null,
  finishedAt: r.finished_at,
});

/** The named parameters of an evaluation's row. */
const evaluationParams = (e: NewEvaluation & { id?: number }, finishedAt: string) => ({
  id: e.id ?? null,
  hash: e.hash,
  candidate: e.candidate,
  status: e.status,
  fitness: e.fitness,
  hurdle: e.hurdle,
  reason: e.reason,
  curve: JSON.stringify(e.curve),
  atHurdles: JSON.stringify(e.atHurdles),
  steps: e.steps,
  tokens: e.tokens,
  trainSeconds: e.trainSeconds,
  wallSeconds: e.wallSeconds,
  budget: e.budget,
  backend: e.backend,
  machine: e.machine,
  environment: e.environment ? JSON.stringify(e.environment) : null,
  parameters: e.parameters,
  behaviour: e.behaviour ?? null,
  sameAs: e.sameAs ?? null,
  finishedAt,
});

/**
 * A candidates row as a record, in both stores, its types checked as it is read: an id, a hash,
 * and a parent that is an earlier candidate (parents are told before their children are
 * proposed), so a damaged or hand-edited study can hold no parent cycle for a reader to follow.
 */
export function candidateOfRow(location: string, r: Record<string, unknown>, parse: (what: string, text: string) => any): CandidateRecord {
  const id = typeof r.id === 'string' && /^\d+$/.test(r.id) ? Number(r.id) : r.id;
  const parent = typeof r.parent === 'string' && /^\d+$/.test(r.parent) ? Number(r.parent) : (r.parent ?? null);
  const show = (v: unknown) => (typeof v === 'number' ? String(v) : quote(v, 20));
  const damaged = (why: string) => new StoreError(`${location} is damaged: ${why}; restore a copy made before the damage`);
  if (!Number.isSafeInteger(id) || (id as number) < 0) throw damaged(`a candidate's id is not a whole number (${show(id)})`);
  if (parent !== null && !(Number.isSafeInteger(parent) && (parent as number) >= 0 && (parent as number) < (id as number))) {
    throw damaged(`candidate ${id}'s parent ${show(parent)} is not an earlier candidate`);
  }
  if (typeof r.hash !== 'string') throw damaged(`candidate ${id}'s hash is not text`);
  return {
    id: id as number,
    hash: r.hash,
    parent: parent as number | null,
    mutations: parse(`mutations of candidate ${id}`, r.mutations as string),
    dna: parse(`DNA of candidate ${id}`, r.dna as string),
    hurdles: parse(`hurdles of candidate ${id}`, r.hurdles as string),
    createdAt: String(r.created_at),
  };
}

/**
 * A study in one SQLite file (better-sqlite3): write-ahead logging, every write in a
 * transaction and synced before the call returns, a schema version with migrations.
 * One process writes a study at a time; `study show` may read it meanwhile. Every failure
 * is a StoreError that names the file, says what is wrong and what to do, and never
 * quotes stored data.
 */
export class SqliteStudyStore implements StudyStore {
  private readonly db: Database.Database;
  /** The schema the file is at once open (older than SCHEMA_VERSION only for a reader). */
  private version = 0;
  private readonly parse = (what: string, text: string): any => parseStored(this.location, what, text);

  private constructor(
    readonly location: string,
    options: { readonly?: boolean; diagnose?: boolean },
    /** The file is in WAL mode and had no -wal file when we came (SQLite creates one on open). */
    private readonly walWasMissing = false,
    /** The whole file, read into memory: opened from this image, nothing is created beside the file. */
    image?: Buffer,
  ) {
    try {
      this.db = image ? new Database(image, { readonly: true }) : new Database(location, { readonly: options.readonly === true, fileMustExist: options.readonly === true });
    } catch (e) {
      throw explain(location, e);
    }
    try {
      if (!options.readonly) {
        this.db.pragma('journal_mode = WAL');
        // FULL: a transaction is on disk when commit returns, power loss included
        this.db.pragma('synchronous = FULL');
      }
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
      this.migrate(options.readonly ?? false, options.diagnose ?? false);
      this.version = this.schemaVersion();
      if (!options.readonly) this.probeWrite();
      // reads the whole file: a damaged page is found now, not halfway through a search
      const check = this.db.pragma('quick_check(1)', { simple: true });
      if (check !== 'ok') {
        const unpacked = unpackedStudyFile(location);
        throw new StoreError(
          `${location} is damaged (${String(check).replace(/\s+/g, ' ').slice(0, 160)}): recover what can be saved with ${unpacked ? `\`gunzip -k ${location}\`, then ` : ''}\`sqlite3 ${unpacked ?? location} ".recover" | sqlite3 recovered.sqlite\`, or use a copy made before the damage`,
        );
      }
      if (options.diagnose && this.version > 0) {
        // what a writer reads first: damaged JSON here is found before anything is written (an empty database has nothing to read yet)
        this.configSync();
        this.latestSnapshotSync();
      }
    } catch (e) {
      this.db.close();
      const code = (e as { code?: string }).code ?? '';
      if (options.readonly && /^SQLITE_(READONLY|CANTOPEN)/.test(code) && !writable(dirname(location))) {
        // readers of a WAL-mode file need its -shm file, which SQLite creates beside it
        throw new StoreError(
          `${location} cannot be read from here: SQLite needs ${location}-shm beside a study in write-ahead-log mode, and its folder ${dirname(location)} is not writable for you; copy the study (with its -wal file, if any) to a folder you can write`,
        );
      }
      throw explain(location, e);
    }
  }

  /**
   * Opens a study file and brings its schema up to date. Writable opens create the file
   * unless `mustExist` (to resume: a missing file is refused and nothing is created) and
   * check that it can really be written before any work is done.
   */
  static open(location: string, options: { readonly?: boolean; mustExist?: boolean; snapshot?: boolean } = {}): SqliteStudyStore {
    let walMissingBefore = false;
    let image: Buffer | undefined;
    if (unpackedStudyFile(location)) return new SqliteStudyStore(location, { ...options, readonly: true }, false, gzippedImage(location, options));
    if (location !== ':memory:') {
      if (existsSync(location)) {
        const head = inspectFile(location);
        walMissingBefore = walMissing(location, head);
        // a study in WAL mode closed cleanly (nothing beside it): read from an image of it, which leaves nothing behind
        const closed = head[18] === 2 && !existsSync(`${location}-wal`) && !existsSync(`${location}-shm`);
        if (closed && (!options.readonly || options.snapshot)) image = imageOf(location);
        if (!options.readonly) {
          // a writer touches nothing (journal mode, migrations, write probe) until the study is known good
          new SqliteStudyStore(location, { readonly: true, diagnose: true }, walMissingBefore, image).closeSync();
          image = undefined;
        }
      } else if (options.readonly || options.mustExist) throw new StoreError(`no study at ${location}`);
      if (!options.readonly) {
        try {
          mkdirSync(dirname(location), { recursive: true });
          accessSync(dirname(location), constants.W_OK);
        } catch (e) {
          throw new StoreError(`cannot write the study's folder ${dirname(location)}: ${(e as Error).message}`);
        }
      }
    }
    return new SqliteStudyStore(location, options, walMissingBefore, image);
  }

  /** Writes something and takes it back: a read-only file or folder is refused now, before any training. */
  private probeWrite(): void {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      this.db.pragma(`user_version = ${Number(this.db.pragma('user_version', { simple: true }))}`);
      this.db.exec('CREATE TABLE IF NOT EXISTS write_probe (x INTEGER); DROP TABLE write_probe;');
      this.db.exec('COMMIT');
    } catch (e) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw e;
    }
  }

  /** Runs `fn`, turning any failure into a StoreError about this file. */
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw explain(this.location, e);
    }
  }

  /** The schema version the file is at (0 for an empty file). */
  schemaVersion(): number {
    return this.guard(() => {
      const has = this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get();
      if (!has) return 0;
      return (this.db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
    });
  }

  private migrate(readonly: boolean, diagnose = false): void {
    const tables = this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>;
    const current = this.schemaVersion();
    if (current === 0 && tables.length > 0) {
      throw new StoreError(`${this.location} is a SQLite file but not a primer-search study (it has tables ${tables.map((t) => t.name).join(', ')})`);
    }
    if (current === 0 && this.walWasMissing) {
      throw new StoreError(
        `${this.location} holds no tables, and its write-ahead log ${this.location}-wal is missing or empty: the study's data is in that file (a study copied without it, or a run killed before its first checkpoint); copy it beside the study`,
      );
    }
    if (diagnose) {
      // a writer will upgrade an older schema, or create the study in a file with no tables
      schemaGate(this.location, current, false, '');
      return;
    }
    if (readonly && current === 0) throw new StoreError(`${this.location} holds no study (an empty SQLite file)`);
    const unpacked = unpackedStudyFile(this.location);
    const upgrade = `${unpacked ? `gunzip -k ${this.location}, then ` : ''}e.g. primer search --study ${unpacked ?? this.location} --resume`;
    if (schemaGate(this.location, current, readonly, upgrade) !== 'migrate') return;
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at TEXT NOT NULL)');
    for (const m of MIGRATIONS.filter((m) => m.version > current)) {
      this.db.transaction(() => {
        this.db.exec(m.sql);
        this.db.prepare('INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)').run(m.version, m.description, now());
      })();
    }
  }

  private configSync(): Record<string, unknown> | undefined {
    return this.guard(() => {
      const row = this.db.prepare('SELECT config FROM study WHERE id = 1').get() as { config: string } | undefined;
      return row ? (this.parse('study configuration', row.config) as Record<string, unknown>) : undefined;
    });
  }

  private createStudySync(config: Record<string, unknown>): void {
    this.guard(() => {
      if (this.configSync()) throw new StoreError(`${this.location} already holds a study`);
      this.db.prepare('INSERT INTO study (id, config, created_at) VALUES (1, ?, ?)').run(JSON.stringify(config), now());
    });
  }

  private updateStudySync(config: Record<string, unknown>): void {
    this.guard(() => {
      if (!this.configSync()) throw new StoreError(`${this.location} holds no study to update`);
      this.db.prepare('UPDATE study SET config = ? WHERE id = 1').run(JSON.stringify(config));
    });
  }

  private advanceSync(step: { told: number; candidates: CandidateRecord[]; strategyState: unknown }): void {
    this.guard(() => {
      const insert = this.db.prepare(
        'INSERT INTO candidates (id, hash, parent, mutations, dna, hurdles, created_at) VALUES (@id, @hash, @parent, @mutations, @dna, @hurdles, @createdAt)',
      );
      this.db.transaction(() => {
        const latest = this.latestSnapshotSync();
        if (latest && step.told < latest.told) {
          throw new StoreError(`the study has already been told ${latest.told} candidates; cannot go back to ${step.told}`);
        }
        for (const c of step.candidates) {
          insert.run({
            ...c,
            mutations: JSON.stringify(c.mutations),
            dna: JSON.stringify(c.dna),
            hurdles: JSON.stringify(c.hurdles),
          });
        }
        this.db
          .prepare('INSERT OR REPLACE INTO strategy_snapshots (told, state, created_at) VALUES (?, ?, ?)')
          .run(step.told, JSON.stringify(step.strategyState), now());
        this.db.prepare('DELETE FROM strategy_snapshots WHERE told < ? AND told % ? != 0').run(step.told, SNAPSHOT_EVERY);
      })();
    });
  }

  private latestSnapshotSync(): { told: number; state: unknown } | undefined {
    return this.guard(() => {
      const row = this.db.prepare('SELECT told, state FROM strategy_snapshots ORDER BY told DESC LIMIT 1').get() as
        | { told: number; state: string }
        | undefined;
      return row ? { told: row.told, state: this.parse(`strategy state after ${row.told} candidates`, row.state) } : undefined;
    });
  }

  private views(rows: CandidateRow[]): CandidateView[] {
    const told = this.latestSnapshotSync()?.told ?? 0;
    const byHash = new Map(this.evaluationsSync().map((e) => [e.hash, e]));
    return rows.map((r) => {
      const evaluation = byHash.get(r.hash) ?? null;
      return { ...candidateOfRow(this.location, r as unknown as Record<string, unknown>, this.parse), told: r.id < told, reused: evaluation !== null && evaluation.candidate !== r.id, evaluation };
    });
  }

  private candidatesSync(): CandidateView[] {
    return this.guard(() => this.views(this.db.prepare('SELECT * FROM candidates ORDER BY id').all() as CandidateRow[]));
  }

  private candidateSync(id: number): CandidateView | undefined {
    return this.guard(() => {
      const row = this.db.prepare('SELECT * FROM candidates WHERE id = ?').get(id) as CandidateRow | undefined;
      return row ? this.views([row])[0] : undefined;
    });
  }

  private evaluationOfSync(hash: string): EvaluationRecord | undefined {
    return this.guard(() => {
      const row = this.db.prepare('SELECT * FROM evaluations WHERE hash = ?').get(hash) as EvaluationRow | undefined;
      return row ? evaluationOfRow(row, this.parse) : undefined;
    });
  }

  private addEvaluationSync(e: NewEvaluation): EvaluationRecord {
    return this.guard(() => {
      if (this.evaluationOfSync(e.hash)) throw new StoreError(`program ${e.hash} has already been evaluated`);
      const finishedAt = now();
      const info = this.db
        .prepare(
          `INSERT INTO evaluations (hash, candidate, status, fitness, hurdle, reason, curve, at_hurdles, steps, tokens, train_seconds, wall_seconds, budget, backend, machine, environment, parameters, behaviour, same_as, finished_at)
           VALUES (@hash, @candidate, @status, @fitness, @hurdle, @reason, @curve, @atHurdles, @steps, @tokens, @trainSeconds, @wallSeconds, @budget, @backend, @machine, @environment, @parameters, @behaviour, @sameAs, @finishedAt)`,
        )
        .run(evaluationParams(e, finishedAt));
      return { ...e, environment: e.environment ?? null, behaviour: e.behaviour ?? null, sameAs: e.sameAs ?? null, id: Number(info.lastInsertRowid), finishedAt };
    });
  }

  private evaluationsSync(): EvaluationRecord[] {
    return this.guard(() => (this.db.prepare('SELECT * FROM evaluations ORDER BY id').all() as EvaluationRow[]).map((r) => evaluationOfRow(r, this.parse)));
  }

  // StudyStore: better-sqlite3 is synchronous; the interface is async for stores behind a network

  async config(): Promise<Record<string, unknown> | undefined> {
    return this.configSync();
  }

  async createStudy(config: Record<string, unknown>): Promise<void> {
    this.createStudySync(config);
  }

  async updateStudy(config: Record<string, unknown>): Promise<void> {
    this.updateStudySync(config);
  }

  async advance(step: { told: number; candidates: CandidateRecord[]; strategyState: unknown }): Promise<void> {
    this.advanceSync(step);
  }

  async latestSnapshot(): Promise<{ told: number; state: unknown } | undefined> {
    return this.latestSnapshotSync();
  }

  async candidates(): Promise<CandidateView[]> {
    return this.candidatesSync();
  }

  async changeToken(): Promise<string> {
    return this.guard(() => {
      const r = this.db
        .prepare(
          `SELECT (SELECT count(*) FROM candidates) AS candidates, (SELECT count(*) FROM evaluations) AS evaluations, (SELECT coalesce(max(id), 0) FROM evaluations) AS lastEvaluation,
                  (SELECT coalesce(max(told), 0) FROM strategy_snapshots) AS told, (SELECT coalesce(config, '') FROM study) AS config${hasTable(this.version, 'workers') ? ', (SELECT count(*) FROM workers) AS workers' : ''}${hasTable(this.version, 'retrains') ? ', (SELECT count(*) FROM retrain_runs) AS retrainRuns, (SELECT count(*) FROM retrains) AS retrains' : ''}`,
        )
        .get() as Record<string, string | number>;
      return JSON.stringify(r);
    });
  }

  async candidate(id: number): Promise<CandidateView | undefined> {
    return this.candidateSync(id);
  }

  async evaluationOf(hash: string): Promise<EvaluationRecord | undefined> {
    return this.evaluationOfSync(hash);
  }

  async addEvaluation(e: NewEvaluation): Promise<EvaluationRecord> {
    return this.addEvaluationSync(e);
  }

  async evaluations(): Promise<EvaluationRecord[]> {
    return this.evaluationsSync();
  }

  async dump(): Promise<StudyDump> {
    return this.guard(() => {
      const study = this.db.prepare('SELECT config, created_at FROM study WHERE id = 1').get() as { config: string; created_at: string } | undefined;
      if (!study) throw new StoreError(`${this.location} holds no study`);
      const snapshots = this.db.prepare('SELECT told, state, created_at FROM strategy_snapshots ORDER BY told').all() as Array<{ told: number; state: string; created_at: string }>;
      return {
        format: 'primer-study-dump',
        version: 1,
        config: this.parse('study configuration', study.config) as Record<string, unknown>,
        createdAt: study.created_at,
        candidates: (this.db.prepare('SELECT * FROM candidates ORDER BY id').all() as CandidateRow[]).map((r) => candidateOfRow(this.location, r as unknown as Record<string, unknown>, this.parse)),
        evaluations: this.evaluationsSync(),
        snapshots: snapshots.map((r) => ({ told: r.told, state: this.parse(`strategy state after ${r.told} candidates`, r.state), createdAt: r.created_at })),
        workers: this.workersSync(),
        retrains: this.retrainsSync(),
        retrainRuns: this.retrainRunsSync(),
        weights: this.weightsDumpSync(),
      };
    });
  }

  private retrainsSync(): RetrainPlan[] {
    if (!hasTable(this.version, 'retrains')) return [];
    return this.guard(() =>
      (this.db.prepare('SELECT * FROM retrains ORDER BY id').all() as Array<{ id: number; plan: string; created_at: string }>).map((r) => ({
        ...(this.parse(`plan of retraining ${r.id}`, r.plan) as Omit<RetrainPlan, 'id' | 'createdAt'>),
        id: r.id,
        createdAt: r.created_at,
      })),
    );
  }

  private retrainRunsSync(retrain?: number): RetrainRun[] {
    if (!hasTable(this.version, 'retrains')) return [];
    return this.guard(() => {
      const rows = (
        retrain === undefined
          ? this.db.prepare('SELECT * FROM retrain_runs ORDER BY retrain, program, seed').all()
          : this.db.prepare('SELECT * FROM retrain_runs WHERE retrain = ? ORDER BY program, seed').all(retrain)
      ) as Array<{ retrain: number; program: number; seed: number; run: string; finished_at: string }>;
      return rows.map((r) => runOfRow(r, this.parse));
    });
  }

  async retrains(): Promise<RetrainPlan[]> {
    return this.retrainsSync();
  }

  async createRetrain(plan: NewRetrainPlan): Promise<RetrainPlan> {
    return this.guard(() => {
      if (!this.configSync()) throw new StoreError(`${this.location} holds no study to retrain`);
      const createdAt = now();
      const info = this.db.prepare('INSERT INTO retrains (plan, created_at) VALUES (?, ?)').run(JSON.stringify(planBody(plan)), createdAt);
      return { ...plan, id: Number(info.lastInsertRowid), createdAt };
    });
  }

  async retrainRuns(retrain?: number): Promise<RetrainRun[]> {
    return this.retrainRunsSync(retrain);
  }

  async deleteRetrain(id: number): Promise<number> {
    return this.guard(() =>
      this.db.transaction(() => {
        if (!hasTable(this.version, 'retrains') || !this.db.prepare('SELECT 1 FROM retrains WHERE id = ?').get(id)) throw new StoreError(`${this.location} has no retraining ${id}`);
        const runs = this.db.prepare('DELETE FROM retrain_runs WHERE retrain = ?').run(id).changes;
        this.db.prepare('DELETE FROM retrains WHERE id = ?').run(id);
        // runs other retrainings reused from it stay (they are copies), their provenance cleared: a
        // later retraining may get this id again (SQLite reuses the largest), and must not inherit them
        const update = this.db.prepare('UPDATE retrain_runs SET run = ? WHERE retrain = ? AND program = ? AND seed = ?');
        for (const r of this.db.prepare("SELECT retrain, program, seed, run FROM retrain_runs WHERE run LIKE '%reusedFrom%'").all() as Array<{ retrain: number; program: number; seed: number; run: string }>) {
          const body = JSON.parse(r.run) as { reusedFrom?: { retrain: number; study?: string } | null };
          // (a run reused from another study's retraining of that number is not this one's)
          if (body.reusedFrom?.retrain === id && body.reusedFrom.study === undefined) update.run(JSON.stringify({ ...body, reusedFrom: null }), r.retrain, r.program, r.seed);
        }
        return runs;
      })(),
    );
  }

  async putWeights(hash: string, data: Uint8Array): Promise<void> {
    this.guard(() => {
      if (!hasTable(this.version, 'weights')) throw new StoreError(`${this.location} is at schema ${this.version}: open it for writing once to keep weights`);
      this.db.prepare('INSERT INTO weights (hash, data, created_at) VALUES (?, ?, ?) ON CONFLICT (hash) DO UPDATE SET data = excluded.data, created_at = excluded.created_at').run(hash, Buffer.from(data.buffer, data.byteOffset, data.byteLength), now());
    });
  }

  async weightsOf(hash: string): Promise<Uint8Array | undefined> {
    if (!hasTable(this.version, 'weights')) return undefined;
    return this.guard(() => {
      const row = this.db.prepare('SELECT data FROM weights WHERE hash = ?').get(hash) as { data: Buffer } | undefined;
      return row ? new Uint8Array(row.data) : undefined;
    });
  }

  async deleteWeights(hash: string): Promise<void> {
    if (!hasTable(this.version, 'weights')) return;
    this.guard(() => this.db.prepare('DELETE FROM weights WHERE hash = ?').run(hash));
  }

  async weightHashes(): Promise<string[]> {
    if (!hasTable(this.version, 'weights')) return [];
    return this.guard(() => (this.db.prepare('SELECT hash FROM weights ORDER BY hash').all() as Array<{ hash: string }>).map((r) => r.hash));
  }

  private weightsDumpSync(): StudyDump['weights'] {
    if (!hasTable(this.version, 'weights')) return [];
    return (this.db.prepare('SELECT hash, data, created_at FROM weights ORDER BY hash').all() as Array<{ hash: string; data: Buffer; created_at: string }>).map((r) => ({ hash: r.hash, data: r.data.toString('base64'), createdAt: r.created_at }));
  }

  async deleteStudy(): Promise<void> {
    if (!this.controllerLock && this.location !== ':memory:') throw new StoreError(`${this.location}: deleting a study needs its controller lock (lockController)`);
    this.guard(() =>
      this.db.transaction(() => {
        const tables = (this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as Array<{ name: string }>).map((t) => t.name);
        // children before parents (foreign keys)
        const order = ['weights', 'retrain_runs', 'retrains', 'workers', 'strategy_snapshots', 'evaluations', 'candidates', 'study'];
        for (const t of [...order.filter((x) => tables.includes(x)), ...tables.filter((x) => !order.includes(x))]) this.db.exec(`DROP TABLE "${t.replace(/"/g, '""')}"`);
        // the file is an empty database again: a new open builds the schema from the start
        this.db.pragma('user_version = 0');
      })(),
    );
  }

  async addRetrainRun(run: NewRetrainRun): Promise<RetrainRun> {
    return this.guard(() => {
      const finishedAt = now();
      const info = this.db
        .prepare('INSERT INTO retrain_runs (retrain, program, seed, run, finished_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING')
        .run(run.retrain, run.program, run.seed, JSON.stringify(runBody(run)), finishedAt);
      if (info.changes === 0) throw new StoreError(`retraining ${run.retrain} already has a run of program ${run.program} with seed ${run.seed}`);
      return { ...run, finishedAt };
    });
  }

  private workersSync(): WorkerRecord[] {
    if (!hasTable(this.version, 'workers')) return [];
    return this.guard(() =>
      (this.db.prepare('SELECT * FROM workers ORDER BY rowid').all() as Array<{ id: string; environment: string; plugins: string; allow_mixed: number; started_at: string }>).map((r) => ({
        id: r.id,
        environment: this.parse(`environment of worker ${r.id}`, r.environment),
        plugins: this.parse(`plugins of worker ${r.id}`, r.plugins),
        allowMixedHardware: r.allow_mixed === 1,
        startedAt: r.started_at,
      })),
    );
  }

  async registerWorker(w: WorkerRecord): Promise<void> {
    this.guard(() => {
      this.db.prepare('INSERT INTO workers (id, environment, plugins, allow_mixed, started_at) VALUES (?, ?, ?, ?, ?)').run(w.id, JSON.stringify(w.environment), JSON.stringify(w.plugins), w.allowMixedHardware ? 1 : 0, w.startedAt);
    });
  }

  async workers(): Promise<WorkerRecord[]> {
    return this.workersSync();
  }

  async restore(d: StudyDump): Promise<void> {
    this.guard(() => {
      this.db.transaction(() => {
        if (this.configSync()) throw new StoreError(`${this.location} already holds a study`);
        this.db.prepare('INSERT INTO study (id, config, created_at) VALUES (1, ?, ?)').run(JSON.stringify(d.config), d.createdAt);
        const cand = this.db.prepare('INSERT INTO candidates (id, hash, parent, mutations, dna, hurdles, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)');
        for (const c of d.candidates) cand.run(c.id, c.hash, c.parent, JSON.stringify(c.mutations), JSON.stringify(c.dna), JSON.stringify(c.hurdles), c.createdAt);
        const ev = this.db.prepare(
          `INSERT INTO evaluations (id, hash, candidate, status, fitness, hurdle, reason, curve, at_hurdles, steps, tokens, train_seconds, wall_seconds, budget, backend, machine, environment, parameters, behaviour, same_as, finished_at)
           VALUES (@id, @hash, @candidate, @status, @fitness, @hurdle, @reason, @curve, @atHurdles, @steps, @tokens, @trainSeconds, @wallSeconds, @budget, @backend, @machine, @environment, @parameters, @behaviour, @sameAs, @finishedAt)`,
        );
        for (const e of d.evaluations) ev.run(evaluationParams(e, e.finishedAt));
        const plan = this.db.prepare('INSERT INTO retrains (id, plan, created_at) VALUES (?, ?, ?)');
        for (const p of d.retrains ?? []) plan.run(p.id, JSON.stringify(planBody(p)), p.createdAt);
        const run = this.db.prepare('INSERT INTO retrain_runs (retrain, program, seed, run, finished_at) VALUES (?, ?, ?, ?, ?)');
        for (const r of d.retrainRuns ?? []) run.run(r.retrain, r.program, r.seed, JSON.stringify(runBody(r)), r.finishedAt);
        const wk = this.db.prepare('INSERT INTO workers (id, environment, plugins, allow_mixed, started_at) VALUES (?, ?, ?, ?, ?)');
        for (const w of d.workers ?? []) wk.run(w.id, JSON.stringify(w.environment), JSON.stringify(w.plugins), w.allowMixedHardware ? 1 : 0, w.startedAt);
        const snap = this.db.prepare('INSERT INTO strategy_snapshots (told, state, created_at) VALUES (?, ?, ?)');
        for (const x of d.snapshots) snap.run(x.told, JSON.stringify(x.state), x.createdAt);
        const wt = this.db.prepare('INSERT INTO weights (hash, data, created_at) VALUES (?, ?, ?)');
        for (const x of d.weights ?? []) wt.run(x.hash, Buffer.from(x.data, 'base64'), x.createdAt);
      })();
    });
  }

  /**
   * Closes the study. A writer leaves it as one self-contained file (rollback journal mode,
   * the log folded in), so it can be copied alone and read from a folder the reader cannot
   * write; the next writer turns write-ahead logging on again. While another connection has
   * it open, it stays in WAL mode.
   */
  private controllerLock?: Database.Database;

  async lockController(): Promise<{ release(): Promise<void> }> {
    if (this.location === ':memory:' || this.controllerLock) return { release: async () => {} };
    // an exclusive transaction on a file beside the study, held open: the operating system lets go of it when the process ends
    const lock = new Database(`${this.location}-lock`);
    try {
      lock.pragma('busy_timeout = 0');
      lock.exec('BEGIN EXCLUSIVE');
    } catch (e) {
      lock.close();
      if (/SQLITE_BUSY|database is locked/i.test(`${(e as { code?: string }).code} ${(e as Error).message}`)) {
        throw new StoreError(`${this.location} is in use by another primer search or study retrain (one controller at a time): wait for it to end, or stop it, then run this again`);
      }
      throw explain(this.location, e);
    }
    this.controllerLock = lock;
    return {
      release: async () => {
        if (this.controllerLock === lock) this.controllerLock = undefined;
        // the file stays (an empty SQLite file; the lock was the process's): removing it would let a
        // process that opened it before the removal lock it while a third locks a new file
        if (lock.open) lock.close();
      },
    };
  }

  async close(): Promise<void> {
    this.closeSync();
  }

  /** `close`, for a caller that cannot wait (a process exiting). */
  closeSync(): void {
    if (this.controllerLock?.open) this.controllerLock.close();
    this.controllerLock = undefined;
    if (!this.db.readonly && this.db.open && this.location !== ':memory:') {
      try {
        this.db.pragma('busy_timeout = 0');
        this.db.pragma('journal_mode = DELETE');
      } catch {
        // a reader has it open: it stays in WAL mode, which is as durable
      }
    }
    this.db.close();
  }
}

const now = () => new Date().toISOString();

/** What a plan's row keeps as JSON (its id and time are columns). */
export const planBody = (p: NewRetrainPlan): NewRetrainPlan => ({
  top: p.top,
  ...(p.sample === undefined ? {} : { sample: p.sample }),
  ...(p.front ? { front: true } : {}),
  budget: p.budget,
  seeds: p.seeds,
  references: p.references ?? [],
  settings: p.settings,
  programs: p.programs,
});

/** A retrain_runs row as a run (its JSON body and its key columns), in either store. */
export function runOfRow(r: { retrain: number; program: number; seed: number; run: string; finished_at: string }, parse: (what: string, text: string) => unknown): RetrainRun {
  const body = parse(`run of retraining ${r.retrain}, program ${r.program}, seed ${r.seed}`, r.run) as Omit<RetrainRun, 'retrain' | 'program' | 'seed' | 'finishedAt'>;
  return { ...body, retrain: r.retrain, program: r.program, seed: r.seed, finishedAt: r.finished_at };
}

/** What a run's row keeps as JSON (its key and time are columns). */
export function runBody(r: NewRetrainRun): Omit<RetrainRun, 'retrain' | 'program' | 'seed' | 'finishedAt'> {
  const { retrain: _r, program: _p, seed: _s, finishedAt: _f, ...body } = r as RetrainRun;
  return body;
}
