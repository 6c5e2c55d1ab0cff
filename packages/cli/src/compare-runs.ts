import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { escapeText, quote } from '@primer-search/core';
import { tryLock, type LockAttempt } from '@primer-search/datasets';
import { dnaHash, type Dna } from '@primer-search/dna';
import type { RunRecord, RunSettings } from '@primer-search/trainer-gpu';
import { z } from 'zod';
import { UsageError, writeWhole } from './io.js';

/**
 * What `primer compare --checkpoint DIR` keeps, so that the same command run again with
 * `--resume` continues where it stopped: each finished run's record (`run-KEY.json`) and the run
 * under way's training checkpoint (`run-KEY/`). KEY is a hash of the model (its DNA's canonical
 * hash) and of the run's settings (seed included) but for where it runs (the backend asked for,
 * the data-parallel threads, which depend on the machine's cores): a run is taken back only by
 * the same model trained the same way on the same data, and models may be reordered or
 * relabelled between tries, or the comparison continued on another machine.
 */
const FORMAT = 'primer-compare-run';

/**
 * The settings a kept run must share with the run it stands for: all but where it runs (the
 * backend asked for, the data-parallel threads) and where its files are (the data folder, token
 * cache and tokenizer model paths: what they hold is checked instead, as `DataIdentity`).
 */
function keyed(settings: RunSettings): Partial<RunSettings> {
  const { backend: _b, dataParallel: _p, dataDir: _d, cache: _c, tokenizerModel: _t, ...rest } = settings;
  return rest;
}

export function compareRunKey(dna: unknown, settings: RunSettings): string {
  return createHash('sha256')
    .update(JSON.stringify({ dna: dnaHash(dna as Dna), settings: keyed(settings) }))
    .digest('hex')
    .slice(0, 16);
}

export const compareRunCheckpoint = (dir: string, key: string) => join(dir, `run-${key}`);
const recordFile = (dir: string, key: string) => join(dir, `run-${key}.json`);

/** The keys of the runs `dir` keeps (finished records or checkpoints; none when it is absent). */
export function keptCompareRuns(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return [...new Set(names.map((n) => /^run-([0-9a-f]{16})(\.json)?$/.exec(n)?.[1]).filter((k): k is string => k !== undefined))];
}

/**
 * Writes a finished run's record, replaced whole and flushed to the disk: its checkpoint is
 * removed next, on the strength of it.
 */
export function keepCompareRun(dir: string, key: string, label: string, seed: number, data: DataIdentity, record: RunRecord): void {
  writeWhole(recordFile(dir, key), `${JSON.stringify({ format: FORMAT, version: 1, key, label, seed, data, record })}\n`, { durable: true });
}

const object = z.record(z.string(), z.unknown());
const counts = { trainTokens: z.number(), validationTokens: z.number(), vocabSize: z.number() };
/** A kept file's header: what it says it is. */
const KeptHeader = z.object({ format: z.literal(FORMAT), version: z.literal(1), key: z.string() });
/** What of a kept file the comparison reads (the data it was trained on, where, and the record's result); the rest is carried as it is. */
const KeptRun = z.object({
  data: z.object({ ...counts, tokenizer: z.string() }),
  record: z.object({
    settings: z.object({ dataParallel: z.number().int().positive().optional() }),
    data: z.object(counts),
    backend: z.object({ tfBackend: z.string(), products: z.string() }),
    result: z
      .object({
        status: z.enum(['completed', 'diverged']),
        steps: z.number(),
        tokens: z.number(),
        parameters: z.number(),
        tokensPerSecond: z.number(),
        trainSeconds: z.number(),
        evaluations: z.array(z.object({ step: z.number(), tokens: z.number(), seconds: z.number(), loss: z.number(), perplexity: z.number(), flops: z.number().optional() })),
        final: z.object({ loss: z.number(), perplexity: z.number() }).optional(),
      })
      .refine((r) => r.status !== 'completed' || r.final !== undefined),
  }),
});

/** What the prepared data is: its token counts, vocabulary and tokenizer (by its fingerprint, which a trained BPE's text changes). */
export type DataIdentity = RunRecord['data'] & { tokenizer: string };

const sameData = (a: { trainTokens: number; validationTokens: number; vocabSize: number; tokenizer?: string }, b: DataIdentity) =>
  a.vocabSize === b.vocabSize && a.trainTokens === b.trainTokens && a.validationTokens === b.validationTokens && a.tokenizer === b.tokenizer;

/**
 * A kept run's record, read back: undefined when there is none, `problem` when the file is not
 * one this command wrote for this model, settings and data (damaged, edited, another version,
 * files added to the data folder); `elsewhere` says where it ran when that was not where this
 * comparison runs now (another backend or BLAS: the same run gives numbers that differ in the
 * last digits). The file is data: only a record of the expected shape is used, and what its
 * text says is escaped before it is printed.
 */
export function readKeptCompareRun(
  dir: string,
  key: string,
  settings: RunSettings,
  data: DataIdentity,
  backend: Pick<RunRecord['backend'], 'tfBackend' | 'products'>,
): { record: RunRecord; elsewhere?: string } | { problem: string } | undefined {
  const file = recordFile(dir, key);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { problem: `${file} cannot be read (${escapeText((e as Error).message, 200)})` };
  }
  let kept: unknown;
  try {
    kept = JSON.parse(text);
  } catch {
    return { problem: `${file} is not JSON (damaged, or cut short)` };
  }
  const header = KeptHeader.safeParse(kept);
  if (!header.success || header.data.key !== key) {
    return { problem: `${file} is not a run record of primer compare (format ${FORMAT}, version 1, key ${key})` };
  }
  const recorded = (kept as { record?: { settings?: unknown } }).record?.settings;
  if (typeof recorded !== 'object' || recorded === null || JSON.stringify(keyed(recorded as RunSettings)) !== JSON.stringify(keyed(settings))) {
    return { problem: `${file} records a run with other settings` };
  }
  const run = KeptRun.safeParse(kept);
  if (!run.success) return { problem: `${file} does not hold a whole run record (its result, data or backend are missing or of the wrong kind)` };
  const d = run.data.data;
  const r = run.data.record;
  if (!sameData(d, data) || !sameData({ ...r.data, tokenizer: d.tokenizer }, data)) {
    return {
      problem: `${file} was trained on other data (${d.trainTokens} training and ${d.validationTokens} validation tokens, vocabulary ${d.vocabSize}, tokenizer ${quote(d.tokenizer)}; now ${data.trainTokens}, ${data.validationTokens}, ${data.vocabSize} and ${quote(data.tokenizer)})`,
    };
  }
  // where it ran, when not as here: the same run's last digits can differ (other sums' order)
  const b = r.backend;
  const threads = (x: { dataParallel?: number }) => x.dataParallel ?? 1;
  const elsewhere = [
    ...(b.tfBackend !== backend.tfBackend || b.products !== backend.products ? [escapeText(`${b.tfBackend}, ${b.products}`, 120)] : []),
    ...(threads(r.settings) !== threads(settings) ? [`${threads(r.settings)} data-parallel threads`] : []),
  ].join(', ');
  // the file as written (the parse above checks what is read, and keeps only that)
  return { record: (kept as { record: RunRecord }).record, ...(elsewhere ? { elsewhere } : {}) };
}

/**
 * Takes `dir` for this process (`tryLock` on its `lock` file), so that two comparisons never
 * train into the same checkpoints; a killed one's lock is taken over. Returns what releases it.
 * Making the file also checks that the folder takes files, before any work.
 */
export function lockCompareFolder(dir: string): () => void {
  const file = join(dir, 'lock');
  let taken: LockAttempt;
  try {
    taken = tryLock(file);
  } catch (e) {
    throw new UsageError(`--checkpoint: cannot write in ${dir} (${escapeText((e as Error).message, 200)})`);
  }
  if ('release' in taken) return taken.release;
  if ('text' in taken.heldBy) throw new UsageError(`--checkpoint: ${file} is not a lock this command made (${quote(taken.heldBy.text)}); if no comparison runs on ${dir}, remove it`);
  const { pid, host } = taken.heldBy;
  if (host !== hostname()) throw new UsageError(`--checkpoint: ${dir} is in use by process ${pid} on another machine (${quote(host)}); if none runs there any more, remove ${file}`);
  throw new UsageError(`--checkpoint: ${dir} is in use by another primer compare (process ${pid}); wait for it to end, or give another folder`);
}
