export * from './corpus.js';
export * from './brown.js';
export * from './tokenizer.js';
export * from './batches.js';
export * from './bpe.js';
