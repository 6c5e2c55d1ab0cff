export * as reference from './common.js';
export { vanillaBlock, type VanillaWeights } from './vanilla.js';
export { geluBlock } from './gelu.js';
export { transformerPlusPlusBlock, type TransformerPlusPlusWeights } from './transformer-plus-plus.js';
export { primerEzBlock } from './primer-ez.js';
export { primerBlock } from './primer.js';
export { baselineWeights, transformerPlusPlusWeights, type BlockVariables } from './layout.js';
