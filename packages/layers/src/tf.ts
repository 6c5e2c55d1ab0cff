// The one TensorFlow.js import of this package: layers subclass tf.layers.Layer at load time,
// so unlike the other packages (which take tf as an argument) this one imports it. Use the same
// @tensorflow/tfjs instance as your model code (npm dedupes it; tfjs-node re-exports it).
import * as tf from '@tensorflow/tfjs';

export { tf };
export type Tensor = tf.Tensor;
export type Shape = Array<number | null>;
export type LayerVariable = tf.LayerVariable;
/** What every layer's constructor takes besides its own settings. */
export interface BaseLayerArgs {
  name?: string;
  trainable?: boolean;
  inputShape?: Shape;
  batchInputShape?: Shape;
  dtype?: 'float32';
}

/** The one tensor of a layer's inputs (tfjs passes a tensor or a one-element list). */
export function single(inputs: Tensor | Tensor[]): Tensor {
  if (!Array.isArray(inputs)) return inputs;
  if (inputs.length !== 1) throw new Error(`expected one input tensor, got ${inputs.length}`);
  return inputs[0]!;
}

/** The one shape of a layer's input shapes. */
export function singleShape(shape: Shape | Shape[]): Shape {
  return Array.isArray(shape[0]) ? (shape as Shape[])[0]! : (shape as Shape);
}
