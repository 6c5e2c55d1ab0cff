import { describe, expect, it } from 'vitest';
import { constraintFailure, objectiveVector, OBJECTIVES, parseConstraint, parseObjectives, type ObjectiveSource } from './objectives.js';

const evaluation = (over: Partial<ObjectiveSource> = {}): ObjectiveSource => ({
  status: 'completed',
  fitness: 42,
  parameters: 1000,
  steps: 50,
  trainSeconds: 5,
  curve: [
    { step: 25, tokens: 1000, seconds: 2, perplexity: 60, flops: 3e6, inContext: 0.1 },
    { step: 50, tokens: 2000, seconds: 5, perplexity: 42, flops: 6e6, inContext: 0.25 },
  ],
  ...over,
});

describe('objectives', () => {
  it('read from an evaluation: perplexity, parameters, training FLOPs per token, seconds per step, the in-context score', () => {
    const e = evaluation();
    expect(Object.fromEntries(Object.entries(OBJECTIVES).map(([n, d]) => [n, d.value(e)]))).toEqual({ perplexity: 42, parameters: 1000, flops_per_token: 3000, step_time: 0.1, in_context: 0.25 });
    // higher-is-better ones negated, in the order asked
    expect(objectiveVector(e, ['in_context', 'perplexity', 'parameters'])).toEqual([-0.25, 42, 1000]);
    // unknown: a failure, a record from before the in-context score
    expect(objectiveVector(evaluation({ status: 'failed', fitness: null }), ['perplexity', 'parameters'])).toBeUndefined();
    expect(objectiveVector(evaluation({ curve: [{ step: 50, tokens: 2000, seconds: 5, perplexity: 42 }] }), ['perplexity', 'in_context'])).toBeUndefined();
    // a hurdle stop counts, with its perplexity there
    expect(objectiveVector(evaluation({ status: 'hurdle', fitness: 80 }), ['perplexity', 'parameters'])).toEqual([80, 1000]);
  });

  it('are parsed with perplexity among them, known names only, none twice', () => {
    expect(parseObjectives('perplexity, parameters')).toEqual(['perplexity', 'parameters']);
    expect(parseObjectives('perplexity')).toEqual(['perplexity']);
    expect(() => parseObjectives('parameters')).toThrow(/perplexity must be among the objectives/);
    expect(() => parseObjectives('perplexity,params')).toThrow(/no objective "params"; known: perplexity, parameters, flops_per_token, step_time, in_context/);
    expect(() => parseObjectives('perplexity,perplexity')).toThrow(/named twice/);
    // names every object has are not objectives
    for (const n of ['constructor', 'toString', '__proto__']) expect(() => parseObjectives(`perplexity,${n}`)).toThrow(/no objective/);
    expect(() => objectiveVector(evaluation(), ['perplexity', 'constructor'])).toThrow(/no objective/);
  });
});

describe('constraints', () => {
  it('are parsed relative to the seed or absolute, and refuse what they cannot decide before training', () => {
    expect(parseConstraint('block_parameters >= 0.9*seed')).toEqual({ text: 'block_parameters>=0.9*seed', quantity: 'block_parameters', op: '>=', factor: 0.9, relative: true });
    expect(parseConstraint('block_flops_per_token<=2e6')).toEqual({ text: 'block_flops_per_token<=2e6', quantity: 'block_flops_per_token', op: '<=', factor: 2e6, relative: false });
    // the objectives' names, and names every object has, are not quantities a constraint bounds
    expect(() => parseConstraint('parameters>=0.9*seed')).toThrow(/bounds parameters; a constraint can bound block_parameters or block_flops_per_token/);
    expect(() => parseConstraint('constructor>=1*seed')).toThrow(/bounds constructor/);
    expect(() => parseConstraint('perplexity<=100')).toThrow(/bounds perplexity; a constraint can bound block_parameters or block_flops_per_token/);
    expect(() => parseConstraint('block_parameters=1')).toThrow(/cannot read the constraint/);
    expect(() => parseConstraint('block_parameters>=-1*seed')).toThrow(/cannot read|positive number/);
    expect(() => parseConstraint('block_parameters>=0*seed')).toThrow(/positive number/);
  });

  it('say which one a program breaks, with its value, the bound and the seed', () => {
    const seed = { block_parameters: 100_000, block_flops_per_token: 2e6 };
    const cs = ['block_parameters>=0.9*seed', 'block_flops_per_token<=1.1*seed'].map(parseConstraint);
    expect(constraintFailure(cs, { block_parameters: 95_000, block_flops_per_token: 2.1e6 }, seed)).toBeUndefined();
    expect(constraintFailure(cs, { block_parameters: 90_000, block_flops_per_token: 2.2e6 }, seed)).toBeUndefined();
    expect(constraintFailure(cs, { block_parameters: 50_000, block_flops_per_token: 1e6 }, seed)).toBe(
      "constraint: block_parameters>=0.9*seed not kept: block_parameters 50,000 < 90,000 (0.9 x the seed's 100,000); decided before training from the compiler's estimate",
    );
    expect(constraintFailure(cs, { block_parameters: 120_000, block_flops_per_token: 3e6 }, seed)).toMatch(/^constraint: block_flops_per_token<=1\.1\*seed not kept: block_flops_per_token 3,000,000 > 2,200,000/);
    expect(constraintFailure([parseConstraint('block_parameters<=1e5')], { block_parameters: 100_001, block_flops_per_token: 0 }, seed)).toMatch(/block_parameters 100,001 > 100,000;/);
  });
});
