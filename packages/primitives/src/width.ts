/**
 * The symbolic width of a hidden state's last axis.
 *
 * Every hidden state of a program has shape `[batch, seq, width]`, and every width the
 * vocabulary can produce is `units·unit + seq·seqLen + ones`: `unit` is the model's base
 * width (`dModel / 8`, so the block input is 8 units wide), `seqLen` the sequence length
 * (attention scores are `[batch, seq, seq]`), and `ones` counts size-1 axes (reductions).
 * Keeping widths symbolic makes "is this DNA valid?" a property of the DNA alone, not of a
 * model size.
 */
export interface Width {
  readonly units: number;
  readonly seq: number;
  readonly ones: number;
}

/** How many units wide the block input and output are (`dModel = MODEL_UNITS · unit`). */
export const MODEL_UNITS = 8;

export const width = {
  units: (n: number): Width => ({ units: n, seq: 0, ones: 0 }),
  model: (): Width => ({ units: MODEL_UNITS, seq: 0, ones: 0 }),
  /** The width of attention scores: one column per (key) position. */
  time: (): Width => ({ units: 0, seq: 1, ones: 0 }),
  one: (): Width => ({ units: 0, seq: 0, ones: 1 }),
};

export function widthEquals(a: Width, b: Width): boolean {
  return a.units === b.units && a.seq === b.seq && a.ones === b.ones;
}

/** A `[batch, seq, seq]` tensor: column j is key position j. */
export function isTimeWidth(w: Width): boolean {
  return w.units === 0 && w.seq === 1 && w.ones === 0;
}

export function isOneWidth(w: Width): boolean {
  return w.units === 0 && w.seq === 0 && w.ones === 1;
}

export function scaleWidth(w: Width, k: number): Width {
  return { units: w.units * k, seq: w.seq * k, ones: w.ones * k };
}

export interface WidthContext {
  /** Base width in features (`dModel / 8`); at least 2. */
  unit: number;
  seqLen: number;
}

export function concreteWidth(w: Width, ctx: WidthContext): number {
  return w.units * ctx.unit + w.seq * ctx.seqLen + w.ones;
}

/** `8u`, `seq`, `1`, `4u+2seq`: how widths appear in messages and printed programs. */
export function formatWidth(w: Width): string {
  const parts: string[] = [];
  if (w.units) parts.push(`${w.units}u`);
  if (w.seq) parts.push(w.seq === 1 ? 'seq' : `${w.seq}seq`);
  if (w.ones) parts.push(String(w.ones));
  return parts.length ? parts.join('+') : '0';
}

/**
 * The width-alignment rule of every two-input op: the output takes input1's width; an
 * input of width 1 broadcasts; any other mismatch zero-pads or truncates input2's last
 * axis to input1's width. If input1 is the width-1 one, the output takes input2's width.
 */
export function alignedWidth(w1: Width, w2: Width): Width {
  return isOneWidth(w1) && !isOneWidth(w2) ? w2 : w1;
}
