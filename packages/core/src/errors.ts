const MARKER = Symbol.for('primer-search.error');

/**
 * A string the user gave, fit to put in a message: in double quotes, control and
 * direction-changing characters written as \\u escapes (so a NUL or U+202E cannot hide or
 * reorder the text around it), and cut to `max` characters with the full length said.
 */
export function quote(text: unknown, max = 60): string {
  const s = String(text);
  return `"${escapeText(s, max, true)}"${s.length > max ? ` (${s.length.toLocaleString('en-US')} characters)` : ''}`;
}

/**
 * The characters a terminal acts on or hides, as a regular-expression class (for the `u` flag):
 * the control characters (C0, DEL, C1), the format characters (direction overrides and isolates,
 * zero-width and invisible characters, soft hyphen, the tag characters of plane 14) and the line
 * and paragraph separators. One definition for the messages here and what the CLI prints.
 */
export const UNSAFE_CHARACTERS = '\\p{Cc}\\p{Cf}\\u2028\\u2029';

/** `c` as \u escapes, one per UTF-16 unit (a character above U+FFFF as its surrogate pair, as JSON writes it). */
export const unicodeEscape = (c: string): string => Array.from({ length: c.length }, (_, k) => `\\u${c.charCodeAt(k).toString(16).padStart(4, '0')}`).join('');

const MESSAGE_UNSAFE = new RegExp(`[${UNSAFE_CHARACTERS}"\\\\]`, 'gu');

/** `text` with control and direction characters escaped (and quotes, with `quotes`), cut to `max` characters with an ellipsis. */
export function escapeText(text: string, max = 60, quotes = false): string {
  const cut = text.length > max ? text.slice(0, max) : text;
  const escaped = cut.replace(MESSAGE_UNSAFE, (c) => ((c === '"' || c === '\\') && !quotes ? c : c === '"' ? '\\"' : c === '\\' ? '\\\\' : unicodeEscape(c)));
  return `${escaped}${text.length > max ? '…' : ''}`;
}

/**
 * Every error the project throws on purpose is a `PrimerError` with a stable `code`, so
 * callers (the CLI, the search loop) can tell a bad input from a bug without parsing text.
 */
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
        ? ` Did you mean ${suggestions.map((s) => quote(s)).join(' or ')}?`
        : known.length > 0
          ? ` Known: ${known.slice(0, 12).join(', ')}${known.length > 12 ? `, … (${known.length} in all)` : ''}.`
          : ' Nothing is registered there yet.';
    super('UNKNOWN_KEY', `Unknown ${registry} ${quote(key)}.${hint}`);
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
      `${registry} ${quote(key)} is already registered. Pass { override: true } to replace it on purpose.`,
    );
    this.registry = registry;
    this.key = key;
  }
}

export class InvalidEntryError extends PrimerError {
  readonly registry: string;
  readonly key: string;
  constructor(registry: string, key: string, reason: string) {
    super('INVALID_ENTRY', `Cannot register ${registry} ${quote(key)}: ${reason}`);
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
export const PROGRAM_ERROR_CODES: ReadonlySet<string> = new Set(['DNA_INVALID', 'DNA_PARSE', 'MODEL_TOO_LARGE', 'OUT_OF_MEMORY', 'DEVICE_REFUSED']);

/** What running out of memory says: V8's heap, an allocation refused, a WebAssembly heap that could not grow or was overrun. */
const OUT_OF_MEMORY_MESSAGE = /out of memory|memory access out of bounds|Array buffer allocation failed|could not allocate|Aborted\(|Cannot enlarge memory/i;

/** Whether a thrown error is running out of memory (the program's failure: it asked for too much), in any of its forms. */
export function isOutOfMemory(e: unknown): boolean {
  if (isPrimerError(e)) return e.code === 'OUT_OF_MEMORY';
  // by what it says, not by its class: a RangeError or a WebAssembly RuntimeError is as often a bug (an invalid length, an out-of-range read)
  const message = e instanceof Error ? e.message : String(e);
  return OUT_OF_MEMORY_MESSAGE.test(message);
}

/** Node's system error codes that point at the machine (disk, permissions, files, resources). */
const ENVIRONMENT_SYSTEM_CODES = new Set(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS', 'ENOENT', 'ENOTDIR', 'EISDIR', 'ENAMETOOLONG', 'ELOOP', 'EXDEV', 'EBUSY', 'ESTALE', 'EMFILE', 'ENFILE', 'EIO', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EAGAIN']);

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
