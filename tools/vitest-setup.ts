// TensorFlow.js's wasm kernels run synchronously: a test file whose tests train one after the
// other can keep its worker's event loop from turning for longer than vitest's 60-second RPC
// timeout, and the reply to a report sent at the start is then read only after that timer has
// fired ("Timeout calling onTaskUpdate", an unhandled error that fails the run though every test
// passed). Turning the event loop once after each test lets the replies in.
import { afterEach } from 'vitest';

afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));

// Tests choose their backends on purpose (the cpu backend is the reference): tfjs's greeting to
// Node users of the cpu backend ("looks like you are running TensorFlow.js in Node.js") is noise
// in their output. PROD silences it, as selectBackend does for the CLI.
const { env } = await import('@tensorflow/tfjs-core');
env().set('PROD', true);
