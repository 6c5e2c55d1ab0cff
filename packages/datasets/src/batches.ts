import { PrimerError, Rng, type Seed } from '@primer-search/core';
import { documentsOf, type Corpus, type Split } from './corpus.js';
import type { Tokenizer } from './tokenizer.js';

/** All documents of a split, tokenized and concatenated with the end-of-document id after each. */
export function tokenStream(corpus: Corpus, split: Split, tokenizer: Tokenizer): Uint32Array {
  const parts = documentsOf(corpus).filter((d) => d.split === split).map((d) => tokenizer.encode(d.text));
  const out = new Uint32Array(parts.reduce((a, p) => a + p.length + 1, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
    out[at++] = tokenizer.endOfDocument;
  }
  return out;
}

export interface Batch {
  /** `[batch * seqLen]` row-major int32 inputs. */
  tokens: Int32Array;
  /** The next token after each input. */
  targets: Int32Array;
  batch: number;
  seqLen: number;
}

function windowAt(stream: Uint32Array, starts: number[], seqLen: number): Batch {
  const tokens = new Int32Array(starts.length * seqLen);
  const targets = new Int32Array(starts.length * seqLen);
  starts.forEach((s, b) => {
    for (let t = 0; t < seqLen; t++) {
      tokens[b * seqLen + t] = stream[s + t]!;
      targets[b * seqLen + t] = stream[s + t + 1]!;
    }
  });
  return { tokens, targets, batch: starts.length, seqLen };
}

function checkFits(stream: Uint32Array, seqLen: number, what: string) {
  if (stream.length < seqLen + 1) {
    throw new PrimerError('DATASET_TOO_SMALL', `the ${what} stream has ${stream.length} tokens, fewer than one window of ${seqLen + 1}`);
  }
}

/**
 * Training batches: windows of seqLen + 1 tokens at seeded random offsets of the stream.
 * The same seed gives the same batches in any process; `state()` resumes the sequence.
 */
export class BatchSampler {
  private rng: Rng;
  constructor(
    private readonly stream: Uint32Array,
    readonly batch: number,
    readonly seqLen: number,
    seed: Seed | { state: ReturnType<Rng['state']> },
  ) {
    checkFits(stream, seqLen, 'training');
    this.rng = typeof seed === 'object' ? Rng.fromState(seed.state) : Rng.create(seed);
  }

  next(): Batch {
    const last = this.stream.length - this.seqLen - 1;
    return windowAt(this.stream, Array.from({ length: this.batch }, () => this.rng.int(0, last)), this.seqLen);
  }

  state() {
    return this.rng.state();
  }

  /** Continue from a position saved with state(). */
  restore(state: ReturnType<Rng['state']>): void {
    this.rng = Rng.fromState(state);
  }
}

/**
 * A fixed evaluation set: up to `maxWindows` non-overlapping windows spread evenly over the
 * stream, in batches. Every model is scored on exactly the same tokens.
 */
export function evaluationBatches(stream: Uint32Array, batch: number, seqLen: number, maxWindows: number): Batch[] {
  checkFits(stream, seqLen, 'evaluation');
  const available = Math.floor((stream.length - 1) / seqLen);
  const count = Math.max(1, Math.min(maxWindows, available));
  const stride = Math.floor(available / count) * seqLen;
  const starts = Array.from({ length: count }, (_, i) => i * stride);
  const out: Batch[] = [];
  for (let i = 0; i < starts.length; i += batch) out.push(windowAt(stream, starts.slice(i, i + batch), seqLen));
  return out;
}
