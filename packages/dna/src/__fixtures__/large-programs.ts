// Programs at and over the size limits, built as plain JSON (what a user's file would hold),
// for the tests of validation, the compiler's memory estimate and the worker pool.

type Fields = Partial<Record<'input1' | 'input2' | 'dimSize' | 'target' | 'branching', number>>;

export const ins = (op: string, fields: Fields = {}) => ({ op, input1: 0, input2: 0, constant: 0, dimSize: 0, target: 0, branching: 1, ...fields });

export const program = (subprograms: Array<{ instructions: unknown[] }>, dimSizes = [8]) => ({
  format: 'primer-dna',
  version: 1,
  bank: { constants: [0.5], dimSizes },
  subprograms,
});

/** Subprogram k calls k+1 with `branching`, projecting the concatenated branches back to 8u: 1 + b + b^2 + ... instances. */
export const fanOut = (levels: number, branching: number) =>
  program([
    { instructions: [ins('CALL', { target: 1 })] },
    ...Array.from({ length: levels }, (_, k) => ({ instructions: [ins('CALL', { target: k + 2, branching }), ins('CONV_1X1', { input1: 2 })] })),
    { instructions: [ins('TANH')] },
  ]);

/** n subprograms, each calling the next: call depth n. */
export const callChain = (n: number) =>
  program([...Array.from({ length: n - 1 }, (_, k) => ({ instructions: [ins('CALL', { target: k + 1 })] })), { instructions: [ins('TANH')] }]);

/** n elementwise ops in a row (SIN and TANH alternating, or `op` throughout). */
export const opChain = (n: number, op?: string) =>
  program([{ instructions: Array.from({ length: n }, (_, i) => ins(op ?? (i % 2 ? 'TANH' : 'SIN'), { input1: i })) }]);

/** Two 64u-wide projections around a square: few instructions, many parameters and activations. */
export const wideProjections = () =>
  program([{ instructions: [ins('CONV_1X1', { dimSize: 1 }), ins('SQUARE', { input1: 1 }), ins('CONV_1X1', { input1: 2, dimSize: 1 }), ins('CONV_1X1', { input1: 3 })] }], [8, 64]);
