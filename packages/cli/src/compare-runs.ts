import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunRecord, RunSettings } from '@primer-search/trainer-gpu';
import { writeWhole } from './io.js';

/**
 * What `primer compare --checkpoint DIR` keeps, so that the same command run again with
 * `--resume` continues where it stopped: each finished run's record (`run-KEY.json`) and the run
 * under way's training checkpoint (`run-KEY/`). KEY is a hash of the model's DNA and the run's
 * settings (seed included): a run is only taken back by the same model trained the same way, and
 * models may be reordered or relabelled between tries.
 */
const FORMAT = 'primer-compare-run';

export function compareRunKey(dna: unknown, settings: RunSettings): string {
  return createHash('sha256').update(JSON.stringify({ dna, settings })).digest('hex').slice(0, 16);
}

export const compareRunCheckpoint = (dir: string, key: string) => join(dir, `run-${key}`);
const recordFile = (dir: string, key: string) => join(dir, `run-${key}.json`);

/** The names in `dir` that are a comparison's kept runs or checkpoints (none when it is absent). */
export function keptCompareRuns(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => /^run-[0-9a-f]{16}(\.json)?$/.test(n));
  } catch {
    return [];
  }
}

/** Writes a finished run's record (replaced whole: a kill leaves the old file or the new one). */
export function keepCompareRun(dir: string, key: string, label: string, seed: number, record: RunRecord): void {
  writeWhole(recordFile(dir, key), `${JSON.stringify({ format: FORMAT, version: 1, key, label, seed, record })}\n`);
}

const num = (x: unknown) => typeof x === 'number';
const isEvaluation = (e: unknown) => {
  const v = e as Record<string, unknown> | null;
  return typeof v === 'object' && v !== null && num(v.step) && num(v.tokens) && num(v.seconds) && num(v.loss) && num(v.perplexity);
};

/**
 * A kept run's record, read back: undefined when there is none, `problem` when the file is not
 * one this command wrote for this model and settings (damaged, edited, another version). The
 * file is data: only a record of the expected shape, for the same settings, is used.
 */
export function readKeptCompareRun(dir: string, key: string, settings: RunSettings): { record: RunRecord } | { problem: string } | undefined {
  const file = recordFile(dir, key);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { problem: `${file} cannot be read (${(e as Error).message})` };
  }
  let kept: { format?: unknown; version?: unknown; key?: unknown; record?: RunRecord };
  try {
    kept = JSON.parse(text);
  } catch (e) {
    return { problem: `${file} is not JSON (${(e as Error).message})` };
  }
  if (typeof kept !== 'object' || kept === null || kept.format !== FORMAT || kept.version !== 1 || kept.key !== key) {
    return { problem: `${file} is not a run record of primer compare (format ${FORMAT}, version 1, key ${key})` };
  }
  const r = kept.record as unknown as { settings?: unknown; result?: Record<string, unknown> } | undefined;
  if (JSON.stringify(r?.settings) !== JSON.stringify(settings)) return { problem: `${file} records a run with other settings` };
  const res = r?.result;
  const final = res?.final as Record<string, unknown> | undefined;
  const shaped =
    typeof res === 'object' &&
    res !== null &&
    typeof res.status === 'string' &&
    ['completed', 'diverged'].includes(res.status) &&
    num(res.steps) &&
    num(res.parameters) &&
    num(res.tokensPerSecond) &&
    num(res.trainSeconds) &&
    Array.isArray(res.evaluations) &&
    res.evaluations.every(isEvaluation) &&
    (final === undefined || (typeof final === 'object' && final !== null && num(final.loss) && num(final.perplexity))) &&
    (res.status !== 'completed' || final !== undefined);
  if (!shaped) return { problem: `${file} does not hold a whole run record (its result's status, steps, evaluations or final figures are missing or of the wrong kind)` };
  return { record: kept.record! };
}
