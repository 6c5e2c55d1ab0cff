import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { cpus, totalmem } from 'node:os';
import { CommanderError, InvalidArgumentError } from 'commander';
import { closeMatches, isPrimerError, quote } from '@primer-search/core';
import { parseBudget, type Budget } from '@primer-search/study';
import { UsageError } from './io.js';

/**
 * The one rule for exit statuses, used by every command: 0 success; 2 when the command line
 * is wrong (an unknown flag, a flag value that cannot work, a missing argument, a path that
 * does not exist); 1 when what it points at is invalid (a DNA that does not validate, a
 * damaged study, unreadable data) or the work failed. Anything else is a bug and is rethrown.
 */
export function exitCodeOf(e: unknown): number {
  if (e instanceof CommanderError) return e.exitCode === 0 || e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : 2;
  if (e instanceof UsageError) return 2;
  if (isPrimerError(e)) return 1;
  throw e;
}

export const integer = (name: string, min: number, max = Number.MAX_SAFE_INTEGER) => (value: string) => {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new InvalidArgumentError(max === Number.MAX_SAFE_INTEGER ? `${name} must be an integer >= ${min}.` : `${name} must be an integer from ${min} to ${max}.`);
  }
  return n;
};

export const number = (name: string) => (value: string) => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative number.`);
  return n;
};

export const positiveNumber = (name: string) => (value: string) => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number.`);
  return n;
};

/** The model width: dModel / 8 is the unit a DNA's widths count in, so a multiple of 16. */
export const dModel = (value: string) => {
  const n = integer('--d-model', 16)(value);
  if (n % 16 !== 0) throw new InvalidArgumentError(`--d-model must be a multiple of 16 (its unit dModel/8 at least 2), got ${n}.`);
  return n;
};

export const heads = (value: string) => {
  const n = Number(value);
  if (![1, 2, 4, 8].includes(n)) throw new InvalidArgumentError('--heads must be 1, 2, 4 or 8.');
  return n;
};

/** One of `names` (a registry's, read when the flag is checked, after plugins have loaded). */
export function checkName(flag: string, value: string, what: string, names: readonly string[]): void {
  if (!names.includes(value)) throw new UsageError(`${flag}: no ${what} ${quote(value)}${didYouMean(value, names)}; known: ${names.join(', ')}`);
}

/** " (did you mean X?)" when a known name is close to `value` (core's closeMatches, as the registries use), else "". */
export function didYouMean(value: string, names: Iterable<string>): string {
  const near = closeMatches(value, names);
  return near.length ? ` (did you mean ${near.join(' or ')}?)` : '';
}

/** The prefix of the staging folders an export writes inside its folder (`exportLanguageModel`). */
export const EXPORT_STAGING = '.export-';

/**
 * A folder a command will write a model into: refused when it is a file, or when it already
 * holds files and `force` was not given (nothing is replaced silently). Checked before any work.
 */
export function checkOutputFolder(flag: string, dir: string | undefined, force: boolean | undefined): void {
  if (dir === undefined) return;
  const st = statSync(dir, { throwIfNoEntry: false });
  if (!st) return;
  if (!st.isDirectory()) throw new UsageError(`${flag}: ${dir} is a file; give a folder`);
  // (a staging folder a killed export left is not a file of the user's)
  if (!force && readdirSync(dir).filter((n) => !n.startsWith(EXPORT_STAGING)).length > 0) throw new UsageError(`${flag}: ${dir} already holds files${existsSync(join(dir, 'model.json')) ? ' (a model)' : ''}: add --force to write over them, or give another folder`);
}

/** A path the user gave that must exist (as a folder or a file). */
export function checkPath(flag: string, path: string | undefined, kind: 'folder' | 'file'): void {
  if (path === undefined) return;
  if (!existsSync(path)) throw new UsageError(`${flag}: no such ${kind} ${path}`);
  const isDir = statSync(path).isDirectory();
  if (kind === 'folder' && !isDir) throw new UsageError(`${flag}: ${path} is a file, not a folder`);
  if (kind === 'file' && isDir) throw new UsageError(`${flag}: ${path} is a folder, not a file`);
}

/** What one worker process holds at least: Node, TensorFlow.js with its wasm heap, a small model. */
export const WORKER_BYTES = 400 * 2 ** 20;

/**
 * More worker processes than cores slow each other down: say so. More than the machine's
 * memory holds cannot work: refuse.
 */
export function workersWarning(workers: number): string | undefined {
  const n = cpus().length;
  const fits = Math.floor(totalmem() / WORKER_BYTES);
  if (workers > fits) {
    throw new UsageError(`--workers ${workers}: each worker process needs about ${WORKER_BYTES / 2 ** 20} MiB, and this machine's ${(totalmem() / 2 ** 30).toFixed(0)} GiB hold at most ${fits}; use about ${n}, one per core`);
  }
  return workers > n ? `warning: --workers ${workers} is more than this machine's ${n} cores: candidates will train slower, each worker holding a model in memory` : undefined;
}

/**
 * A forced native backend must be installed (found without loading it, so a controller that
 * trains nothing never loads TensorFlow.js); wasm and cpu ship with primer-search.
 */
export function checkBackend(backend: string | undefined): void {
  if (backend === 'webgpu') {
    for (const pkg of ['webgpu', '@tensorflow/tfjs-backend-webgpu']) {
      try {
        createRequire(import.meta.url).resolve(pkg);
      } catch {
        throw new UsageError(`--backend webgpu: ${pkg} is not installed here (it is an optional dependency: npm install without --omit=optional, or npm install webgpu@0.6.2 @tensorflow/tfjs-backend-webgpu@4.22.0), or leave --backend out`);
      }
    }
    return;
  }
  if (backend !== 'tfjs-node' && backend !== 'tfjs-node-gpu') return;
  try {
    createRequire(import.meta.url).resolve(`@tensorflow/${backend}`);
  } catch {
    throw new UsageError(`--backend ${backend}: @tensorflow/${backend} is not installed here (npm install @tensorflow/${backend}; it downloads libtensorflow), or leave --backend out to use the fastest that starts`);
  }
}

/** A repeatable option's parser: every value, in order. */
export const collect = (value: string, previous: string[]) => [...previous, value];

/** A time limit's parser (a time budget, e.g. 90s or 5m). */
export const timeBudget = (value: string): Budget => {
  try {
    const b = parseBudget(value);
    if (b.kind !== 'seconds') throw new Error('the timeout is a time, e.g. 90s or 5m');
    return b;
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
};

/** --checkpoint-every: a time (seconds), 0 (every step) or off (false). */
export function checkpointEvery(value: string): number | false {
  if (value.trim() === 'off') return false;
  if (/^\s*0+(\.0*)?\s*[a-z]*\s*$/i.test(value)) return 0;
  try {
    return (timeBudget(value) as { seconds: number }).seconds;
  } catch (e) {
    throw new InvalidArgumentError(`${(e as Error).message}; or 0 (after every step), or off`);
  }
}
