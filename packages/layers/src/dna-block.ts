import { planBlock, runBlock, type BlockPlan, type RunOptions } from '@primer-search/compiler';
import type { Dna } from '@primer-search/dna';
import type { PrimitiveRegistry, TF } from '@primer-search/primitives';
import { checkModelInput } from './attention.js';
import { initializerFor, weightName } from './init.js';
import { single, singleShape, tf, type BaseLayerArgs, type LayerVariable, type Shape, type Tensor } from './tf.js';

export interface DnaBlockArgs extends BaseLayerArgs {
  /** The block's DNA (as `primer dna` and the search write it; validated when the layer builds). */
  dna?: Dna | Record<string, unknown>;
  /** The same as hexadecimal UTF-8 JSON: how the layer's config carries it through tfjs-layers, whose (de)serialiser rewrites the case of every string. */
  dnaHex?: string;
  /**
   * The sequence length the parameters are planned at. Only DNAs whose parameters depend on
   * the length (an op with weights reading attention scores) need it to equal the length the
   * layer runs on; default: the input's length if known, else 64.
   */
  seqLen?: number;
}

/**
 * Any valid DNA as a layer: the block a search found, usable like the hand-written ones.
 * Built by the compiler's plan (so it computes exactly what the search trained), with one
 * tfjs-layers weight per planned parameter, named after its path (`weightName`) and drawn
 * from the distribution its primitive declares. `[batch, seq, dModel]` -> the same; the
 * model width must be a multiple of 16.
 */
export class DnaBlock extends tf.layers.Layer {
  static className = 'DnaBlock';
  /** Registry of primitives a DNA may use: the shared one (plugins register there) unless set before building. */
  static primitives: PrimitiveRegistry | undefined;
  readonly dna: Dna;
  private readonly seqLen?: number;
  private dModel?: number;
  private readonly plans = new Map<number, BlockPlan>();
  /** Weights by the compiler's parameter path. */
  readonly parameters = new Map<string, LayerVariable>();

  constructor(args: DnaBlockArgs) {
    super(args);
    if (args?.dna === undefined && args?.dnaHex === undefined) throw new Error('DnaBlock: give the block\'s DNA as `dna`');
    this.dna = (args.dna ?? JSON.parse(fromHex(args.dnaHex!))) as Dna;
    this.seqLen = args.seqLen;
  }

  /** The compiler's plan of this block for sequences of `seqLen` tokens (planned once per length). */
  plan(seqLen: number): BlockPlan {
    let p = this.plans.get(seqLen);
    if (!p) {
      if (this.dModel === undefined) throw new Error(`${this.name}: not built yet`);
      p = planBlock(this.dna, { dModel: this.dModel, seqLen }, { primitives: DnaBlock.primitives });
      const reference = this.plans.values().next().value as BlockPlan | undefined;
      if (reference) {
        const shapes = (q: BlockPlan) => q.params.map((x) => `${x.name}=${x.spec.shape.join('x')}`).join(',');
        if (shapes(reference) !== shapes(p)) {
          throw new Error(
            `${this.name}: this DNA's parameters depend on the sequence length, so it runs only on sequences of ${reference.size.seqLen} tokens, got ${seqLen}`,
          );
        }
      }
      this.plans.set(seqLen, p);
    }
    return p;
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = singleShape(inputShape);
    this.dModel = checkModelInput(shape, this.name);
    const length = this.seqLen ?? (typeof shape[1] === 'number' ? shape[1] : 64);
    for (const p of this.plan(length).params) {
      this.parameters.set(p.name, this.addWeight(weightName(p.name), p.spec.shape, 'float32', initializerFor(p.spec.init)));
    }
    this.built = true;
  }

  override call(inputs: Tensor | Tensor[], kwargs?: { runOptions?: RunOptions }): Tensor {
    return tf.tidy(() => {
      const x = single(inputs);
      const plan = this.plan(x.shape[1] as number);
      return runBlock(tf as unknown as TF, plan, (name) => this.parameters.get(name)!.read(), x, kwargs?.runOptions);
    });
  }

  override getConfig() {
    return { ...super.getConfig(), dnaHex: toHex(JSON.stringify(this.dna)), ...(this.seqLen !== undefined ? { seqLen: this.seqLen } : {}) };
  }
}
tf.serialization.registerClass(DnaBlock);

function toHex(text: string): string {
  return Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, '0')).join('');
}

function fromHex(hex: string): string {
  if (!/^(?:[0-9a-f]{2})*$/.test(hex)) throw new Error('DnaBlock: dnaHex is not hexadecimal');
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return new TextDecoder().decode(bytes);
}
