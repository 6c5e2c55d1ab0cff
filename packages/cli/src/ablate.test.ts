import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { baselineDna } from '@primer-search/baselines';
import { compileLanguageModel } from '@primer-search/compiler';
import { describe, expect, it } from 'vitest';
import { runPrimer as run } from './__fixtures__/run.js';

const SMALL = ['--d-model', '32', '--layers', '1', '--seq-len', '32', '--batch', '8', '--eval-windows', '16'];

describe('primer ablate', () => {
  it("on a trained vanilla Transformer, removing attention raises the loss; identity and zeros per instruction, over seeds", async () => {
    const r = await run(['ablate', '--model', 'vanilla', '--budget', '200steps', ...SMALL, '--seeds', '2', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.seeds).toEqual([1, 2]);
    expect(s.rows.map((x: { label: string }) => x.label)).toEqual([
      'h1 = CALL 6 layer_norm(h0)',
      'h2 = CALL 3 multi_head_attention(h1)',
      'h3 = ADD(h0, h2)',
      'h4 = CALL 6 layer_norm(h3)',
      'h5 = CALL 1 feed_forward(h4)',
      'h6 = ADD(h3, h5)',
    ]);
    const attention = s.rows[1];
    expect(attention.zeros.mean).toBeGreaterThan(0.02);
    expect(attention.identity.mean).toBeGreaterThan(0.02);
    // each seed's row is its ablated loss minus its trained loss
    for (const run of s.runs) expect(run.ablation.rows[1].zeros).toBeGreaterThan(run.ablation.loss);
    expect(attention.zeros.mean).toBeCloseTo(s.runs.reduce((a: number, x: { ablation: { loss: number; rows: Array<{ zeros: number }> } }) => a + x.ablation.rows[1]!.zeros - x.ablation.loss, 0) / 2, 9);
    const text = await run(['ablate', '--model', 'vanilla', '--budget', '20steps', ...SMALL]);
    expect(text.stdout).toMatch(/^ablation of vanilla · 20 steps per run · seed 1 · validation loss as trained [\d.]+ nats$/m);
    expect(text.stdout).toMatch(/^h2 = CALL 3 multi_head_attention\(h1\) +[+−][\d.]+ +[+−][\d.]+$/m);
  }, 120_000);

  it('replaces an instruction by its input only where the widths agree; the model is restored after', () => {
    const model = compileLanguageModel(baselineDna('vanilla', { dModel: 32 }), { tf: tf as never, vocabSize: 50, layers: 2, dModel: 32, seqLen: 8, seed: 1 });
    try {
      const tokens = tf.tensor2d(Array.from({ length: 16 }, (_, i) => i % 50), [2, 8], 'int32');
      const before = (model.logits(tokens as never) as unknown as tf.Tensor).arraySync();
      // inside the feed-forward network the widths change, but the main subprogram's do not
      for (const b of model.blocks) b.setAblation({ node: 4, mode: 'zeros' });
      const zeroed = (model.logits(tokens as never) as unknown as tf.Tensor).arraySync();
      expect(zeroed).not.toEqual(before);
      for (const b of model.blocks) b.setAblation(undefined);
      expect((model.logits(tokens as never) as unknown as tf.Tensor).arraySync()).toEqual(before);
      expect(() => model.blocks[0]!.setAblation({ node: 99, mode: 'zeros' })).toThrow(/no live instruction 99/);
      tokens.dispose();
    } finally {
      model.dispose();
    }
  });

  it('primer study ablate trains a candidate with the study\'s settings', async () => {
    const study = join(mkdtempSync(join(tmpdir(), 'primer-ablate-')), 's.sqlite');
    const TINY = ['--layers', '1', '--d-model', '16', '--heads', '2', '--seq-len', '16', '--batch', '4', '--eval-windows', '2'];
    expect((await run(['search', '--candidates', '3', '--budget-per-candidate', '6steps', ...TINY, '--workers', '1', '--study', study])).code).toBe(0);
    const r = await run(['study', 'ablate', study, '0', '--budget', '10steps']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^ablation of the seed \(vanilla\) · 10 steps per run · seed 1 · /m);
    expect((await run(['study', 'ablate', study, '9'])).stderr).toMatch(/has no candidate 9/);
  }, 60_000);
});
