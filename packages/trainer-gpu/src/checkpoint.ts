import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { PrimerError, type RngState } from '@primer-search/core';
import type { Budget } from './budget.js';
import type { Evaluation, TrainConfig } from './train.js';

/** A tensor's values as stored in a checkpoint. */
export interface StoredArray {
  shape: number[];
  /** Float32 values, base64 of their little-endian bytes. */
  data: string;
}

/** Everything needed to continue a training run exactly where it stopped. */
export interface TrainCheckpoint {
  format: 'primer-train-checkpoint';
  version: 1;
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
  weights: Record<string, StoredArray>;
  /** Optimizer slots in the model's variable order. */
  optimizer: { name: string; slots: StoredArray[] };
  /** What the caller ran this with (e.g. data settings), compared on resume. */
  context?: Record<string, unknown>;
}

export function storeArray(values: Float32Array, shape: number[]): StoredArray {
  return { shape, data: Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64') };
}

export function loadArray(a: StoredArray): Float32Array {
  const bytes = Buffer.from(a.data, 'base64');
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return new Float32Array(copy.buffer);
}

/** Writes atomically: a crash leaves the previous checkpoint, never a torn one. */
export function writeCheckpoint(path: string, c: TrainCheckpoint): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(c));
  renameSync(tmp, path);
}

export function readCheckpoint(path: string): TrainCheckpoint {
  let c: TrainCheckpoint;
  try {
    c = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new PrimerError('BAD_CHECKPOINT', `cannot read the checkpoint ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (c?.format !== 'primer-train-checkpoint' || c.version !== 1) {
    throw new PrimerError('BAD_CHECKPOINT', `${path} is not a primer-search training checkpoint (version 1)`);
  }
  return c;
}
