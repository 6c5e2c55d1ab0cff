/**
 * Every error the project throws on purpose is a `PrimerError` with a stable `code`, so
 * callers (the CLI, the search loop) can tell a bad input from a bug without parsing text.
 */
export class PrimerError extends Error {
  readonly code: string;
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
  return e instanceof PrimerError;
}
