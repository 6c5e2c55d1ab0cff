import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Corpus, Split } from './corpus.js';
import { quote } from '@primer-search/core';
import { DataError } from './files.js';
import { tryLock, type LockAttempt } from './lock.js';
import type { Tokenizer } from './tokenizer.js';

export const CACHE_FORMAT = 'primer-token-cache';
export const CACHE_VERSION = 1;

export interface CacheShard {
  /** Token ids, little-endian `dtype`. */
  file: string;
  /** Offsets (uint32, within the shard) where documents start. */
  starts: string;
  tokens: number;
  documents: number;
}

export interface CacheManifest {
  format: typeof CACHE_FORMAT;
  version: typeof CACHE_VERSION;
  dataset: string;
  dataDir: string | null;
  /** The source files as they were when the cache was built (a changed one invalidates it). */
  files: Array<{ path: string; size: number; mtimeMs: number }>;
  tokenizer: { name: string; fingerprint: string; vocabSize: number; endOfDocument: number };
  dtype: 'uint16' | 'uint32';
  /** Documents are concatenated, each followed by the end-of-document id. */
  splits: Partial<Record<Split, { tokens: number; documents: number; shards: CacheShard[] }>>;
  skippedLines: number;
  seconds: number;
  createdAt: string;
}

/** A split's tokens, read by position (from memory or from cache files). */
export interface TokenSource {
  readonly length: number;
  /** `count` tokens from `start`. */
  read(start: number, count: number): Uint32Array;
  /** Positions where documents start, ascending (for the sentence batching mode). */
  documentStarts(): Float64Array;
}

/** A token stream in memory as a TokenSource; documents end with `endOfDocument`. */
export function memorySource(tokens: Uint32Array, endOfDocument: number): TokenSource {
  let starts: Float64Array | undefined;
  return {
    length: tokens.length,
    read: (start, count) => tokens.subarray(start, start + count),
    documentStarts: () => {
      if (!starts) {
        const s = [0];
        for (let i = 0; i < tokens.length - 1; i++) if (tokens[i] === endOfDocument) s.push(i + 1);
        starts = Float64Array.from(s);
      }
      return starts;
    },
  };
}

export interface PrepareProgress {
  split: Split;
  documents: number;
  tokens: number;
  seconds: number;
}

const MANIFEST = 'manifest.json';

/**
 * Tokenizes the given splits of `corpus` once into compact binary shards (uint16 ids when the
 * vocabulary fits, else uint32) plus document offsets, and writes `manifest.json` last: a
 * cache without its manifest is incomplete and is never read.
 */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `fn` holding `${target}.lock` (`tryLock`): a second process building the same cache
 * waits for the first instead of writing beside it. A lock left by a process that died is taken
 * over; one of another machine is waited for.
 */
export async function withCacheLock<T>(target: string, fn: () => Promise<T>, onWait?: () => void): Promise<T> {
  const lock = `${target.replace(/\/+$/, '')}.lock`;
  mkdirSync(dirname(lock), { recursive: true });
  let waited = false;
  let taken: LockAttempt;
  while ('heldBy' in (taken = tryLock(lock))) {
    if ('text' in taken.heldBy) throw new DataError(`${lock} is in the way of the token cache's lock and is not a lock file (${quote(taken.heldBy.text)}): remove it`);
    if (!waited) onWait?.();
    waited = true;
    await sleep(200);
  }
  try {
    return await fn();
  } finally {
    taken.release();
  }
}

/** What to do about a cache whose files changed (never done for the user: a study trained on the old data must not go on with the new). */
const STALE = '; to train on the files as they are now, delete that folder (it is built again) or give another --cache; a study begun on the old files should be continued with them';

/**
 * Builds the cache at `out` unless a complete one is there, holding the lock: of two
 * processes that need the same cache at once, one builds it and the other waits and reads it.
 */
export async function ensureTokenCache(args: Parameters<typeof prepareTokenCache>[0] & { onWait?: () => void }): Promise<CacheManifest> {
  const built = () => existsSync(join(args.out, MANIFEST));
  if (built()) return readCacheManifest(args.out);
  return withCacheLock(args.out, async () => (built() ? readCacheManifest(args.out) : build(args)), args.onWait);
}

/**
 * Tokenizes a corpus into a cache folder. It is built in a temporary folder beside `out` and
 * renamed into place when complete (replacing an older cache there), holding `out`'s lock,
 * so no reader ever sees a half-built cache and two builders never share a folder.
 */
export async function prepareTokenCache(args: Parameters<typeof build>[0]): Promise<CacheManifest> {
  return withCacheLock(args.out, () => build(args));
}

/**
 * A cache path (from a command line, or read from a study's settings) must name a token cache or
 * nothing: anything else there (a file, a folder of other files) is refused, never replaced.
 */
function refuseForeign(path: string): void {
  if (!existsSync(path)) return;
  const st = statSync(path);
  if (!st.isDirectory()) throw new DataError(`${path} is a file, not a token cache: refusing to replace it; give another --cache`);
  if (readdirSync(path).length > 0 && !existsSync(join(path, MANIFEST))) {
    throw new DataError(`${path} holds files but no token cache (no ${MANIFEST}): refusing to replace it; give another --cache`);
  }
}

async function build(args: {
  corpus: Corpus;
  dataset: string;
  dataDir?: string;
  tokenizer: Tokenizer;
  out: string;
  splits?: Split[];
  /** Tokens per shard file (default 64M). */
  shardTokens?: number;
  onProgress?: (p: PrepareProgress) => void;
}): Promise<CacheManifest> {
  const { corpus, tokenizer } = args;
  const t0 = performance.now();
  const final = args.out.replace(/\/+$/, '');
  refuseForeign(final);
  const out = join(dirname(final), `.${basename(final)}.building-${process.pid}-${Date.now()}`);
  mkdirSync(out, { recursive: true });
  try {
    const manifest = await tokenize(args, out, t0);
    // into place: an older cache there is moved aside first, then removed
    const old = existsSync(final) ? join(dirname(final), `.${basename(final)}.old-${process.pid}-${Date.now()}`) : undefined;
    if (old) renameSync(final, old);
    renameSync(out, final);
    if (old) rmSync(old, { recursive: true, force: true });
    return manifest;
  } catch (e) {
    rmSync(out, { recursive: true, force: true });
    throw e;
  }
}

async function tokenize(args: Parameters<typeof build>[0], out: string, t0: number): Promise<CacheManifest> {
  const { corpus, tokenizer } = args;
  const dtype = tokenizer.vocabSize <= 65536 ? 'uint16' : 'uint32';
  const Typed = dtype === 'uint16' ? Uint16Array : Uint32Array;
  const shardTokens = args.shardTokens ?? 64 * 2 ** 20;
  const manifest: CacheManifest = {
    format: CACHE_FORMAT,
    version: CACHE_VERSION,
    dataset: args.dataset,
    dataDir: args.dataDir ?? null,
    files: corpus.files?.() ?? [],
    tokenizer: { name: tokenizer.name, fingerprint: tokenizer.fingerprint, vocabSize: tokenizer.vocabSize, endOfDocument: tokenizer.endOfDocument },
    dtype,
    splits: {},
    skippedLines: 0,
    seconds: 0,
    createdAt: new Date().toISOString(),
  };
  for (const split of args.splits ?? (['train', 'validation'] as Split[])) {
    const shards: CacheShard[] = [];
    let buffer = new Typed(Math.min(shardTokens, 1 << 20));
    let used = 0;
    let starts: number[] = [];
    let total = 0;
    let documents = 0;
    let lastReport = 0;
    const flush = () => {
      if (used === 0) return;
      const n = shards.length;
      const file = `${split}-${String(n).padStart(5, '0')}.bin`;
      const startsFile = `${split}-${String(n).padStart(5, '0')}.starts`;
      writeFileSync(join(out, file), new Uint8Array(buffer.buffer, 0, used * buffer.BYTES_PER_ELEMENT));
      writeFileSync(join(out, startsFile), new Uint8Array(Uint32Array.from(starts).buffer));
      shards.push({ file, starts: startsFile, tokens: used, documents: starts.length });
      used = 0;
      starts = [];
    };
    for await (const doc of corpus.stream(split)) {
      const ids = tokenizer.encode(doc.text);
      if (used > 0 && used + ids.length + 1 > shardTokens) flush();
      if (used + ids.length + 1 > buffer.length) {
        const bigger = new Typed(Math.max(buffer.length * 2, used + ids.length + 1));
        bigger.set(buffer.subarray(0, used));
        buffer = bigger;
      }
      starts.push(used);
      buffer.set(ids, used);
      used += ids.length;
      buffer[used++] = tokenizer.endOfDocument;
      total += ids.length + 1;
      documents++;
      const now = performance.now();
      if (now - lastReport > 250) {
        lastReport = now;
        args.onProgress?.({ split, documents, tokens: total, seconds: (now - t0) / 1000 });
      }
    }
    flush();
    if (documents === 0) throw new DataError(`the ${split} split of ${args.dataset} has no documents`);
    manifest.splits[split] = { tokens: total, documents, shards };
    args.onProgress?.({ split, documents, tokens: total, seconds: (performance.now() - t0) / 1000 });
  }
  manifest.skippedLines = corpus.skipped?.() ?? 0;
  manifest.seconds = (performance.now() - t0) / 1000;
  const tmp = join(out, `${MANIFEST}.tmp`);
  writeFileSync(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(tmp, join(out, MANIFEST));
  return manifest;
}

/** Reads a cache's manifest, refusing a missing or incomplete one. */
export function readCacheManifest(dir: string): CacheManifest {
  const file = join(dir, MANIFEST);
  if (!existsSync(file)) throw new DataError(`${dir} is not a complete token cache (no ${MANIFEST}): build it with primer data prepare`);
  let m: CacheManifest;
  try {
    m = JSON.parse(readFileSync(file, 'utf8')) as CacheManifest;
  } catch (e) {
    throw new DataError(`${file} is not valid JSON (${(e as Error).message}): build the cache again with primer data prepare --force`);
  }
  if (m.format !== CACHE_FORMAT || m.version !== CACHE_VERSION) {
    throw new DataError(`${file} is not a token cache this version reads (format ${m.format} version ${m.version})`);
  }
  return m;
}

/**
 * Opens a token cache, refusing it when it was built for another dataset or tokenizer, or
 * when a source file changed since (size or modification time), naming what differs.
 */
export function openTokenCache(
  dir: string,
  expect: { dataset?: string; tokenizer?: Pick<Tokenizer, 'name' | 'fingerprint'>; files?: Array<{ path: string; size: number; mtimeMs: number }> } = {},
): { manifest: CacheManifest; source(split: Split): TokenSource } {
  const m = readCacheManifest(dir);
  if (expect.dataset && m.dataset !== expect.dataset) throw new DataError(`the token cache ${dir} holds ${m.dataset}, not ${expect.dataset}`);
  if (expect.tokenizer && m.tokenizer.fingerprint !== expect.tokenizer.fingerprint) {
    throw new DataError(
      `the token cache ${dir} was built with the ${m.tokenizer.name} tokenizer (${m.tokenizer.fingerprint}), not ${expect.tokenizer.name} (${expect.tokenizer.fingerprint}): build it again with primer data prepare`,
    );
  }
  if (expect.files) {
    const then = new Map(m.files.map((f) => [f.path, f]));
    const now = new Map(expect.files.map((f) => [f.path, f]));
    for (const [path, f] of now) {
      const old = then.get(path);
      if (!old) throw new DataError(`the token cache ${dir} is out of date: ${path} is new since it was built${STALE}`);
      if (old.size !== f.size || old.mtimeMs !== f.mtimeMs) throw new DataError(`the token cache ${dir} is out of date: ${path} changed since it was built${STALE}`);
    }
    for (const path of then.keys()) if (!now.has(path)) throw new DataError(`the token cache ${dir} is out of date: ${path} is gone${STALE}`);
  }
  return { manifest: m, source: (split) => fileSource(dir, m, split) };
}

/** Closes a split's shard files once nothing reads it any more. */
const closeWhenUnused = new FinalizationRegistry<number[]>((fds) => fds.forEach((fd) => closeSync(fd)));

/** Random access to a split of a cache: each read is one or two positioned reads of its shard files. */
function fileSource(dir: string, m: CacheManifest, split: Split): TokenSource {
  const s = m.splits[split];
  if (!s) throw new DataError(`the token cache ${dir} has no ${split} split`);
  const bytes = m.dtype === 'uint16' ? 2 : 4;
  const offsets: number[] = [];
  let total = 0;
  for (const sh of s.shards) {
    offsets.push(total);
    const expected = sh.tokens * bytes;
    let size: number;
    try {
      size = statSync(join(dir, sh.file)).size;
    } catch {
      throw new DataError(`the token cache shard ${join(dir, sh.file)} is missing: build the cache again with primer data prepare --force`);
    }
    if (size !== expected) throw new DataError(`the token cache shard ${join(dir, sh.file)} has ${size} bytes, not ${expected}: build the cache again`);
    total += sh.tokens;
  }
  const fds = s.shards.map((sh) => openSync(join(dir, sh.file), 'r'));
  const source: TokenSource = {
    length: total,
    read(start, count) {
      if (start < 0 || start + count > total) throw new RangeError(`read of ${count} tokens at ${start} is outside the split (${total} tokens)`);
      const out = new Uint32Array(count);
      let done = 0;
      // the shard holding `start`
      let k = 0;
      while (k + 1 < offsets.length && offsets[k + 1]! <= start) k++;
      while (done < count) {
        const within = start + done - offsets[k]!;
        const take = Math.min(count - done, s.shards[k]!.tokens - within);
        const buf = Buffer.alloc(take * bytes);
        readSync(fds[k]!, buf, 0, take * bytes, within * bytes);
        const view = bytes === 2 ? new Uint16Array(buf.buffer, buf.byteOffset, take) : new Uint32Array(buf.buffer, buf.byteOffset, take);
        out.set(view, done);
        done += take;
        k++;
      }
      return out;
    },
    documentStarts() {
      const all = new Float64Array(s.documents);
      let at = 0;
      s.shards.forEach((sh, k) => {
        const raw = readFileSync(join(dir, sh.starts));
        const starts = new Uint32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
        for (const x of starts) all[at++] = offsets[k]! + x;
      });
      return all;
    },
  };
  closeWhenUnused.register(source, fds);
  return source;
}
