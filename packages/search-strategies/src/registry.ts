import { createRegistry, type Registry } from '@primer-search/core';
import { evolution, pareto } from './evolution.js';
import { hillClimb } from './hill-climb.js';
import { random } from './random.js';
import type { StrategyDefinition } from './strategy.js';

export type BuiltinStrategyName = 'evolution' | 'pareto' | 'random' | 'hill-climb';
export type StrategyRegistry = Registry<BuiltinStrategyName, StrategyDefinition>;

/** Search strategies by name. Plugins add theirs with `strategies.register(name, definition)`. */
export const strategies: StrategyRegistry = createRegistry<BuiltinStrategyName, StrategyDefinition>('search strategy', {
  validate: (name, d) => {
    if (d?.name !== name) return `its definition's name is ${JSON.stringify(d?.name)}`;
    if (typeof d.create !== 'function') return 'it has no create(context, state) function';
    return undefined;
  },
});

for (const d of [evolution, pareto, random, hillClimb]) strategies.register(d.name, d);
