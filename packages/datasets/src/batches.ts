import { PrimerError, Rng, type Seed } from '@primer-search/core';
import { memorySource, type TokenSource } from './cache.js';
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

/** Tokens in memory or in a token cache. A plain array is taken as one stream (no document starts known). */
export type Tokens = Uint32Array | TokenSource;
const asSource = (t: Tokens): TokenSource => (t instanceof Uint32Array ? memorySource(t, -1) : t);

function windowAt(source: TokenSource, starts: number[], seqLen: number): Batch {
  const tokens = new Int32Array(starts.length * seqLen);
  const targets = new Int32Array(starts.length * seqLen);
  starts.forEach((s, b) => {
    const w = source.read(s, seqLen + 1);
    for (let t = 0; t < seqLen; t++) {
      tokens[b * seqLen + t] = w[t]!;
      targets[b * seqLen + t] = w[t + 1]!;
    }
  });
  return { tokens, targets, batch: starts.length, seqLen };
}

function checkFits(source: TokenSource, seqLen: number, what: string) {
  if (source.length < seqLen + 1) {
    throw new PrimerError('DATASET_TOO_SMALL', `the ${what} stream has ${source.length} tokens, fewer than one window of ${seqLen + 1}`);
  }
}

/**
 * How windows are cut: `packed` (the default) takes windows at any position of the
 * concatenated documents, as LM training usually does; `sentence` starts every window at a
 * document (for LM1B, a sentence) start, running on into the next ones when it is short.
 */
export type BatchMode = 'packed' | 'sentence';

/**
 * Training batches: windows of seqLen + 1 tokens at seeded random offsets of the stream.
 * The same seed gives the same batches in any process; `state()` resumes the sequence.
 */
export class BatchSampler {
  private rng: Rng;
  private readonly source: TokenSource;
  private readonly starts?: Float64Array;
  private readonly usableStarts: number;
  constructor(
    stream: Tokens,
    readonly batch: number,
    readonly seqLen: number,
    seed: Seed | { state: ReturnType<Rng['state']> },
    readonly mode: BatchMode = 'packed',
  ) {
    this.source = asSource(stream);
    checkFits(this.source, seqLen, 'training');
    this.rng = typeof seed === 'object' ? Rng.fromState(seed.state) : Rng.create(seed);
    if (mode === 'sentence') {
      this.starts = this.source.documentStarts();
      const last = this.source.length - seqLen - 1;
      // starts are ascending: those with a whole window after them
      let n = this.starts.length;
      while (n > 0 && this.starts[n - 1]! > last) n--;
      if (n === 0) throw new PrimerError('DATASET_TOO_SMALL', `no document start has a window of ${seqLen + 1} tokens after it`);
      this.usableStarts = n;
    } else {
      this.usableStarts = 0;
    }
  }

  next(): Batch {
    const last = this.source.length - this.seqLen - 1;
    const pick = () => (this.starts ? this.starts[this.rng.int(0, this.usableStarts - 1)]! : this.rng.int(0, last));
    return windowAt(this.source, Array.from({ length: this.batch }, pick), this.seqLen);
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
export function evaluationBatches(stream: Tokens, batch: number, seqLen: number, maxWindows: number): Batch[] {
  const source = asSource(stream);
  checkFits(source, seqLen, 'evaluation');
  const available = Math.floor((source.length - 1) / seqLen);
  const count = Math.max(1, Math.min(maxWindows, available));
  const stride = Math.floor(available / count) * seqLen;
  const starts = Array.from({ length: count }, (_, i) => i * stride);
  const out: Batch[] = [];
  for (let i = 0; i < starts.length; i += batch) out.push(windowAt(source, starts.slice(i, i + batch), seqLen));
  return out;
}
