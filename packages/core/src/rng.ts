import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus, xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';
import { PrimerError } from './errors.js';

type Generator = ReturnType<typeof xoroshiro128plus>;

/** A seed: any safe integer, or a string (hashed). */
export type Seed = number | string;

/** The JSON form of a generator's exact position in its sequence. */
export interface RngState {
  algorithm: 'xoroshiro128plus';
  state: number[];
}

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** splitmix32: turns a weak 32-bit input into a well-mixed one (used to derive child states). */
function mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x21f0aaad);
  z = Math.imul(z ^ (z >>> 15), 0x735a2d97);
  return (z ^ (z >>> 15)) >>> 0;
}

function seedToInt(seed: Seed): number {
  if (typeof seed === 'string') return fnv1a(seed) | 0;
  if (!Number.isSafeInteger(seed)) {
    throw new PrimerError('BAD_SEED', `A seed must be a safe integer or a string; got ${String(seed)}.`);
  }
  // Fold the high bits in so that seeds above 2^32 still differ.
  return (seed ^ Math.floor(seed / 0x1_0000_0000)) | 0;
}

/**
 * The project's one source of randomness: seeded (same seed, same sequence, in any
 * process), splittable (`split(label)` gives an independent child stream, so adding a
 * random draw in one component does not shift the draws of another) and serialisable
 * (`state()` / `Rng.fromState()` resume a stream exactly). Backed by pure-rand's
 * xoroshiro128+.
 */
export class Rng {
  private constructor(private readonly gen: Generator) {}

  static create(seed: Seed): Rng {
    return new Rng(xoroshiro128plus(seedToInt(seed)));
  }

  static fromState(state: RngState): Rng {
    if (state?.algorithm !== 'xoroshiro128plus' || !Array.isArray(state.state) || state.state.length !== 4) {
      throw new PrimerError('BAD_RNG_STATE', 'Not an RNG state written by Rng.state().');
    }
    return new Rng(xoroshiro128plusFromState(state.state));
  }

  state(): RngState {
    return { algorithm: 'xoroshiro128plus', state: [...this.gen.getState()] };
  }

  /** An independent copy at the same position. */
  clone(): Rng {
    return new Rng(this.gen.clone());
  }

  /**
   * A child stream. It advances this stream by two draws, and mixes in `label`, so two
   * children split with different labels at the same point differ too.
   */
  split(label = ''): Rng {
    const a = this.gen.next() >>> 0;
    const b = this.gen.next() >>> 0;
    const l = fnv1a(label);
    const s: number[] = [mix32(a ^ l), mix32(b + 0x632be5ab), mix32(a + l + 0x85ebca6b), mix32(b ^ 0xc2b2ae35)];
    if (!s.some((v) => v !== 0)) s[0] = 1;
    return new Rng(xoroshiro128plusFromState(s.map((v) => v | 0)));
  }

  /** Uniform in [0, 1). */
  float(): number {
    return uniformFloat64(this.gen);
  }

  /** Uniform integer in [min, max], both included. */
  int(min: number, max: number): number {
    if (!Number.isInteger(min) || !Number.isInteger(max) || max < min) {
      throw new PrimerError('BAD_RANGE', `Rng.int needs integers min <= max; got [${min}, ${max}].`);
    }
    return uniformInt(this.gen, min, max);
  }

  /** Standard normal (Box-Muller). */
  normal(mean = 0, std = 1): number {
    let u = 0;
    while (u === 0) u = this.float();
    const v = this.float();
    return mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  bool(probability = 0.5): boolean {
    return this.float() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new PrimerError('BAD_RANGE', 'Rng.pick needs a non-empty list.');
    return items[this.int(0, items.length - 1)] as T;
  }

  /** Pick with the given non-negative weights. */
  weighted<T>(items: readonly T[], weights: readonly number[]): T {
    const total = weights.reduce((a, b) => a + b, 0);
    if (items.length === 0 || items.length !== weights.length || !(total > 0)) {
      throw new PrimerError('BAD_RANGE', 'Rng.weighted needs as many positive weights as items.');
    }
    let r = this.float() * total;
    for (let i = 0; i < items.length; i++) {
      r -= weights[i] as number;
      if (r < 0) return items[i] as T;
    }
    return items[items.length - 1] as T;
  }

  /** A shuffled copy (Fisher-Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [out[i], out[j]] = [out[j] as T, out[i] as T];
    }
    return out;
  }

  /** `n` floats uniform in [min, max), as a Float32Array (used for weight initialisation). */
  uniformArray(n: number, min: number, max: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = min + (max - min) * this.float();
    return out;
  }

  normalArray(n: number, mean = 0, std = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal(mean, std);
    return out;
  }
}

export function createRng(seed: Seed): Rng {
  return Rng.create(seed);
}
