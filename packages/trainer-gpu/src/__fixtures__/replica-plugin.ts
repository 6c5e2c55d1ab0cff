// A plugin for the data-parallel tests: TEST_PLUGIN_SQUARE is x*x (a plugin op the replicas
// must load), TEST_REPLICA_EXIT is the identity on the main thread and ends a replica's
// thread the first time a replica runs it, TEST_UNUSED_PARAM is x*2 with a parameter it never
// reads (a variable with no gradient, which the optimizer leaves as it is).
import { isMainThread } from 'node:worker_threads';
import { definePrimitive, primitives } from '@primer-search/primitives';

const unary = (name: string, doc: string, apply: Parameters<typeof definePrimitive>[0]['apply']) =>
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

if (!primitives.has('TEST_PLUGIN_SQUARE')) {
  primitives.register('TEST_PLUGIN_SQUARE', unary('TEST_PLUGIN_SQUARE', 'x * x (a test fixture)', (tf, [x]) => tf.mul(x!, x!)));
}
if (!primitives.has('TEST_REPLICA_EXIT')) {
  primitives.register(
    'TEST_REPLICA_EXIT',
    unary('TEST_REPLICA_EXIT', 'ends a data-parallel replica (a test fixture)', (tf, [x]) => {
      if (!isMainThread) process.exit(3);
      return tf.add(x!, 0);
    }),
  );
}
if (!primitives.has('TEST_UNUSED_PARAM')) {
  primitives.register(
    'TEST_UNUSED_PARAM',
    definePrimitive({
      name: 'TEST_UNUSED_PARAM',
      doc: 'x * 2, with a parameter it never reads (a test fixture)',
      category: 'unary',
      arity: 1,
      sequenceMixing: 'none',
      outputWidth: ([w]) => ({ width: w! }),
      parameters: (s) => [{ name: 'unused', shape: [s.outWidth], init: { kind: 'constant', value: 0 } }],
      flops: () => 0,
      apply: (tf, [x]) => tf.mul(x!, 2),
      code: ({ input1 }) => input1,
    }),
  );
}
