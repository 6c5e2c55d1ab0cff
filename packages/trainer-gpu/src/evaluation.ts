/** A validation measurement taken during training (at a checkpoint of the budget, and at the end). */
export interface Evaluation {
  step: number;
  tokens: number;
  /** Training seconds spent when it was taken. */
  seconds: number;
  /** Training FLOPs spent when it was taken (the compiler's estimate: tokens x training FLOPs per token). */
  flops?: number;
  /** Mean next-token cross-entropy in nats. */
  loss: number;
  perplexity: number;
  /** The in-context score (`inContextScore`): loss over the first eighth of the positions minus over the last eighth, in nats (absent when not finite). */
  inContext?: number;
  /** A synthetic recall task (mqar): the share of queries answered right (the most likely next token), 0..1. */
  recall?: number;
}
