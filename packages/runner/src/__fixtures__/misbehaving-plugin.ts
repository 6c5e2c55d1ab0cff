// A plugin whose primitives misbehave on purpose, to test how the pool records failures:
// TEST_CRASH kills its process, TEST_HOG exhausts the JavaScript heap.
import { definePrimitive, primitives } from '@primer-search/primitives';

const unary = (name: string, doc: string, apply: () => never) =>
  definePrimitive({
    name,
    doc,
    category: 'unary',
    arity: 1,
    sequenceMixing: 'none',
    outputWidth: ([w]) => ({ width: w! }),
    flops: () => 0,
    apply,
    code: ({ input1 }) => input1,
  });

if (!primitives.has('TEST_CRASH')) {
  primitives.register(
    'TEST_CRASH',
    unary('TEST_CRASH', 'exits the process (a test fixture)', () => process.exit(7)),
  );
}
if (!primitives.has('TEST_HOG')) {
  primitives.register(
    'TEST_HOG',
    unary('TEST_HOG', 'allocates until the heap is exhausted (a test fixture)', () => {
      const hoard: number[][] = [];
      for (;;) hoard.push(new Array(1e6).fill(Math.random()));
    }),
  );
}
if (!primitives.has('TEST_ALLOC_FAIL')) {
  primitives.register(
    'TEST_ALLOC_FAIL',
    unary('TEST_ALLOC_FAIL', 'throws what a refused allocation throws (a test fixture)', () => {
      throw new RangeError('Array buffer allocation failed');
    }),
  );
}
if (!primitives.has('TEST_FAIL_LATER')) {
  // (applied when a forward pass is built: the model's, its recorded training step, then each evaluation's)
  let applied = 0;
  primitives.register(
    'TEST_FAIL_LATER',
    definePrimitive({
      name: 'TEST_FAIL_LATER',
      doc: 'passes its input through, then throws from its 3rd application on (a test fixture: an error in the middle of training)',
      category: 'unary',
      arity: 1,
      sequenceMixing: 'none',
      outputWidth: ([w]) => ({ width: w! }),
      flops: () => 0,
      apply: (_tf, [x]) => {
        if (++applied >= 3) throw new Error('a failure in the middle of training');
        return x!;
      },
      code: ({ input1 }) => input1,
    }),
  );
}
if (!primitives.has('TEST_CRASH_LATER')) {
  // (as TEST_FAIL_LATER: its third application is the first evaluation's)
  let applied = 0;
  primitives.register(
    'TEST_CRASH_LATER',
    definePrimitive({
      name: 'TEST_CRASH_LATER',
      doc: 'passes its input through, then exits the process at its 3rd application (a test fixture: a worker dying in the middle of training)',
      category: 'unary',
      arity: 1,
      sequenceMixing: 'none',
      outputWidth: ([w]) => ({ width: w! }),
      flops: () => 0,
      apply: (_tf, [x]) => {
        if (++applied >= 3) process.exit(7);
        return x!;
      },
      code: ({ input1 }) => input1,
    }),
  );
}
