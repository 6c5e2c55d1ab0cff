import { distance } from 'fastest-levenshtein';
import { DuplicateKeyError, InvalidEntryError, UnknownKeyError } from './errors.js';

/**
 * A key of a registry: the known names autocomplete, any other string still compiles
 * (so plugins can register names we have never heard of).
 */
export type RegistryKey<Known extends string> = Known | (string & {});

export interface RegisterOptions {
  /** Replace an existing entry of the same name instead of failing. */
  override?: boolean;
}

export interface Registry<Known extends string, Entry> {
  /** What the registry holds, in words, used in every error message ("primitive", "search strategy"). */
  readonly kind: string;
  register(name: RegistryKey<Known>, entry: Entry, options?: RegisterOptions): void;
  get(name: RegistryKey<Known>): Entry;
  has(name: RegistryKey<Known>): boolean;
  /** Names in registration order. */
  names(): string[];
  /** Entries in registration order. */
  list(): Array<{ name: string; entry: Entry }>;
  /** Remove one entry; returns whether it was there. Meant for tests and plugin teardown. */
  unregister(name: RegistryKey<Known>): boolean;
  /** Names close to `name` (edit distance or case), best first; used in error messages. */
  suggest(name: string): string[];
}

export interface RegistryOptions<Entry> {
  /** Called on every registration; throw (or return a reason string) to refuse the entry. */
  validate?: (name: string, entry: Entry) => string | undefined | void;
}

/**
 * The names of `known` closest to `name` (a typo, another case, a part of the name): the ones at
 * the smallest edit distance within a third of the length, at most three; none when nothing is close.
 */
export function closeMatches(name: string, known: Iterable<string>): string[] {
  // a name this long is no typo of a known one (and the edit distance would be slow)
  if (name.length > 64) return [];
  const lower = name.toLowerCase();
  const scored: Array<{ key: string; d: number }> = [];
  for (const key of known) {
    const kl = key.toLowerCase();
    if (kl === lower) {
      scored.push({ key, d: 0 });
      continue;
    }
    const d = distance(lower, kl);
    const limit = Math.max(1, Math.floor(Math.max(name.length, key.length) / 3));
    if (d <= limit || (lower.length >= 3 && kl.includes(lower))) scored.push({ key, d });
  }
  scored.sort((a, b) => a.d - b.d || a.key.localeCompare(b.key));
  // Only the closest: "CONV1X1" suggests CONV_1X1, not every CONV_*.
  const best = scored[0]?.d ?? 0;
  return scored.filter((s) => s.d === best).slice(0, 3).map((s) => s.key);
}

/**
 * The one registry factory behind every extension point (primitives, search strategies,
 * datasets, tokenizers, backends): plain config objects in, duplicate names refused unless
 * overridden, unknown names answered with the closest known ones.
 */
export function createRegistry<Known extends string, Entry>(
  kind: string,
  options: RegistryOptions<Entry> = {},
): Registry<Known, Entry> {
  const entries = new Map<string, Entry>();

  const suggest = (name: string): string[] => closeMatches(name, entries.keys());

  return {
    kind,
    register(name, entry, opts = {}) {
      if (typeof name !== 'string' || name.length === 0) {
        throw new InvalidEntryError(kind, String(name), 'the name must be a non-empty string');
      }
      if (entries.has(name) && !opts.override) throw new DuplicateKeyError(kind, name);
      if (options.validate) {
        let reason: string | undefined | void;
        try {
          reason = options.validate(name, entry);
        } catch (e) {
          reason = e instanceof Error ? e.message : String(e);
        }
        if (typeof reason === 'string') throw new InvalidEntryError(kind, name, reason);
      }
      entries.set(name, entry);
    },
    get(name) {
      const entry = entries.get(name);
      if (entry === undefined) throw new UnknownKeyError(kind, name, suggest(name), [...entries.keys()]);
      return entry;
    },
    has: (name) => entries.has(name),
    names: () => [...entries.keys()],
    list: () => [...entries].map(([name, entry]) => ({ name, entry })),
    unregister: (name) => entries.delete(name),
    suggest,
  };
}
