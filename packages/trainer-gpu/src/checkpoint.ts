import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { escapeText, PrimerError, quote, type RngState } from '@primer-search/core';
import { fsyncFolder } from '@primer-search/datasets';
import type { Budget, TrainConfig } from '@primer-search/study';
import type { Slot } from './optimizers.js';
import type { Evaluation } from './evaluation.js';

/** Everything needed to continue a training run exactly where it stopped. */
export interface TrainCheckpoint {
  format: 'primer-train-checkpoint';
  version: 2;
  budget: Budget;
  config: TrainConfig;
  step: number;
  tokens: number;
  trainSeconds: number;
  evalSeconds: number;
  evaluations: Evaluation[];
  curve: Array<{ step: number; tokens: number; seconds: number; loss: number }>;
  sampler: RngState;
  /** Model weights by the model's stable names. */
  weights: Record<string, Slot>;
  /** Optimizer state by slot name (`step`, `<weight name>/<slot>`). */
  optimizer: { name: string; slots: Record<string, Slot> };
  /** What the caller ran this with (model, data and training settings), compared on resume. */
  context?: Record<string, unknown>;
}

/** Where one tensor lies in the data file (float32, little-endian). */
interface TensorEntry {
  name: string;
  shape: number[];
  /** Byte offset in the data file. */
  offset: number;
}

/** `checkpoint.json`: the checkpoint less its tensors, which lie in `data`. */
interface Manifest extends Omit<TrainCheckpoint, 'weights' | 'optimizer'> {
  optimizer: { name: string };
  /** The data file, in the checkpoint folder. */
  data: string;
  dataBytes: number;
  tensors: TensorEntry[];
}

const MANIFEST = 'checkpoint.json';
const elements = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const fail = (path: string, what: string, cause?: unknown) => new PrimerError('BAD_CHECKPOINT', `the checkpoint ${path} ${what}`, { cause });

/** Writes `bytes` pieces to a new file and flushes it to disk before returning. */
function writeDurably(file: string, pieces: Iterable<Uint8Array>): number {
  const fd = openSync(file, 'w');
  let total = 0;
  try {
    for (const p of pieces) {
      for (let done = 0; done < p.byteLength; ) done += writeSync(fd, p, done, p.byteLength - done);
      total += p.byteLength;
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return total;
}

/**
 * Saves a checkpoint in the folder `path`: the tensors as one binary file (float32) and a
 * small JSON manifest naming it. Both are flushed to disk; the manifest replaces the old one
 * by an atomic rename, and only then is the old data file removed, so a crash at any moment
 * leaves the previous checkpoint or this one, never a mix. No string holds the tensors, so
 * size is bounded by the disk, not by V8's string limit.
 */
export function writeCheckpoint(path: string, c: TrainCheckpoint): void {
  if (existsSync(path) && !statSync(path).isDirectory()) {
    throw fail(path, 'is a file; a checkpoint is a folder (give a new name, or remove the file)');
  }
  mkdirSync(path, { recursive: true });
  const tensors: TensorEntry[] = [];
  const arrays: Float32Array[] = [];
  let offset = 0;
  const add = (name: string, s: Slot) => {
    if (s.values.length !== elements(s.shape)) throw new PrimerError('CHECKPOINT', `${name} has ${s.values.length} values for shape ${s.shape.join('x')}`);
    tensors.push({ name, shape: s.shape, offset });
    arrays.push(s.values);
    offset += s.values.byteLength;
  };
  for (const [name, s] of Object.entries(c.weights)) add(`weights/${name}`, s);
  for (const [name, s] of Object.entries(c.optimizer.slots)) add(`optimizer/${name}`, s);

  const data = `tensors-${c.step}-${process.pid}-${Date.now()}.bin`;
  const dataBytes = writeDurably(
    join(path, data),
    arrays.map((a) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength)),
  );
  const { weights: _w, optimizer, ...rest } = c;
  const manifest: Manifest = { ...rest, optimizer: { name: optimizer.name }, data, dataBytes, tensors };
  const tmp = join(path, `${MANIFEST}.tmp-${process.pid}`);
  writeDurably(tmp, [Buffer.from(JSON.stringify(manifest))]);
  renameSync(tmp, join(path, MANIFEST));
  fsyncFolder(path);
  for (const f of readdirSync(path)) {
    if (f !== data && (/^tensors-.*\.bin$/.test(f) || f.startsWith(`${MANIFEST}.tmp-`))) rmSync(join(path, f), { force: true });
  }
}

/** Reads a checkpoint folder written by `writeCheckpoint`, checking that its data file is whole. */
export function readCheckpoint(path: string): TrainCheckpoint {
  if (!existsSync(path)) throw fail(path, 'does not exist');
  if (!statSync(path).isDirectory()) {
    throw fail(path, 'is a file, not a checkpoint folder (checkpoints before version 2 were one JSON file and cannot be resumed: start the run again)');
  }
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(join(path, MANIFEST), 'utf8'));
  } catch (e) {
    throw fail(path, `has no readable ${MANIFEST}: ${escapeText((e as Error).message, 200)}`, e);
  }
  if (m?.format !== 'primer-train-checkpoint' || m.version !== 2 || !Array.isArray(m.tensors) || typeof m.data !== 'string') {
    throw fail(path, 'is not a primer-search training checkpoint (version 2)');
  }
  // the manifest is data: its data file is a plain name inside the folder, as writeCheckpoint names it
  if (!/^tensors-[\w.-]+\.bin$/.test(m.data)) throw fail(path, `names a data file that is not one of its own: ${quote(m.data)}`);
  const file = join(path, m.data);
  if (!existsSync(file) || statSync(file).size !== m.dataBytes) {
    throw fail(path, `is damaged: its data file ${m.data} is missing or not ${typeof m.dataBytes === 'number' ? m.dataBytes : quote(m.dataBytes)} bytes`);
  }
  // each entry is data too: a name under weights/ or optimizer/, a shape of whole numbers, and bytes inside the data file
  const whole = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
  for (const t of m.tensors as unknown[]) {
    const e = t as Partial<TensorEntry> | null;
    const ok =
      typeof e === 'object' &&
      e !== null &&
      typeof e.name === 'string' &&
      /^(weights|optimizer)\/./.test(e.name) &&
      Array.isArray(e.shape) &&
      e.shape.every(whole) &&
      whole(e.offset) &&
      e.offset! + 4 * elements(e.shape) <= m.dataBytes;
    if (!ok) throw fail(path, `is damaged: a tensor entry of its manifest is not one it could have written (${escapeText(JSON.stringify(t) ?? String(t), 120)})`);
  }
  // no prototype: a tensor named like an object's own property is only a name
  const weights: Record<string, Slot> = Object.create(null);
  const slots: Record<string, Slot> = Object.create(null);
  const fd = openSync(file, 'r');
  try {
    for (const t of m.tensors) {
      const values = new Float32Array(elements(t.shape));
      const bytes = new Uint8Array(values.buffer);
      for (let done = 0; done < bytes.length; ) {
        const n = readSync(fd, bytes, done, bytes.length - done, t.offset + done);
        if (n === 0) throw fail(path, `is damaged: ${t.name} runs past the end of ${m.data}`);
        done += n;
      }
      const [kind, ...rest] = t.name.split('/');
      (kind === 'weights' ? weights : slots)[rest.join('/')] = { values, shape: t.shape };
    }
  } finally {
    closeSync(fd);
  }
  const { data: _d, dataBytes: _b, tensors: _t, optimizer, ...rest } = m;
  return { ...rest, weights, optimizer: { name: optimizer.name, slots } };
}
