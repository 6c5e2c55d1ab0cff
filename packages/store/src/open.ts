import { fileURLToPath } from 'node:url';
import { PostgresStudyStore } from './postgres.js';
import { maskUrl } from './secrets.js';
import { SqliteStudyStore, StoreError } from './sqlite.js';
import type { StudyStore } from './types.js';

export type StoreKind = 'sqlite' | 'postgres';

/**
 * Where a study lives, from what the user wrote (as Optuna's storage URLs): a path or
 * `sqlite:///path` (a SQLite file), or `postgres://user@host:5432/db?schema=name` (a schema in
 * a PostgreSQL database). `display` is safe to print (the password masked).
 */
export function parseStudyLocation(location: string): { kind: StoreKind; target: string; display: string } {
  if (/^postgres(ql)?:\/\//i.test(location)) return { kind: 'postgres', target: location, display: maskUrl(location) };
  if (/^sqlite:/i.test(location)) {
    // sqlite:///abs/path (as SQLAlchemy and Optuna write it), sqlite://rel/path or file URLs
    const m = /^sqlite:\/\/(\/?.*)$/i.exec(location);
    if (!m || m[1] === '' || m[1] === '/') throw new StoreError(`${location}: write sqlite:///path/to/study.sqlite (or just the path)`);
    const path = m[1]!.startsWith('file:') ? fileURLToPath(m[1]!) : m[1]!;
    return { kind: 'sqlite', target: path, display: path };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    throw new StoreError(`${maskUrl(location)}: not a study location this version knows: give a file path, sqlite:///path or postgres://user@host:5432/database`);
  }
  return { kind: 'sqlite', target: location, display: location };
}

/**
 * Opens the study at `location` (see `parseStudyLocation`). `snapshot`: a one-time reader (study
 * show, a report) of a study file that is not being written reads an image of it and leaves
 * nothing beside it (a live reader such as the dashboard reads the file in place).
 */
export async function openStudyStore(location: string, options: { readonly?: boolean; mustExist?: boolean; snapshot?: boolean } = {}): Promise<StudyStore> {
  const where = parseStudyLocation(location);
  const { snapshot: _snapshot, ...rest } = options;
  return where.kind === 'postgres' ? PostgresStudyStore.open(where.target, rest) : SqliteStudyStore.open(where.target, options);
}
