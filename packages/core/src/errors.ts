/**
 * Every error the project throws on purpose is a `PrimerError` with a stable `code`, so
 * callers (the CLI, the search loop) can tell a bad input from a bug without parsing text.
 */
const MARKER = Symbol.for('primer-search.error');

export class PrimerError extends Error {
  readonly code: string;
  /** Marks our errors across duplicate copies of this package (which plugins bring): see `isPrimerError`. */
  readonly [MARKER] = true;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

export class UnknownKeyError extends PrimerError {
  readonly registry: string;
  readonly key: string;
  readonly suggestions: readonly string[];
  constructor(registry: string, key: string, suggestions: readonly string[], known: readonly string[]) {
    const hint =
      suggestions.length > 0
        ? ` Did you mean ${suggestions.map((s) => `"${s}"`).join(' or ')}?`
        : known.length > 0
          ? ` Known: ${known.slice(0, 12).join(', ')}${known.length > 12 ? `, … (${known.length} in all)` : ''}.`
          : ' Nothing is registered there yet.';
    super('UNKNOWN_KEY', `Unknown ${registry} "${key}".${hint}`);
    this.registry = registry;
    this.key = key;
    this.suggestions = suggestions;
  }
}

export class DuplicateKeyError extends PrimerError {
  readonly registry: string;
  readonly key: string;
  constructor(registry: string, key: string) {
    super(
      'DUPLICATE_KEY',
      `${registry} "${key}" is already registered. Pass { override: true } to replace it on purpose.`,
    );
    this.registry = registry;
    this.key = key;
  }
}

export class InvalidEntryError extends PrimerError {
  readonly registry: string;
  readonly key: string;
  constructor(registry: string, key: string, reason: string) {
    super('INVALID_ENTRY', `Cannot register ${registry} "${key}": ${reason}`);
    this.registry = registry;
    this.key = key;
  }
}

export function isPrimerError(e: unknown): e is PrimerError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[MARKER] === true;
}

/**
 * Who a failure to evaluate a candidate belongs to. A `program` failure is that program's
 * result (it would fail again anywhere): stored, and the strategy never proposes the program
 * again. An `environment` failure says nothing about the program (a dataset, tokenizer,
 * backend, plugin, thread, disk or database that is missing or broken): never stored as the
 * program's result.
 */
export type FailureBlame = 'program' | 'environment';

/** PrimerError codes that mean the program itself cannot be trained. */
export const PROGRAM_ERROR_CODES: ReadonlySet<string> = new Set(['DNA_INVALID', 'DNA_PARSE', 'MODEL_TOO_LARGE']);

/** Node's system error codes that point at the machine (disk, permissions, files, resources). */
const ENVIRONMENT_SYSTEM_CODES = new Set(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS', 'ENOENT', 'EMFILE', 'ENFILE', 'EIO', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EAGAIN']);

/**
 * Whose fault a thrown error is, for a search. Our errors are environment failures unless
 * their code says the program is at fault; running out of memory is the program's (it asked
 * for too much); a system error about disks, files or connections is the environment's; any
 * other exception (a primitive that throws on these inputs) is the program's.
 */
export function blameOf(e: unknown): FailureBlame {
  if (isPrimerError(e)) return PROGRAM_ERROR_CODES.has(e.code) ? 'program' : 'environment';
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && ENVIRONMENT_SYSTEM_CODES.has(code)) return 'environment';
  return 'program';
}
