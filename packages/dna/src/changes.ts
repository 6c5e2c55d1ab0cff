import { primitives as defaultPrimitives, type PrimitiveRegistry } from '@primer-search/primitives';
import { analyzeDna, readsOf, type DnaAnalysis } from './analyze.js';
import { dnaHash, stableDnaJson } from './canonical.js';
import { PrimerError } from '@primer-search/core';
import { CALL, subprogramLabel, type Dna } from './types.js';
import { validateDna } from './validate.js';

/** One change between two programs of the same layout: a subprogram's code, or one bank value. */
export type DnaChangeUnit =
  | { kind: 'subprogram'; subprogram: number }
  | { kind: 'constant'; index: number }
  | { kind: 'dimSize'; index: number };

/** A program made by moving one change: its DNA, hash, and whether it validates (and why not). */
export interface DnaVariant {
  dna: Dna;
  hash: string;
  valid: boolean;
  error?: string;
}

export interface DnaChange {
  unit: DnaChangeUnit;
  /** In words: "subprogram 6 (layer_norm)", "bank constant c1: 0.5 -> 12.51". */
  label: string;
  /** A short name for files: `sub6-layer_norm`, `c1`, `d0`. */
  slug: string;
  /** The base with this change alone inserted. */
  inserted: DnaVariant;
  /** The winner with this change alone removed (the base's part put back). */
  removed: DnaVariant;
}

export interface DnaChanges {
  baseHash: string;
  winnerHash: string;
  /**
   * The winner with the parts its function does not use (subprograms it never calls, bank
   * values its live code never reads) taken from the base: the same function (same hash), so
   * removing a change never brings back code the search had left dead.
   */
  aligned: Dna;
  changes: DnaChange[];
}

/** Bank values the live code of `analysis`'s program reads. */
function readBank(dna: Dna, analysis: DnaAnalysis, registry: PrimitiveRegistry): { constants: Set<number>; dimSizes: Set<number> } {
  const constants = new Set<number>();
  const dimSizes = new Set<number>();
  dna.subprograms.forEach((sub, s) => {
    if (!analysis.used[s]) return;
    sub.instructions.forEach((ins, i) => {
      if (!analysis.live[s]![i]) return;
      const r = readsOf(ins, ins.op !== CALL && registry.has(ins.op) ? registry.get(ins.op) : undefined, ins.op === CALL ? analysis.readsInput[ins.target] : undefined);
      if (r.constant) constants.add(ins.constant);
      if (r.dimSize) dimSizes.add(ins.dimSize);
    });
  });
  return { constants, dimSizes };
}

function withUnit(into: Dna, from: Dna, unit: DnaChangeUnit): Dna {
  const d = structuredClone(into);
  if (unit.kind === 'subprogram') d.subprograms[unit.subprogram] = structuredClone(from.subprograms[unit.subprogram]!);
  else if (unit.kind === 'constant') d.bank.constants[unit.index] = from.bank.constants[unit.index]!;
  else d.bank.dimSizes[unit.index] = from.bank.dimSizes[unit.index]!;
  return d;
}

function variant(dna: Dna, registry: PrimitiveRegistry): DnaVariant {
  const r = validateDna(dna, { primitives: registry });
  // (the first problem, with the subprogram, instruction and field at fault)
  if (!r.ok) return { dna, hash: '', valid: false, error: r.error.message.split('\n')[0]!.replace(/^invalid DNA: /, '') };
  return { dna, hash: dnaHash(r.dna, { primitives: registry, analysis: r.analysis }), valid: true };
}

const slugOf = (name: string | undefined) => (name ?? '').replace(/[^A-Za-z0-9_-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 40);

/**
 * The changes that make `winner` from `base`, one by one, as the paper took Primer apart (its
 * Figure 26): each subprogram whose code differs and each bank value that differs, among the
 * parts the winner's function uses; for each, the base with that change alone inserted and the
 * winner with that change alone removed. Both programs must have the same layout (subprograms
 * and bank sizes), as a search's mutants of one seed do. A change that changes neither program's
 * function when moved is left out (it only touched code neither runs).
 */
export function dnaChanges(base: Dna, winner: Dna, registry: PrimitiveRegistry = defaultPrimitives): DnaChanges {
  const layout = (d: Dna) => `${d.subprograms.length} subprograms, ${d.bank.constants.length} bank constants and ${d.bank.dimSizes.length} dim sizes`;
  if (layout(base) !== layout(winner)) {
    throw new PrimerError('DNA_INVALID', `the two programs differ in layout (${layout(base)} against ${layout(winner)}): changes are compared subprogram by subprogram, as between a search's seed and its mutants`);
  }
  // (compared as validated: every default filled in, so two spellings of one instruction are one)
  [base, winner] = ([['base', base], ['winner', winner]] as const).map(([which, d]) => {
    const r = validateDna(d, { primitives: registry });
    if (!r.ok) throw new PrimerError('DNA_INVALID', `the ${which} is not a valid program: ${r.error.message}`);
    return r.dna;
  }) as [Dna, Dna];
  const analysis = analyzeDna(winner, registry);
  const read = readBank(winner, analysis, registry);
  // the winner, its unused parts the base's
  const aligned = structuredClone(winner);
  aligned.subprograms.forEach((_, s) => {
    if (!analysis.used[s]) aligned.subprograms[s] = structuredClone(base.subprograms[s]!);
  });
  aligned.bank.constants.forEach((_, i) => {
    if (!read.constants.has(i)) aligned.bank.constants[i] = base.bank.constants[i]!;
  });
  aligned.bank.dimSizes.forEach((_, i) => {
    if (!read.dimSizes.has(i)) aligned.bank.dimSizes[i] = base.bank.dimSizes[i]!;
  });
  const baseHash = dnaHash(base, { primitives: registry });
  const winnerHash = dnaHash(winner, { primitives: registry });
  // (a program that still calls what it did not use would make this fail: the aligned winner must compute the same function)
  if (dnaHash(aligned, { primitives: registry }) !== winnerHash) throw new Error('internal: the winner with its unused parts replaced is not the same program');

  const units: Array<{ unit: DnaChangeUnit; label: string; slug: string }> = [];
  aligned.subprograms.forEach((sub, s) => {
    if (stableDnaJson({ ...base, subprograms: [base.subprograms[s]!] } as Dna) === stableDnaJson({ ...base, subprograms: [sub] } as Dna)) return;
    units.push({ unit: { kind: 'subprogram', subprogram: s }, label: subprogramLabel(aligned, s), slug: `sub${s}${slugOf(s === 0 ? 'main' : sub.name) ? `-${slugOf(s === 0 ? 'main' : sub.name)}` : ''}` });
  });
  aligned.bank.constants.forEach((c, i) => {
    const b = base.bank.constants[i]!;
    if (c === b) return;
    // (as many digits as tell them apart)
    let digits = 6;
    while (digits < 17 && Number(b.toPrecision(digits)) === Number(c.toPrecision(digits))) digits++;
    units.push({ unit: { kind: 'constant', index: i }, label: `bank constant c${i}: ${Number(b.toPrecision(digits))} -> ${Number(c.toPrecision(digits))}`, slug: `c${i}` });
  });
  aligned.bank.dimSizes.forEach((v, i) => {
    const b = base.bank.dimSizes[i]!;
    if (v !== b) units.push({ unit: { kind: 'dimSize', index: i }, label: `bank dim size d${i}: ${b}u -> ${v}u`, slug: `d${i}` });
  });
  const changes: DnaChange[] = [];
  for (const u of units) {
    const inserted = variant(withUnit(base, aligned, u.unit), registry);
    const removed = variant(withUnit(aligned, base, u.unit), registry);
    // a change that does nothing either way (code neither program runs differently)
    if (inserted.valid && removed.valid && inserted.hash === baseHash && removed.hash === winnerHash) continue;
    changes.push({ ...u, inserted, removed });
  }
  return { baseHash, winnerHash, aligned, changes };
}
