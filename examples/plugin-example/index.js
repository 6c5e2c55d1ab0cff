// A primer-search plugin: load it with `primer search --plugin <this file or package>`.
// Importing it registers a primitive and a search strategy by name; the search's worker
// processes import it too, so the primitive trains there.
import { definePrimitive, primitives } from '@primer-search/primitives';
import { Proposer, betterThan, checkOptionNames, expectState, integerOption, strategies } from '@primer-search/search-strategies';

/** softsign(x) = x / (1 + |x|): a smooth, bounded activation. */
export const SOFTSIGN = definePrimitive({
  name: 'SOFTSIGN',
  doc: 'x / (1 + |x|), elementwise.',
  category: 'unary',
  arity: 1,
  sequenceMixing: 'none',
  outputWidth: ([w]) => ({ width: w }),
  flops: (s) => 3 * s.batch * s.seqLen * s.outWidth,
  apply: (tf, [x]) => tf.tidy(() => tf.div(x, tf.add(1, tf.abs(x)))),
  code: ({ input1 }) => `tf.div(${input1}, tf.add(1, tf.abs(${input1})))`,
});

/**
 * Truncation selection: every child is a mutation of one of the `keep` best programs that
 * completed so far, chosen uniformly (the seed until something completes).
 * @param {import('@primer-search/search-strategies').StrategyContext} context
 * @param {any} [state]
 * @returns {import('@primer-search/search-strategies').Strategy}
 */
function createTruncation(context, state) {
  checkOptionNames('truncation', context.options, ['keep']);
  const keep = integerOption(context.options, 'keep', 3, 1);
  if (state) expectState('truncation', 1, state);
  const p = new Proposer(context, state?.base);
  /** @type {Array<{ id: number, dna: any, fitness: number }>} */
  let elite = state ? structuredClone(state.elite) : [];
  return {
    name: 'truncation',
    ask(count = 1) {
      const out = [];
      for (let i = 0; i < count; i++) {
        if (p.nextId === 0) out.push(p.seedCandidate());
        else out.push(p.child(elite.length ? elite[p.rng.int(0, elite.length - 1)] : { id: 0, dna: p.seedDna }));
      }
      return out;
    },
    tell(candidate, outcome) {
      p.noteOutcome(candidate, outcome);
      if (outcome.status !== 'completed') return;
      elite.push({ id: candidate.id, dna: candidate.dna, fitness: outcome.fitness });
      elite.sort((a, b) => (betterThan(a.fitness, b.fitness) ? -1 : betterThan(b.fitness, a.fitness) ? 1 : a.id - b.id));
      elite = elite.slice(0, keep);
    },
    state: () => ({ strategy: 'truncation', version: 1, base: p.base(), elite: structuredClone(elite) }),
  };
}

export const truncation = {
  name: 'truncation',
  description: 'truncation selection: mutate one of the `keep` best completed programs',
  options: { keep: 'how many of the best programs to mutate (default 3)' },
  create: createTruncation,
};

// Registering twice (the plugin imported again) is harmless.
if (!primitives.has('SOFTSIGN')) primitives.register('SOFTSIGN', SOFTSIGN);
if (!strategies.has('truncation')) strategies.register('truncation', truncation);
