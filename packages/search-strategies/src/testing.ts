/**
 * Contract tests for search strategies, shipped as code: the built-in strategies and plugin
 * strategies run the same suite. From a vitest file:
 *
 *   import { describeStrategyContract } from '@primer-search/search-strategies/testing';
 *   describeStrategyContract(myStrategy, { seedDna });
 *
 * Outcomes come from a made-up fitness landscape (a function of the candidate's hash), so
 * the suite needs no training and runs in a second.
 */
import { dnaHash, validateDna, type Dna } from '@primer-search/dna';
import type { PrimitiveRegistry } from '@primer-search/primitives';
import { describe, expect, it } from 'vitest';
import type { Candidate, Outcome, Strategy, StrategyContext, StrategyDefinition } from './strategy.js';

export interface StrategyContractOptions {
  seedDna: Dna;
  /** Strategy options to run the suite with (e.g. a small population). */
  options?: Record<string, unknown>;
  primitives?: PrimitiveRegistry;
  /** Candidates per run (default 40). */
  candidates?: number;
}

/** A deterministic fake landscape: about one candidate in five fails, the rest get a perplexity from their hash. */
export function syntheticOutcome(c: Candidate): Outcome {
  const h = parseInt(c.hash.slice(0, 8), 16);
  if (c.id > 0 && h % 5 === 0) return { status: 'failed', reason: 'synthetic failure' };
  // a second objective (a made-up size) for strategies that rank by several; the others ignore it
  if (c.id > 0 && h % 7 === 0) return { status: 'hurdle', hurdle: 0, fitness: 20 + (h % 100) / 10, objectives: [20 + (h % 100) / 10, h % 97] };
  return { status: 'completed', fitness: 10 + (h % 1000) / 100, objectives: [10 + (h % 1000) / 100, h % 97] };
}

/**
 * Drives a strategy for `total` candidates with `inFlight` out at once, telling results
 * oldest first. Returns every candidate proposed, in order.
 */
export function driveStrategy(strategy: Strategy, total: number, inFlight = 3, outcome = syntheticOutcome): Candidate[] {
  const proposed: Candidate[] = [];
  const pending: Candidate[] = [];
  while (proposed.length < total || pending.length > 0) {
    while (pending.length < inFlight && proposed.length < total) {
      const [c] = strategy.ask(1);
      proposed.push(c!);
      pending.push(c!);
    }
    const c = pending.shift()!;
    strategy.tell(c, outcome(c));
  }
  return proposed;
}

const fingerprint = (cs: Candidate[]) => cs.map((c) => `${c.id}:${c.parent ?? '-'}:${c.hash}`);

export function describeStrategyContract(definition: StrategyDefinition, o: StrategyContractOptions): void {
  const total = o.candidates ?? 40;
  const context = (seed: number): StrategyContext => ({ seedDna: o.seedDna, seed, primitives: o.primitives, options: o.options });

  describe(`strategy contract: ${definition.name}`, () => {
    it('is deterministic under a seed, and another seed explores differently', () => {
      const a = fingerprint(driveStrategy(definition.create(context(7)), total));
      const b = fingerprint(driveStrategy(definition.create(context(7)), total));
      const c = fingerprint(driveStrategy(definition.create(context(8)), total));
      expect(b).toEqual(a);
      expect(c).not.toEqual(a);
    });

    it('proposes the seed first, then children that name their parent and their mutations', () => {
      const cs = driveStrategy(definition.create(context(1)), total);
      expect(cs[0]!.id).toBe(0);
      expect(cs[0]!.hash).toBe(dnaHash(o.seedDna, { primitives: o.primitives }));
      expect(cs.map((c) => c.id)).toEqual(cs.map((_, i) => i));
      const ids = new Set<number>();
      for (const c of cs) {
        if (c.id > 0) {
          expect(c.parent, `candidate ${c.id} has no parent`).toBeDefined();
          expect(ids.has(c.parent!), `candidate ${c.id}'s parent ${c.parent} was not proposed before it`).toBe(true);
          expect(c.mutations.length).toBeGreaterThan(0);
        }
        expect(c.hash).toBe(dnaHash(c.dna, { primitives: o.primitives }));
        ids.add(c.id);
      }
    });

    it('restores exactly from its JSON state, mid-run', () => {
      const original = definition.create(context(3));
      const first = driveStrategy(original, Math.floor(total / 2), 1);
      const saved = JSON.parse(JSON.stringify(original.state()));
      const restored = definition.create(context(3), saved);
      expect(JSON.parse(JSON.stringify(restored.state()))).toEqual(saved);
      const next = (s: Strategy) => fingerprint(driveStrategy(s, Math.ceil(total / 2), 1));
      expect(next(restored)).toEqual(next(original));
      expect(first.length).toBe(Math.floor(total / 2));
    });

    it('keeps going through failures and never proposes an invalid DNA or a failed program again', () => {
      const s = definition.create(context(5));
      const failed = new Set<string>();
      const cs = driveStrategy(s, total, 1, (c) => {
        const r = c.id === 0 ? syntheticOutcome(c) : parseInt(c.hash.slice(0, 8), 16) % 2 === 0 ? { status: 'failed' as const, reason: 'half fail' } : syntheticOutcome(c);
        return r;
      });
      for (const c of cs) {
        expect(validateDna(c.dna, { primitives: o.primitives }).ok, `candidate ${c.id} is not a valid DNA`).toBe(true);
        expect(failed.has(c.hash), `candidate ${c.id} repeats a program that failed`).toBe(false);
        if (c.id > 0 && parseInt(c.hash.slice(0, 8), 16) % 2 === 0) failed.add(c.hash);
      }
      expect(cs.length).toBe(total);
    });

    it('tolerates results told in any order', () => {
      const s = definition.create(context(9));
      const batch = s.ask(6);
      for (const c of [...batch].reverse()) s.tell(c, syntheticOutcome(c));
      const more = s.ask(3);
      expect(more.map((c) => c.id)).toEqual([6, 7, 8]);
    });
  });
}
