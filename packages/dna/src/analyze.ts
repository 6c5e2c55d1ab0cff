import {
  MODEL_UNITS,
  formatWidth,
  primitives as defaultPrimitives,
  scaleWidth,
  width,
  widthEquals,
  type PrimitiveDescriptor,
  type PrimitiveRegistry,
  type Width,
} from '@primer-search/primitives';
import type { DnaIssue } from './errors.js';
import { CALL, inputCount, subprogramLabel, type Dna, type Instruction } from './types.js';

/** Shapes of one subprogram for one combination of input widths (one call signature). */
export interface CallShapes {
  subprogram: number;
  inputs: Width[];
  /** Width of every hidden state; undefined for dead states and states after an error. */
  states: Array<Width | undefined>;
  /** Undefined when an error prevented inference. */
  output: Width | undefined;
  /** For each live CALL instruction (by index): the callee's shapes, shared by all its branches. */
  calls: Map<number, CallShapes>;
}

export interface DnaAnalysis {
  issues: DnaIssue[];
  /** live[s][i]: instruction i contributes to subprogram s's output. */
  live: boolean[][];
  /** Which of its inputs (h0, h1) each subprogram's live code reads. */
  readsInput: Array<[boolean, boolean]>;
  /** Subprograms reached from main through live calls (main included). */
  used: boolean[];
  /** MAIN's shapes, called with the block input; undefined when structural errors stopped inference. */
  shapes: CallShapes | undefined;
}

/** Which fields an instruction reads, given the callee's input use for calls. */
export interface Reads {
  input1: boolean;
  input2: boolean;
  constant: boolean;
  dimSize: boolean;
}

export function readsOf(
  ins: Instruction,
  descriptor: PrimitiveDescriptor | undefined,
  calleeReads: [boolean, boolean] | undefined,
): Reads {
  if (ins.op === CALL) {
    const [a, b] = calleeReads ?? [true, true];
    return { input1: a, input2: b, constant: false, dimSize: false };
  }
  if (!descriptor) return { input1: true, input2: true, constant: false, dimSize: false };
  return {
    input1: true,
    input2: descriptor.arity === 2,
    constant: descriptor.reads.constant,
    dimSize: descriptor.reads.dimSize,
  };
}

/**
 * Everything the DNA package knows about a program without running it: structural errors
 * (unknown ops, indices out of range, calls to lower-numbered subprograms), which
 * instructions are live, and the symbolic shape of every live hidden state, inferred
 * through every call site. Never throws on a schema-valid DNA.
 */
export function analyzeDna(dna: Dna, registry: PrimitiveRegistry = defaultPrimitives): DnaAnalysis {
  const n = dna.subprograms.length;
  const issues: DnaIssue[] = [];
  const live: boolean[][] = dna.subprograms.map((s) => s.instructions.map(() => false));
  const readsInput: Array<[boolean, boolean]> = dna.subprograms.map(() => [false, false]);
  const reads: Reads[][] = dna.subprograms.map(() => []);
  let structuralErrors = false;

  const describe = (op: string) => (op !== CALL && registry.has(op) ? registry.get(op) : undefined);

  // Callees are numbered above their callers: walk from the last subprogram to MAIN so
  // each callee's input use is known before its callers are checked.
  for (let s = n - 1; s >= 0; s--) {
    const { instructions } = dna.subprograms[s]!;
    const nIn = inputCount(s);
    instructions.forEach((ins, i) => {
      const at = { subprogram: s, instruction: i };
      const states = nIn + i;
      let calleeReads: [boolean, boolean] | undefined;
      if (ins.op === CALL) {
        if (ins.target <= s || ins.target >= n) {
          structuralErrors = true;
          issues.push({
            ...at,
            field: 'target',
            message:
              ins.target <= s
                ? `CALL may only call a subprogram numbered above ${s}, got ${ins.target}`
                : `CALL target ${ins.target} does not exist (subprograms are 0..${n - 1})`,
          });
        } else {
          calleeReads = readsInput[ins.target];
        }
      } else if (!registry.has(ins.op)) {
        structuralErrors = true;
        const close = registry.suggest(ins.op);
        issues.push({
          ...at,
          field: 'op',
          message: `unknown op "${ins.op}"${close.length ? ` (did you mean ${close.join(' or ')}?)` : ''}; see \`primer primitives\``,
        });
      }
      const r = readsOf(ins, describe(ins.op), calleeReads);
      reads[s]![i] = r;
      for (const field of ['input1', 'input2'] as const) {
        if (r[field] && ins[field] >= states) {
          structuralErrors = true;
          issues.push({
            ...at,
            field,
            message: `h${ins[field]} does not exist here: instruction ${i} can read h0..h${states - 1}`,
          });
        }
      }
      if (r.constant && ins.constant >= dna.bank.constants.length) {
        structuralErrors = true;
        issues.push({
          ...at,
          field: 'constant',
          message: `bank constant ${ins.constant} does not exist (the bank has ${dna.bank.constants.length})`,
        });
      }
      if (r.dimSize && ins.dimSize >= dna.bank.dimSizes.length) {
        structuralErrors = true;
        issues.push({
          ...at,
          field: 'dimSize',
          message: `bank dimension size ${ins.dimSize} does not exist (the bank has ${dna.bank.dimSizes.length})`,
        });
      }
    });

    // Liveness: the last instruction is the output; walk back along the reads.
    const liveStates = new Set<number>([nIn + instructions.length - 1]);
    for (let i = instructions.length - 1; i >= 0; i--) {
      if (!liveStates.has(nIn + i)) continue;
      live[s]![i] = true;
      const r = reads[s]![i]!;
      const ins = instructions[i]!;
      if (r.input1 && ins.input1 < nIn + i) liveStates.add(ins.input1);
      if (r.input2 && ins.input2 < nIn + i) liveStates.add(ins.input2);
    }
    readsInput[s] = [liveStates.has(0), nIn > 1 && liveStates.has(1)];
  }

  const used = dna.subprograms.map((_, s) => s === 0);
  for (let s = 0; s < n; s++) {
    if (!used[s]) continue;
    dna.subprograms[s]!.instructions.forEach((ins, i) => {
      if (live[s]![i] && ins.op === CALL && ins.target > s && ins.target < n) used[ins.target] = true;
    });
  }

  if (structuralErrors) return { issues, live, readsInput, used, shapes: undefined };

  const memo = new Map<string, CallShapes>();
  const label = (s: number) => subprogramLabel(dna, s);

  const infer = (s: number, inputs: Width[], calledFrom: string | undefined): CallShapes => {
    const key = `${s}|${inputs.map(formatWidth).join(',')}`;
    const hit = memo.get(key);
    if (hit) return hit;
    const { instructions } = dna.subprograms[s]!;
    const nIn = inputCount(s);
    const result: CallShapes = { subprogram: s, inputs, states: [...inputs], output: undefined, calls: new Map() };
    memo.set(key, result);
    instructions.forEach((ins, i) => {
      if (!live[s]![i]) return;
      const r = reads[s]![i]!;
      const in1 = r.input1 ? result.states[ins.input1] : width.one();
      const in2 = r.input2 ? result.states[ins.input2] : width.one();
      if (!in1 || !in2) return; // an earlier error; already reported
      const here = `${label(s)} h${nIn + i}`;
      let out: Width | undefined;
      if (ins.op === CALL) {
        const callee = infer(ins.target, [in1, in2], calledFrom ? `${calledFrom} -> ${here}` : here);
        result.calls.set(i, callee);
        out = callee.output;
      } else {
        const d = registry.get(ins.op);
        const rule = d.outputWidth(d.arity === 2 ? [in1, in2] : [in1], {
          dimSize: r.dimSize ? (dna.bank.dimSizes[ins.dimSize] as number) : 1,
        });
        if ('error' in rule) {
          issues.push({ subprogram: s, instruction: i, field: rule.field, message: rule.error, calledFrom });
        } else {
          out = rule.width;
        }
      }
      result.states[nIn + i] = out && scaleWidth(out, ins.branching);
    });
    result.output = result.states[nIn + instructions.length - 1];
    return result;
  };

  const shapes = infer(0, [width.model()], undefined);
  if (shapes.output && !widthEquals(shapes.output, width.model())) {
    const last = dna.subprograms[0]!.instructions.length - 1;
    issues.push({
      subprogram: 0,
      instruction: last,
      message: `main must return the block input's shape [batch, seq, ${MODEL_UNITS}u], but its last instruction returns [batch, seq, ${formatWidth(shapes.output)}]`,
    });
  }
  return { issues, live, readsInput, used, shapes };
}
