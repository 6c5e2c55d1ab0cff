import { readFileSync } from 'node:fs';
import type { Dna } from '../types.js';

export const VANILLA_PATH = new URL('./vanilla.dna.json', import.meta.url);

/** A fresh copy of the vanilla Transformer seed (a hand-written vanilla Transformer, independent of the baselines package) as raw JSON. */
export function vanillaJson(): Record<string, any> {
  return JSON.parse(readFileSync(VANILLA_PATH, 'utf8'));
}

/** The seed with every default filled in, as `validateDna` returns it. */
export function vanilla(): Dna {
  const raw = vanillaJson();
  delete raw.$schema;
  for (const s of raw.subprograms) {
    s.instructions = s.instructions.map((i: Record<string, unknown>) => ({
      input1: 0, input2: 0, constant: 0, dimSize: 0, target: 0, branching: 1, ...i,
    }));
  }
  return raw as Dna;
}
