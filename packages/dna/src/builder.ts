import { PrimerError } from '@primer-search/core';
import { CALL, DNA_FORMAT, DNA_VERSION, RELATIVE_DIMS, type Branching, type Dna, type Instruction } from './types.js';

/** A hidden state inside the subprogram being written. */
export interface Ref {
  readonly state: number;
  readonly owner: SubprogramHandle;
}

/** A subprogram defined with `DnaBuilder.subprogram`, callable from others. */
export interface SubprogramHandle {
  readonly name: string;
}

interface Draft {
  handle: SubprogramHandle;
  instructions: Array<Omit<Instruction, 'target'> & { callee?: SubprogramHandle }>;
}

export interface OpOptions {
  /** A bank constant value (added to the bank once, shared by equal values). */
  constant?: number;
  /** A relative width (units of dModel/8). */
  dim?: (typeof RELATIVE_DIMS)[number];
  branching?: Branching;
}

/** Writes the instructions of one subprogram. */
export class SubprogramWriter {
  constructor(
    private readonly draft: Draft,
    private readonly bank: { constant(v: number): number; dim(d: number): number },
    private readonly inputs: number,
  ) {}

  private push(ins: Draft['instructions'][number]): Ref {
    this.draft.instructions.push(ins);
    return { state: this.inputs + this.draft.instructions.length - 1, owner: this.draft.handle };
  }

  private index(r: Ref | undefined, fallback: number): number {
    if (!r) return fallback;
    if (r.owner !== this.draft.handle) {
      throw new PrimerError('BUILDER', `a state of subprogram "${r.owner.name}" was used in "${this.draft.handle.name}"`);
    }
    return r.state;
  }

  /** A primitive instruction. */
  op(name: string, input1: Ref, input2?: Ref, options: OpOptions = {}): Ref {
    return this.push({
      op: name,
      input1: this.index(input1, 0),
      input2: this.index(input2, 0),
      constant: options.constant === undefined ? 0 : this.bank.constant(options.constant),
      dimSize: options.dim === undefined ? 0 : this.bank.dim(options.dim),
      branching: options.branching ?? 1,
    });
  }

  /** A call of another subprogram (which must not call back up: the builder numbers callees after callers). */
  call(callee: SubprogramHandle, input1: Ref, input2?: Ref, options: { branching?: Branching } = {}): Ref {
    return this.push({
      op: CALL,
      callee,
      input1: this.index(input1, 0),
      input2: this.index(input2, 0),
      constant: 0,
      dimSize: 0,
      branching: options.branching ?? 1,
    });
  }
}

/**
 * Writes a DNA with named subprograms and state references instead of indices:
 *
 *   const b = new DnaBuilder('relu-mlp');
 *   const relu = b.subprogram('relu', (s, x) => s.op('C_MUL', s.op('ADD', x, s.op('ABS', x)), undefined, { constant: 0.5 }));
 *   b.main((s, x) => s.op('ADD', x, s.call(relu, s.op('CONV_1X1', x, undefined, { dim: 8 }))));
 *   const dna = b.build();
 *
 * Subprograms are numbered so that every call goes to a higher number (MAIN is 0).
 */
export class DnaBuilder {
  private readonly drafts: Draft[] = [];
  private mainDraft: Draft | undefined;
  private readonly constants: number[] = [];
  private readonly dims: number[] = [];
  private readonly bank = {
    constant: (v: number) => {
      const k = this.constants.indexOf(v);
      return k >= 0 ? k : this.constants.push(v) - 1;
    },
    dim: (d: number) => {
      if (!(RELATIVE_DIMS as readonly number[]).includes(d)) {
        throw new PrimerError('BUILDER', `width ${d} is not one of ${RELATIVE_DIMS.join(', ')}`);
      }
      const k = this.dims.indexOf(d);
      return k >= 0 ? k : this.dims.push(d) - 1;
    },
  };

  constructor(private readonly name?: string) {}

  subprogram(name: string, body: (s: SubprogramWriter, input1: Ref, input2: Ref) => Ref): SubprogramHandle {
    const handle: SubprogramHandle = { name };
    const draft: Draft = { handle, instructions: [] };
    this.drafts.push(draft);
    this.finish(draft, body(new SubprogramWriter(draft, this.bank, 2), { state: 0, owner: handle }, { state: 1, owner: handle }));
    return handle;
  }

  main(body: (s: SubprogramWriter, x: Ref) => Ref): void {
    const handle: SubprogramHandle = { name: 'main' };
    const draft: Draft = { handle, instructions: [] };
    this.mainDraft = draft;
    this.finish(draft, body(new SubprogramWriter(draft, this.bank, 1), { state: 0, owner: handle }));
  }

  private finish(draft: Draft, out: Ref): void {
    const last = (draft.handle === this.mainDraft?.handle ? 1 : 2) + draft.instructions.length - 1;
    if (out.owner !== draft.handle || out.state !== last) {
      throw new PrimerError('BUILDER', `subprogram "${draft.handle.name}" must return its last instruction's state (a subprogram returns its last state)`);
    }
  }

  build(): Dna {
    if (!this.mainDraft) throw new PrimerError('BUILDER', 'no main(): a DNA needs subprogram 0');
    // Callers before callees: reverse post-order of a depth-first walk from MAIN.
    const byHandle = new Map(this.drafts.map((d) => [d.handle, d]));
    const order: Draft[] = [];
    const state = new Map<Draft, 'open' | 'done'>();
    const visit = (d: Draft) => {
      if (state.get(d) === 'done') return;
      if (state.get(d) === 'open') throw new PrimerError('BUILDER', `subprogram "${d.handle.name}" calls itself through others`);
      state.set(d, 'open');
      for (const ins of d.instructions) if (ins.callee) visit(byHandle.get(ins.callee)!);
      state.set(d, 'done');
      order.push(d);
    };
    visit(this.mainDraft);
    order.reverse();
    const index = new Map(order.map((d, i) => [d.handle, i]));
    return {
      format: DNA_FORMAT,
      version: DNA_VERSION,
      ...(this.name ? { name: this.name } : {}),
      bank: { constants: this.constants.length ? [...this.constants] : [0], dimSizes: this.dims.length ? [...this.dims] : [1] },
      subprograms: order.map((d) => ({
        name: d.handle.name,
        instructions: d.instructions.map(({ callee, ...ins }) => ({ ...ins, target: callee ? index.get(callee)! : 0 })),
      })),
    };
  }
}

