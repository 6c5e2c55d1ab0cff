// What a trained program's parts carry (issue: search fidelity): the validation loss when one
// instruction of the block's main subprogram is replaced by its input or by zeros, in every layer
// at once, the weights as trained.
import { identityRefusal, type LanguageModel } from '@primer-search/compiler';
import type { Batch } from '@primer-search/datasets';
import { evaluate } from './train.js';

export interface AblationRow {
  /** The instruction's index among the main subprogram's live instructions. */
  node: number;
  /** How it reads, e.g. `h2 = CALL 3 multi_head_attention(h1)`. */
  label: string;
  /** Validation loss with it replaced by its input, or why it cannot be (its widths differ). */
  identity: number | { refused: string };
  /** Validation loss with its output replaced by zeros. */
  zeros: number;
}

export interface ModelAblation {
  /** The trained model's validation loss, nothing replaced. */
  loss: number;
  /** Its in-context score (`inContextScore`), nothing replaced. */
  inContext: number;
  rows: AblationRow[];
}

/** One live instruction of the main subprogram as `primer ablate` names it. */
export function instructionLabel(model: LanguageModel, node: number): string {
  const n = model.blocks[0]!.plan.root.nodes[node]!;
  if (n.kind === 'op') return `h${n.state} = ${n.descriptor.name}(${n.inputs.map((i) => `h${i}`).join(', ')})`;
  const callee = n.branches[0]!;
  const inputs = [...new Set(n.args.slice(0, callee.inputCount))];
  return `h${n.state} = CALL ${callee.subprogram}${callee.name ? ` ${callee.name}` : ''}(${inputs.map((i) => `h${i}`).join(', ')})${n.branches.length > 1 ? ` x${n.branches.length} branches` : ''}`;
}

/**
 * Ablates a trained `model` on `batches`: for each live instruction of its main subprogram, the
 * validation loss with that instruction replaced, in every layer, by its input (identity; where
 * its input and output widths agree) and by zeros. Restores the model before returning.
 */
export async function ablateModel(model: LanguageModel, batches: Batch[]): Promise<ModelAblation> {
  const plan = model.blocks[0]!.plan;
  const { loss, inContext } = await evaluate(model, batches);
  const set = (a: Parameters<LanguageModel['blocks'][number]['setAblation']>[0]) => {
    for (const b of model.blocks) b.setAblation(a);
  };
  const rows: AblationRow[] = [];
  try {
    for (let node = 0; node < plan.root.nodes.length; node++) {
      const refused = identityRefusal(plan, node);
      let identity: AblationRow['identity'];
      if (refused) identity = { refused };
      else {
        set({ node, mode: 'identity' });
        identity = (await evaluate(model, batches)).loss;
      }
      set({ node, mode: 'zeros' });
      const zeros = (await evaluate(model, batches)).loss;
      set(undefined);
      rows.push({ node, label: instructionLabel(model, node), identity, zeros });
    }
  } finally {
    set(undefined);
  }
  return { loss, inContext, rows };
}
