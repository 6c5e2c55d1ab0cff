// Test helper: TensorFlow.js with gradients on the reference `cpu` backend.
import * as tfjs from '@tensorflow/tfjs';
import type { TF } from '@primer-search/primitives';

tfjs.env().set('PROD', true);
await tfjs.setBackend('cpu');

export const tf = tfjs as unknown as TF;
export { tfjs };
