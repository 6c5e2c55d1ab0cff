export * from './corpus.js';
export * from './brown.js';
export * from './tokenizer.js';
export * from './batches.js';
export * from './bpe.js';
export * from './files.js';
export * from './lm1b.js';
export * from './c4.js';
