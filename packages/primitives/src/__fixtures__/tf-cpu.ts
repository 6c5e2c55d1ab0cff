// Test helper: TensorFlow.js (with its gradients) on the pure-JS `cpu` backend, the reference backend.
import * as tfjs from '@tensorflow/tfjs';
import type { TF } from '../descriptor.js';

// The cpu backend greets Node users on first use; PROD silences that and skips debug checks we do not use.
tfjs.env().set('PROD', true);
await tfjs.setBackend('cpu');

export const tf = tfjs as unknown as TF;
