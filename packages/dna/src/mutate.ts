import type { Rng } from '@primer-search/core';
import { primitives as defaultPrimitives, type PrimitiveRegistry } from '@primer-search/primitives';
import { analyzeDna, readsOf } from './analyze.js';
import { dnaHash } from './canonical.js';
import { MutationError, type DnaValidationError } from './errors.js';
import { validateDna } from './validate.js';
import {
  BRANCHINGS,
  CALL,
  RELATIVE_DIMS,
  inputCount,
  subprogramLabel,
  type Dna,
  type Instruction,
} from './types.js';

export const MUTATION_KINDS = ['delete', 'insert', 'delete-insert', 'change-field', 'swap', 'change-bank'] as const;
export type MutationKind = (typeof MUTATION_KINDS)[number];

export interface Mutation {
  kind: MutationKind;
  subprogram: number;
  /** The instruction changed, inserted or deleted (the first one, for a swap). */
  instruction?: number;
  field?: string;
  from?: unknown;
  to?: unknown;
  description: string;
}

export interface MutateOptions {
  primitives?: PrimitiveRegistry;
  /** Relative weights of the mutation kinds (default: 1 each). */
  weights?: Partial<Record<MutationKind, number>>;
  /** How many mutations to try in all before giving up (default 100). */
  maxAttempts?: number;
  /** Start again from the parent until the child validates (default false: any child that differs). */
  requireValid?: boolean;
}

export interface MutationResult {
  child: Dna;
  /** The mutations applied to the parent, in order (more than one when the first left the program unchanged). */
  mutations: Mutation[];
  parentHash: string;
  childHash: string;
  valid: boolean;
  /** Why the child is invalid, when it is. */
  error?: DnaValidationError;
}

const clone = (dna: Dna): Dna => structuredClone(dna);
const opsOf = (dna: Dna, s: number, registry: PrimitiveRegistry) =>
  s < dna.subprograms.length - 1 ? [...registry.names(), CALL] : registry.names();

/** A random instruction for position `position` of subprogram `s`, over the registered vocabulary. */
export function randomInstruction(dna: Dna, s: number, position: number, rng: Rng, registry: PrimitiveRegistry = defaultPrimitives): Instruction {
  const states = inputCount(s) + position;
  const op = rng.pick(opsOf(dna, s, registry));
  return {
    op,
    input1: rng.int(0, states - 1),
    input2: rng.int(0, states - 1),
    constant: rng.int(0, dna.bank.constants.length - 1),
    dimSize: rng.int(0, dna.bank.dimSizes.length - 1),
    target: op === CALL ? rng.int(s + 1, dna.subprograms.length - 1) : 0,
    branching: 1,
  };
}

const describeIns = (ins: Instruction) => (ins.op === CALL ? `CALL ${ins.target}` : ins.op);

/** Applies one mutation of `kind` in place; returns undefined when it cannot apply (e.g. deleting a sole instruction). */
function applyKind(dna: Dna, kind: MutationKind, rng: Rng, registry: PrimitiveRegistry): Mutation | undefined {
  const s = rng.int(0, dna.subprograms.length - 1);
  const where = subprogramLabel(dna, s);
  const list = dna.subprograms[s]!.instructions;
  const nIn = inputCount(s);

  switch (kind) {
    case 'delete': {
      if (list.length < 2) return undefined;
      const p = rng.int(0, list.length - 1);
      const [gone] = list.splice(p, 1);
      const removed = nIn + p;
      // Readers of the deleted state read its first input instead; later states shift down.
      for (let j = p; j < list.length; j++) {
        for (const f of ['input1', 'input2'] as const) {
          const x = list[j]![f];
          if (x === removed) list[j]![f] = Math.min(gone!.input1, removed - 1);
          else if (x > removed) list[j]![f] = x - 1;
        }
      }
      return { kind, subprogram: s, instruction: p, description: `delete ${where} instruction ${p} (${describeIns(gone!)})` };
    }
    case 'insert': {
      const p = rng.int(0, list.length);
      // Which later instructions are live, and which fields they read (before the insertion).
      const analysis = analyzeDna(dna, registry);
      const targets = list.flatMap((ins, j) => {
        if (j < p || !analysis.live[s]![j]) return [];
        const d = ins.op !== CALL && registry.has(ins.op) ? registry.get(ins.op) : undefined;
        const r = readsOf(ins, d, ins.op === CALL ? analysis.readsInput[ins.target] : undefined);
        return (['input1', 'input2'] as const).filter((f) => r[f]).map((f) => ({ j: j + 1, f }));
      });
      const ins = randomInstruction(dna, s, p, rng, registry);
      const state = nIn + p;
      for (let j = p; j < list.length; j++) {
        for (const f of ['input1', 'input2'] as const) if (list[j]![f] >= state) list[j]![f] += 1;
      }
      list.splice(p, 0, ins);
      let wired = 'as the new output';
      if (p < list.length - 1 && targets.length > 0) {
        // Wire it into the dataflow: a live later instruction reads it (otherwise it would be dead code).
        const { j, f } = rng.pick(targets);
        list[j]![f] = state;
        wired = `read by instruction ${j} as ${f}`;
      }
      return { kind, subprogram: s, instruction: p, description: `insert ${where} instruction ${p}: ${describeIns(ins)}, ${wired}` };
    }
    case 'delete-insert': {
      const p = rng.int(0, list.length - 1);
      const before = list[p]!;
      const ins = randomInstruction(dna, s, p, rng, registry);
      list[p] = ins;
      return {
        kind,
        subprogram: s,
        instruction: p,
        from: describeIns(before),
        to: describeIns(ins),
        description: `replace ${where} instruction ${p}: ${describeIns(before)} -> ${describeIns(ins)}`,
      };
    }
    case 'change-field': {
      const p = rng.int(0, list.length - 1);
      const ins = list[p]!;
      const d = ins.op !== CALL && registry.has(ins.op) ? registry.get(ins.op) : undefined;
      const fields: string[] = ['op', 'branching', 'input1'];
      if (ins.op === CALL || d?.arity === 2) fields.push('input2');
      if (d?.reads.constant && dna.bank.constants.length > 1) fields.push('constant');
      if (d?.reads.dimSize && dna.bank.dimSizes.length > 1) fields.push('dimSize');
      if (ins.op === CALL && ins.target < dna.subprograms.length - 1) fields.push('target');
      const field = rng.pick(fields);
      const other = <T>(options: readonly T[], current: T): T | undefined => {
        const rest = options.filter((o) => o !== current);
        return rest.length ? rng.pick(rest) : undefined;
      };
      const range = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, k) => lo + k);
      let to: unknown;
      const from: unknown = field === 'op' ? describeIns(ins) : ins[field as keyof Instruction];
      switch (field) {
        case 'op': {
          const op = other(opsOf(dna, s, registry), ins.op);
          if (op === undefined) return undefined;
          ins.op = op;
          if (op === CALL) ins.target = rng.int(s + 1, dna.subprograms.length - 1);
          to = describeIns(ins);
          break;
        }
        case 'branching':
          to = ins.branching = other(BRANCHINGS, ins.branching)!;
          break;
        case 'input1':
        case 'input2': {
          const v = other(range(0, nIn + p - 1), ins[field]);
          if (v === undefined) return undefined;
          to = ins[field] = v;
          break;
        }
        case 'constant':
          to = ins.constant = other(range(0, dna.bank.constants.length - 1), ins.constant)!;
          break;
        case 'dimSize':
          to = ins.dimSize = other(range(0, dna.bank.dimSizes.length - 1), ins.dimSize)!;
          break;
        case 'target':
          to = ins.target = other(range(s + 1, dna.subprograms.length - 1), ins.target)!;
          break;
      }
      return {
        kind,
        subprogram: s,
        instruction: p,
        field,
        from,
        to,
        description: `change ${where} instruction ${p} ${field}: ${String(from)} -> ${String(to)}`,
      };
    }
    case 'swap': {
      if (list.length < 2) return undefined;
      const p = rng.int(0, list.length - 2);
      const q = rng.int(p + 1, list.length - 1);
      [list[p], list[q]] = [list[q]!, list[p]!];
      // An instruction may only read earlier states: clamp what now points forward.
      list.forEach((ins, i) => {
        for (const f of ['input1', 'input2'] as const) if (ins[f] >= nIn + i) ins[f] = nIn + i - 1;
      });
      return { kind, subprogram: s, instruction: p, description: `swap ${where} instructions ${p} and ${q}` };
    }
    case 'change-bank': {
      if (rng.bool()) {
        const k = rng.int(0, dna.bank.constants.length - 1);
        const v = dna.bank.constants[k]!;
        // The paper's perturbation: v * 10^X + Y, X and Y standard normal.
        const next = Number((v * 10 ** rng.normal() + rng.normal()).toPrecision(7));
        dna.bank.constants[k] = next;
        return { kind, subprogram: s, field: `constants[${k}]`, from: v, to: next, description: `change bank constant c${k}: ${v} -> ${next}` };
      }
      const k = rng.int(0, dna.bank.dimSizes.length - 1);
      const v = dna.bank.dimSizes[k]!;
      const next = rng.pick(RELATIVE_DIMS.filter((d) => d !== v));
      dna.bank.dimSizes[k] = next;
      return { kind, subprogram: s, field: `dimSizes[${k}]`, from: v, to: next, description: `change bank dimension d${k}: ${v}u -> ${next}u` };
    }
  }
}

/** Applies one mutation of a random (weighted) kind to a copy of `dna`. Retries kinds that cannot apply. */
export function applyRandomMutation(
  dna: Dna,
  rng: Rng,
  options: Pick<MutateOptions, 'primitives' | 'weights'> = {},
): { dna: Dna; mutation: Mutation } {
  const registry = options.primitives ?? defaultPrimitives;
  const weights = MUTATION_KINDS.map((k) => options.weights?.[k] ?? 1);
  for (let attempt = 0; attempt < 64; attempt++) {
    const copy = clone(dna);
    const kind = rng.weighted(MUTATION_KINDS, weights);
    const mutation = applyKind(copy, kind, rng, registry);
    if (mutation) return { dna: copy, mutation };
  }
  throw new MutationError('no mutation kind with a positive weight applies to this DNA');
}

/**
 * The paper's mutation step: a random mutation of the parent; while the child computes
 * the same program as its parent (same canonical hash), it is mutated again. With
 * `requireValid`, invalid children are discarded and the step starts over from the parent.
 * Deterministic for a given RNG state.
 */
export function mutateDna(parent: Dna, rng: Rng, options: MutateOptions = {}): MutationResult {
  const registry = options.primitives ?? defaultPrimitives;
  const maxAttempts = options.maxAttempts ?? 100;
  const parentHash = dnaHash(parent, { primitives: registry });
  let child = parent;
  let mutations: Mutation[] = [];
  let lastInvalid: MutationResult | undefined;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const step = applyRandomMutation(child, rng, options);
    child = step.dna;
    mutations.push(step.mutation);
    const childHash = dnaHash(child, { primitives: registry });
    if (childHash === parentHash) continue;
    const check = validateDna(child, { primitives: registry });
    const result: MutationResult = check.ok
      ? { child, mutations, parentHash, childHash, valid: true }
      : { child, mutations, parentHash, childHash, valid: false, error: check.error };
    if (check.ok || !options.requireValid) return result;
    lastInvalid = result;
    child = parent;
    mutations = [];
  }
  throw new MutationError(
    options.requireValid && lastInvalid
      ? `no valid child in ${maxAttempts} mutations; the last invalid one: ${lastInvalid.error?.message}`
      : `${maxAttempts} mutations in a row left the program unchanged`,
  );
}
