import { baselineDna } from '@primer-search/baselines';
import { Rng } from '@primer-search/core';
import { mutateDna, validateDna, type Dna } from '@primer-search/dna';

/** `count` random valid mutants of the vanilla block, each of the one before, drawn from `stream` (the same every run), named "vanilla mutant N". */
export function vanillaMutants(stream: string, count: number, dModel: number): Array<readonly [string, Dna]> {
  const r = validateDna(baselineDna('vanilla', { dModel }));
  if (!r.ok) throw r.error;
  const rng = Rng.create(stream);
  let dna: Dna = r.dna;
  return Array.from({ length: count }, (_, i) => {
    dna = mutateDna(dna, rng, { requireValid: true }).child;
    return [`vanilla mutant ${i + 1}`, dna] as const;
  });
}
