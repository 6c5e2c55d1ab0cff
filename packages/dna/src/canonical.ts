import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { primitives as defaultPrimitives, type PrimitiveRegistry } from '@primer-search/primitives';
import { analyzeDna, readsOf, type DnaAnalysis } from './analyze.js';
import { DnaValidationError } from './errors.js';
import { CALL, DNA_FORMAT, DNA_VERSION, inputCount, subprogramLabel, type Dna, type Instruction } from './types.js';

/**
 * The canonical form of a DNA: what it computes and nothing else. Dead instructions and
 * uncalled subprograms are dropped, subprograms are renumbered callers-first in the order
 * MAIN reaches them, indices are renumbered, fields an op does not read are 0, names are
 * dropped, and the bank holds only the values live code reads, deduplicated, in order of
 * first use. Two DNAs that differ only in dead code, unused arguments, unused or duplicated
 * bank entries, subprogram numbering or names have the same canonical form.
 */
export function canonicalDna(dna: Dna, options: { primitives?: PrimitiveRegistry; analysis?: DnaAnalysis } = {}): Dna {
  const registry = options.primitives ?? defaultPrimitives;
  const analysis = options.analysis ?? analyzeDna(dna, registry);
  // Structural errors (unknown op, bad index or call) leave the program undefined; a shape
  // error does not: such a DNA still has a well-defined canonical text.
  if (analysis.shapes === undefined) {
    throw new DnaValidationError(analysis.issues, { subprogramName: (i) => subprogramLabel(dna, i) });
  }

  // Renumber used subprograms in reverse post-order of a depth-first walk from MAIN along
  // live calls (callers before callees, independent of how the file numbered them).
  const postOrder: number[] = [];
  const seen = new Set<number>();
  const visit = (s: number) => {
    seen.add(s);
    dna.subprograms[s]!.instructions.forEach((ins, i) => {
      if (analysis.live[s]![i] && ins.op === CALL && !seen.has(ins.target)) visit(ins.target);
    });
    postOrder.push(s);
  };
  visit(0);
  const order = postOrder.reverse();
  const newIndex = new Map(order.map((s, k) => [s, k]));
  const constants: number[] = [];
  const dimSizes: number[] = [];
  const bankIndex = (list: number[], v: number) => {
    const k = list.findIndex((x) => Object.is(x, v) || x === v);
    if (k >= 0) return k;
    list.push(v);
    return list.length - 1;
  };

  const subprograms = order.map((s) => {
    const sub = dna.subprograms[s]!;
    const nIn = inputCount(s);
    const stateMap = new Map<number, number>();
    for (let k = 0; k < nIn; k++) stateMap.set(k, k);
    const instructions: Instruction[] = [];
    sub.instructions.forEach((ins, i) => {
      if (!analysis.live[s]![i]) return;
      const d = ins.op === CALL ? undefined : registry.get(ins.op);
      const r = readsOf(ins, d, ins.op === CALL ? analysis.readsInput[ins.target] : undefined);
      instructions.push({
        op: ins.op,
        input1: r.input1 ? stateMap.get(ins.input1)! : 0,
        input2: r.input2 ? stateMap.get(ins.input2)! : 0,
        constant: r.constant ? bankIndex(constants, dna.bank.constants[ins.constant]!) : 0,
        dimSize: r.dimSize ? bankIndex(dimSizes, dna.bank.dimSizes[ins.dimSize]!) : 0,
        target: ins.op === CALL ? newIndex.get(ins.target)! : 0,
        branching: ins.branching,
      });
      stateMap.set(nIn + i, nIn + instructions.length - 1);
    });
    return { instructions };
  });

  return {
    format: DNA_FORMAT,
    version: DNA_VERSION,
    bank: { constants: constants.length ? constants : [0], dimSizes: dimSizes.length ? dimSizes : [1] },
    subprograms,
  };
}

/** JSON with a fixed key order, so equal DNAs give equal text. */
export function stableDnaJson(dna: Dna): string {
  return JSON.stringify({
    format: dna.format,
    version: dna.version,
    bank: { constants: dna.bank.constants.map((c) => (Object.is(c, -0) ? 0 : c)), dimSizes: dna.bank.dimSizes },
    subprograms: dna.subprograms.map((s) => ({
      instructions: s.instructions.map((i) => [i.op, i.input1, i.input2, i.constant, i.dimSize, i.target, i.branching]),
    })),
  });
}

/** SHA-256 (hex) of the canonical form: equal for DNAs that compute the same program, for de-duplication. */
export function dnaHash(dna: Dna, options: { primitives?: PrimitiveRegistry; analysis?: DnaAnalysis } = {}): string {
  return bytesToHex(sha256(utf8ToBytes(stableDnaJson(canonicalDna(dna, options)))));
}

/** The first 12 hex digits of the hash, for display. */
export function shortHash(hash: string): string {
  return hash.slice(0, 12);
}

/**
 * A key for every live hidden state of every subprogram, made from what it computes: its op,
 * the fields the op reads (bank values, not indices), its branching, the keys of the states
 * it reads and, for a call, the key of what the callee returns. A subprogram's inputs are
 * `h0` and `h1` (main's is `x`). Like the canonical hash, keys ignore names, numbering,
 * bank layout, dead code and unread fields, so two DNAs with one hash have the same keys;
 * unlike a position, a key stays put when code elsewhere (not feeding this state) changes.
 * Two live instructions may compute the same expression (the Q and K projections of one
 * input): `occurrence` tells them apart by program order.
 * Returns keys[s][state] (undefined for dead states) and occurrence[s][i] for instructions.
 */
export function expressionKeys(
  dna: Dna,
  analysis: DnaAnalysis,
  options: { primitives?: PrimitiveRegistry } = {},
): { keys: Array<Array<string | undefined>>; occurrence: Array<Array<number>>; output: string[] } {
  const registry = options.primitives ?? defaultPrimitives;
  const n = dna.subprograms.length;
  const keys: Array<Array<string | undefined>> = [];
  const occurrence: number[][] = [];
  const output: string[] = new Array<string>(n);
  const digest = (text: string) => bytesToHex(sha256(utf8ToBytes(text))).slice(0, 16);
  // callees are numbered above their callers: their output keys are known first
  for (let s = n - 1; s >= 0; s--) {
    const nIn = inputCount(s);
    const sub = dna.subprograms[s]!;
    const k: Array<string | undefined> = s === 0 ? ['x'] : ['h0', 'h1'];
    const occ: number[] = [];
    const seen = new Map<string, number>();
    sub.instructions.forEach((ins, i) => {
      if (!analysis.live[s]![i]) return;
      const d = ins.op === CALL ? undefined : registry.get(ins.op);
      const r = readsOf(ins, d, ins.op === CALL ? analysis.readsInput[ins.target] : undefined);
      const parts = [
        ins.op === CALL ? `CALL ${output[ins.target]}` : ins.op,
        r.input1 ? k[ins.input1] : '-',
        r.input2 ? k[ins.input2] : '-',
        r.constant ? String(dna.bank.constants[ins.constant]) : '-',
        r.dimSize ? String(dna.bank.dimSizes[ins.dimSize]) : '-',
        String(ins.branching),
      ];
      const key = digest(parts.join('|'));
      k[nIn + i] = key;
      occ[i] = seen.get(key) ?? 0;
      seen.set(key, occ[i]! + 1);
    });
    keys[s] = k;
    occurrence[s] = occ;
    output[s] = k[nIn + sub.instructions.length - 1] ?? k[0]!;
  }
  return { keys, occurrence, output };
}
