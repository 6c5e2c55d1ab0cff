/**
 * The study schema, once for both stores: each version's description, whether it only adds
 * (a reader of an older study can read it as it is), what it adds (the tables and columns reads
 * are gated on), and its SQL in each dialect. The SQLite and PostgreSQL stores migrate, refuse and
 * gate their reads from this list alone, so the two cannot drift.
 */
import { StoreError } from './errors.js';

export interface SchemaVersion {
  version: number;
  description: string;
  /** A reader can read a study without it: it only adds tables or nullable columns. */
  additive: boolean;
  /** What it adds, for gating reads of an older study. */
  adds: { tables: string[]; columns: Record<string, string[]> };
  sql: { sqlite: string; postgres: string };
}

export const SCHEMA: readonly SchemaVersion[] = [
  {
    version: 1,
    description: 'study, candidates, evaluations, strategy snapshots',
    additive: false,
    adds: { tables: ['study', 'candidates', 'evaluations', 'strategy_snapshots'], columns: {} },
    sql: {
      sqlite: `
      CREATE TABLE study (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        config TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE TABLE candidates (
        id INTEGER PRIMARY KEY,
        hash TEXT NOT NULL,
        parent INTEGER REFERENCES candidates(id),
        mutations TEXT NOT NULL,
        dna TEXT NOT NULL,
        hurdles TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE INDEX candidates_hash ON candidates(hash);
      CREATE TABLE evaluations (
        id INTEGER PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        candidate INTEGER NOT NULL REFERENCES candidates(id),
        status TEXT NOT NULL CHECK (status IN ('completed', 'hurdle', 'failed')),
        fitness REAL,
        hurdle INTEGER,
        reason TEXT,
        curve TEXT NOT NULL,
        at_hurdles TEXT NOT NULL,
        steps INTEGER NOT NULL,
        tokens INTEGER NOT NULL,
        train_seconds REAL NOT NULL,
        wall_seconds REAL NOT NULL,
        budget TEXT NOT NULL,
        backend TEXT,
        machine TEXT NOT NULL,
        parameters INTEGER,
        finished_at TEXT NOT NULL
      );
      CREATE TABLE strategy_snapshots (
        told INTEGER PRIMARY KEY,
        state TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
    `,
      postgres: `
      CREATE TABLE study (id INTEGER PRIMARY KEY CHECK (id = 1), config TEXT NOT NULL, created_at TEXT NOT NULL);
      CREATE TABLE candidates (
        id INTEGER PRIMARY KEY, hash TEXT NOT NULL, parent INTEGER REFERENCES candidates(id),
        mutations TEXT NOT NULL, dna TEXT NOT NULL, hurdles TEXT NOT NULL, created_at TEXT NOT NULL
      );
      CREATE INDEX candidates_hash ON candidates(hash);
      CREATE TABLE evaluations (
        id SERIAL PRIMARY KEY, hash TEXT NOT NULL UNIQUE, candidate INTEGER NOT NULL REFERENCES candidates(id),
        status TEXT NOT NULL CHECK (status IN ('completed', 'hurdle', 'failed')),
        fitness DOUBLE PRECISION, hurdle INTEGER, reason TEXT, curve TEXT NOT NULL, at_hurdles TEXT NOT NULL,
        steps BIGINT NOT NULL, tokens BIGINT NOT NULL, train_seconds DOUBLE PRECISION NOT NULL,
        wall_seconds DOUBLE PRECISION NOT NULL, budget TEXT NOT NULL, backend TEXT, machine TEXT NOT NULL,
        parameters BIGINT, finished_at TEXT NOT NULL
      );
      CREATE TABLE strategy_snapshots (told INTEGER PRIMARY KEY, state TEXT NOT NULL, created_at TEXT NOT NULL);
    `,
    },
  },
  {
    version: 2,
    description: 'where each evaluation was trained; the workers that joined the study',
    additive: true,
    adds: { tables: ['workers'], columns: { evaluations: ['environment'] } },
    sql: {
      sqlite: `
      ALTER TABLE evaluations ADD COLUMN environment TEXT;
      CREATE TABLE workers (
        id TEXT PRIMARY KEY,
        environment TEXT NOT NULL,
        plugins TEXT NOT NULL,
        allow_mixed INTEGER NOT NULL,
        started_at TEXT NOT NULL
      );
    `,
      postgres: `
      ALTER TABLE evaluations ADD COLUMN environment TEXT;
      CREATE TABLE workers (seq SERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, environment TEXT NOT NULL, plugins TEXT NOT NULL, allow_mixed BOOLEAN NOT NULL, started_at TEXT NOT NULL);
    `,
    },
  },
  {
    version: 3,
    description: 'retrainings of the best programs with several seeds; behaviours of evaluated programs',
    additive: true,
    adds: { tables: ['retrains', 'retrain_runs'], columns: { evaluations: ['behaviour', 'same_as'] } },
    sql: {
      sqlite: `
      ALTER TABLE evaluations ADD COLUMN behaviour TEXT;
      ALTER TABLE evaluations ADD COLUMN same_as TEXT;
      CREATE INDEX evaluations_behaviour ON evaluations(behaviour);
      CREATE TABLE retrains (
        id INTEGER PRIMARY KEY,
        plan TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE TABLE retrain_runs (
        retrain INTEGER NOT NULL REFERENCES retrains(id),
        program INTEGER NOT NULL,
        seed INTEGER NOT NULL,
        run TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        PRIMARY KEY (retrain, program, seed)
      );
    `,
      postgres: `
      ALTER TABLE evaluations ADD COLUMN behaviour TEXT;
      ALTER TABLE evaluations ADD COLUMN same_as TEXT;
      CREATE INDEX evaluations_behaviour ON evaluations(behaviour);
      CREATE TABLE retrains (id SERIAL PRIMARY KEY, plan TEXT NOT NULL, created_at TEXT NOT NULL);
      CREATE TABLE retrain_runs (
        retrain INTEGER NOT NULL REFERENCES retrains(id), program INTEGER NOT NULL, seed INTEGER NOT NULL,
        run TEXT NOT NULL, finished_at TEXT NOT NULL, PRIMARY KEY (retrain, program, seed)
      );
    `,
    },
  },
  {
    version: 4,
    description: 'the trained weights of the best candidates (primer search --keep-weights)',
    additive: true,
    adds: { tables: ['weights'], columns: {} },
    sql: {
      sqlite: `
      CREATE TABLE weights (hash TEXT PRIMARY KEY, data BLOB NOT NULL, created_at TEXT NOT NULL);
    `,
      postgres: `
      CREATE TABLE weights (hash TEXT PRIMARY KEY, data BYTEA NOT NULL, created_at TEXT NOT NULL);
    `,
    },
  },
];

/** The schema this version of primer-search writes. */
export const SCHEMA_VERSION = SCHEMA.at(-1)!.version;

/** Whether a study at schema `version` has `table`. */
export function hasTable(version: number, table: string): boolean {
  return SCHEMA.some((v) => v.version <= version && v.adds.tables.includes(table));
}

/**
 * Whether a study at schema `current` can be opened, the same rule for both stores: a newer one
 * is refused; a reader reads an older one as it is when every later version only adds (its reads
 * gated by `hasTable`); a writer upgrades it. Returns whether migrations are to run.
 */
export function schemaGate(location: string, current: number, readonly: boolean, upgrade: string): 'current' | 'read-older' | 'migrate' {
  if (current > SCHEMA_VERSION) throw new StoreError(`${location} was written by a newer primer-search (schema ${current}; this one knows up to ${SCHEMA_VERSION})`);
  if (current === SCHEMA_VERSION) return 'current';
  if (!readonly) return 'migrate';
  if (current > 0 && SCHEMA.filter((v) => v.version > current).every((v) => v.additive)) return 'read-older';
  throw new StoreError(current === 0 ? `${location} holds no study` : `${location} needs a schema upgrade (${current} -> ${SCHEMA_VERSION}); open it for writing once (${upgrade})`);
}
