import { quote } from '@primer-search/core';
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
import { CALL, DNA_LIMITS, inputCount, subprogramLabel, type Dna, type Instruction } from './types.js';

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
  /** The size of the block the program builds (live code only), counted without building it. */
  size: ProgramSize;
}

/** How big a program is once instantiated (see DNA_LIMITS). */
export interface ProgramSize {
  subprograms: number;
  instructions: number;
  /** Nested calls from main to the deepest live subprogram (main alone is 1). */
  callDepth: number;
  /** Subprogram instances the block builds, branches counted. */
  instances: number;
  /** Primitive applications the block runs, branches counted. */
  operations: number;
}

const count = (n: number) => n.toLocaleString('en-US');

/**
 * The program's size, counted over live calls bottom-up (callees are numbered above their
 * callers), so a fan-out of 16^6 instances is counted in microseconds, never built.
 */
function programSize(dna: Dna, live: boolean[][], used: boolean[]): ProgramSize {
  const n = dna.subprograms.length;
  const depth = new Array<number>(n).fill(1);
  const instances = new Array<number>(n).fill(1);
  const operations = new Array<number>(n).fill(0);
  for (let s = n - 1; s >= 0; s--) {
    dna.subprograms[s]!.instructions.forEach((ins, i) => {
      if (!live[s]![i]) return;
      if (ins.op === CALL) {
        if (ins.target <= s || ins.target >= n) return; // a structural error, reported elsewhere
        depth[s] = Math.max(depth[s]!, 1 + depth[ins.target]!);
        instances[s]! += ins.branching * instances[ins.target]!;
        operations[s]! += ins.branching * operations[ins.target]!;
      } else {
        operations[s]! += ins.branching;
      }
    });
  }
  return {
    subprograms: n,
    instructions: dna.subprograms.reduce((a, sub) => a + sub.instructions.length, 0),
    callDepth: used[0] ? depth[0]! : 1,
    instances: instances[0]!,
    operations: operations[0]!,
  };
}

/** Issues for each limit of DNA_LIMITS the program goes over, naming the limit. */
export function sizeIssues(size: ProgramSize): DnaIssue[] {
  const over: DnaIssue[] = [];
  const check = (value: number, limit: number, what: string) => {
    if (value > limit) over.push({ message: `${what}: ${count(value)}, over the limit of ${count(limit)} (DNA_LIMITS)` });
  };
  check(size.subprograms, DNA_LIMITS.subprograms, 'the program has too many subprograms');
  check(size.instructions, DNA_LIMITS.instructions, 'the program has too many instructions');
  check(size.callDepth, DNA_LIMITS.callDepth, 'the program nests calls too deeply (call depth)');
  check(size.instances, DNA_LIMITS.instances, 'the block would build too many subprogram instances (calls times branching)');
  check(size.operations, DNA_LIMITS.operations, 'the block would run too many primitive applications (ops times branching, through every call)');
  return over;
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
  const tooLarge = sizeIssues({ subprograms: n, instructions: dna.subprograms.reduce((a, sub) => a + sub.instructions.length, 0), callDepth: 0, instances: 0, operations: 0 });
  if (tooLarge.length > 0) {
    // refused before any pass over the program
    const none = dna.subprograms.map((sub) => sub.instructions.map(() => false));
    const size = { subprograms: n, instructions: 0, callDepth: 0, instances: 0, operations: 0 };
    return { issues: tooLarge, live: none, readsInput: dna.subprograms.map(() => [false, false]), used: dna.subprograms.map((_, s) => s === 0), shapes: undefined, size };
  }
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
          message: `unknown op ${quote(ins.op)}${close.length ? ` (did you mean ${close.join(' or ')}?)` : ''}; see \`primer primitives\``,
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

  const size = programSize(dna, live, used);
  if (structuralErrors) return { issues, live, readsInput, used, shapes: undefined, size };
  // Shape inference below recurses along calls: only within the limits.
  const over = sizeIssues(size);
  if (over.length > 0) return { issues: [...issues, ...over], live, readsInput, used, shapes: undefined, size };

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
  return { issues, live, readsInput, used, shapes, size };
}
