// What a search optimises besides perplexity, and the constraints that keep a comparison fair
// (issue: search fidelity). Objectives are read from a finished evaluation; constraints are
// decided before training from the compiler's estimates.
import type { CurveRecord } from './records.js';

/** What an objective is read from: a finished evaluation as the store keeps it. */
export interface ObjectiveSource {
  status: 'completed' | 'hurdle' | 'failed';
  fitness: number | null;
  parameters: number | null;
  steps: number;
  trainSeconds: number;
  curve: CurveRecord[];
}

export interface ObjectiveDefinition {
  name: string;
  description: string;
  /** Whether lower or higher is better. */
  direction: 'min' | 'max';
  /** Its value for an evaluation (undefined: not known, e.g. a failure, or a record from before it was measured). */
  value(e: ObjectiveSource): number | undefined;
}

const finite = (x: number | null | undefined) => (x !== null && x !== undefined && Number.isFinite(x) ? x : undefined);
const lastWith = <K extends keyof CurveRecord>(curve: CurveRecord[], key: K) => [...curve].reverse().find((c) => c[key] !== undefined);

/** The objectives a search can optimise, by name. */
export const OBJECTIVES: Record<string, ObjectiveDefinition> = {
  perplexity: {
    name: 'perplexity',
    description: 'validation perplexity at the end of the budget (or at the hurdle that stopped it): the fitness',
    direction: 'min',
    value: (e) => (e.status === 'failed' ? undefined : finite(e.fitness)),
  },
  parameters: {
    name: 'parameters',
    description: "the model's parameters, embedding included",
    direction: 'min',
    value: (e) => (e.status === 'failed' ? undefined : finite(e.parameters)),
  },
  flops_per_token: {
    name: 'flops_per_token',
    description: "training FLOPs per token (the compiler's estimate: 3x the forward pass)",
    direction: 'min',
    value: (e) => {
      const c = e.status === 'failed' ? undefined : lastWith(e.curve, 'flops');
      return c && c.tokens > 0 ? finite(c.flops! / c.tokens) : undefined;
    },
  },
  step_time: {
    name: 'step_time',
    description: 'seconds per training step, measured on the worker that trained it (machine-dependent: compare only on one kind of machine)',
    direction: 'min',
    value: (e) => (e.status === 'failed' || e.steps <= 0 ? undefined : finite(e.trainSeconds / e.steps)),
  },
  in_context: {
    name: 'in_context',
    description: 'the in-context score at the last evaluation: validation loss over the first eighth of the positions minus over the last eighth (nats; higher: the program uses its context more)',
    direction: 'max',
    value: (e) => (e.status === 'failed' ? undefined : finite(lastWith(e.curve, 'inContext')?.inContext)),
  },
  recall: {
    name: 'recall',
    description: 'on the mqar dataset: the share of queries answered right at the last evaluation (higher is better)',
    direction: 'max',
    value: (e) => (e.status === 'failed' ? undefined : finite(lastWith(e.curve, 'recall')?.recall)),
  },
};

export class ObjectiveError extends Error {}

/** `perplexity,parameters` as a checked list: known names, no repeats, perplexity among them. */
export function parseObjectives(text: string): string[] {
  const names = text
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  for (const n of names) if (!Object.hasOwn(OBJECTIVES, n)) throw new ObjectiveError(`no objective ${JSON.stringify(n)}; known: ${Object.keys(OBJECTIVES).join(', ')}`);
  if (new Set(names).size !== names.length) throw new ObjectiveError(`an objective is named twice in ${JSON.stringify(text)}`);
  if (!names.includes('perplexity')) throw new ObjectiveError('perplexity must be among the objectives: it is what the search is about (e.g. perplexity,parameters)');
  return names;
}

/** An evaluation's objectives, each as a quantity to minimise (a higher-is-better one negated); undefined when one is not known. */
export function objectiveVector(e: ObjectiveSource, names: string[]): number[] | undefined {
  const out: number[] = [];
  for (const n of names) {
    const d = Object.hasOwn(OBJECTIVES, n) ? OBJECTIVES[n] : undefined;
    if (!d) throw new ObjectiveError(`no objective ${JSON.stringify(n)}`);
    const v = d.value(e);
    if (v === undefined) return undefined;
    out.push(d.direction === 'min' ? v : -v);
  }
  return out;
}

/** The quantities a constraint can bound: known before training, from the compiler's estimate of the blocks. */
export const CONSTRAINED = {
  block_parameters: "the blocks' parameters (the layers' sum; the embedding and softmax, the same in every program, left out: not the objective parameters)",
  block_flops_per_token: "the blocks' forward FLOPs per token (the layers' sum; not the objective flops_per_token, which counts training and the softmax)",
} as const;
export type ConstrainedQuantity = keyof typeof CONSTRAINED;

export interface Constraint {
  /** As written, e.g. `block_parameters>=0.9*seed`. */
  text: string;
  quantity: ConstrainedQuantity;
  op: '>=' | '<=';
  /** The bound: `factor` times the seed's value when `relative`, else `factor` itself. */
  factor: number;
  relative: boolean;
}

/** `block_parameters>=0.9*seed`, `block_flops_per_token<=1.1*seed`, `block_parameters<=2e6`: checked, or an ObjectiveError saying what is wrong. */
export function parseConstraint(text: string): Constraint {
  const m = /^\s*([a-z_]+)\s*(>=|<=)\s*([0-9.eE+-]+)\s*(\*\s*seed)?\s*$/.exec(text);
  if (!m) throw new ObjectiveError(`cannot read the constraint ${JSON.stringify(text)}: write QUANTITY>=NUMBER*seed or QUANTITY<=NUMBER (e.g. "block_parameters>=0.9*seed", "block_flops_per_token<=1.1*seed", "block_parameters<=2e6")`);
  const [, quantity, op, number, seed] = m;
  if (!Object.hasOwn(CONSTRAINED, quantity!)) throw new ObjectiveError(`the constraint ${JSON.stringify(text)} bounds ${quantity}; a constraint can bound ${Object.keys(CONSTRAINED).join(' or ')} (known before training)`);
  const factor = Number(number);
  if (!Number.isFinite(factor) || factor <= 0) throw new ObjectiveError(`the constraint ${JSON.stringify(text)} needs a positive number, got ${number}`);
  return { text: text.replace(/\s+/g, ''), quantity: quantity as ConstrainedQuantity, op: op as '>=' | '<=', factor, relative: Boolean(seed) };
}

/**
 * Why a program breaks a constraint (its values and the seed's, from the compiler's estimates),
 * or undefined when it keeps them all.
 */
export function constraintFailure(constraints: Constraint[], program: Record<ConstrainedQuantity, number>, seed: Record<ConstrainedQuantity, number>): string | undefined {
  for (const c of constraints) {
    const bound = c.relative ? c.factor * seed[c.quantity] : c.factor;
    const v = program[c.quantity];
    const ok = c.op === '>=' ? v >= bound : v <= bound;
    if (!ok) {
      const n = (x: number) => Math.round(x).toLocaleString('en-US');
      return `constraint: ${c.text} not kept: ${c.quantity} ${n(v)} ${c.op === '>=' ? '<' : '>'} ${n(bound)}${c.relative ? ` (${c.factor} x the seed's ${n(seed[c.quantity])})` : ''}; decided before training from the compiler's estimate`;
    }
  }
  return undefined;
}
