// A plugin whose primitives misbehave on purpose, to test how the pool records failures:
// TEST_CRASH kills its process, TEST_HOG exhausts the JavaScript heap, TEST_FAIL_LATER and
// TEST_CRASH_LATER throw or exit in the middle of training.
import { definePrimitive, primitives, type Tensor } from '@primer-search/primitives';

const unary = (name: string, doc: string, apply: (tf: unknown, inputs: Tensor[]) => Tensor) =>
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
/**
 * An op that passes its input through, then does `act` from its third application on: it is
 * applied when a forward pass is built (the model's, its recorded training step), then at each
 * evaluation's, so the third is the first evaluation, in the middle of training when a hurdle
 * or checkpoint asks for one.
 */
const later = (name: string, doc: string, act: () => never) => {
  let applied = 0;
  return unary(name, doc, (_tf, [x]) => (++applied >= 3 ? act() : x!));
};

if (!primitives.has('TEST_FAIL_LATER')) {
  primitives.register(
    'TEST_FAIL_LATER',
    later('TEST_FAIL_LATER', 'passes its input through, then throws from its 3rd application on (a test fixture: an error in the middle of training)', () => {
      throw new Error('a failure in the middle of training');
    }),
  );
}
if (!primitives.has('TEST_CRASH_LATER')) {
  primitives.register(
    'TEST_CRASH_LATER',
    later('TEST_CRASH_LATER', 'passes its input through, then exits the process at its 3rd application (a test fixture: a worker dying in the middle of training)', () => process.exit(7)),
  );
}
