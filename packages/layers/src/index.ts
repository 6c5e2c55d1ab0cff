// @primer-search/layers: Primer's blocks as TensorFlow.js layers. Browser-safe: nothing here
// imports Node modules (file saving and loading is in '@primer-search/layers/node').
export { SquaredReLU, MultiDConvHeadAttention, DCONV_INIT_ROWS, type AttentionSettings, type MultiDConvHeadAttentionArgs } from './attention.js';
export { DecoderBlock, TransformerBlock, PrimerEZBlock, PrimerBlock, type BlockArgs, type BlockRecipe, type NormKind } from './blocks.js';
export { DnaBlock, type DnaBlockArgs } from './dna-block.js';
export {
  TiedEmbedding,
  LayerNorm,
  causalLanguageModel,
  contextLength,
  nextTokenExamples,
  setCompiledWeights,
  type BlockChoice,
  type CausalLanguageModelOptions,
  type TiedEmbeddingArgs,
} from './lm.js';
export { generate, nextTokenLogits, nextTokenLogitsAsync, sampleToken, type GenerateOptions } from './generate.js';
export { initializerFor, weightName, parameterPath, RowsInitializer, WEIGHT_NAME } from './init.js';
export type { Activation } from './ops.js';
