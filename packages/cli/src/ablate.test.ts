import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
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
    expect(text.stdout).toMatch(/^ablation of vanilla · 20 steps per run · seed 1 · validation loss as trained [\d.]+ nats · in-context score -?[\d.]+$/m);
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

describe('associative recall (--dataset mqar)', () => {
  it('a small Transformer learns to recall; an attention-free block with more parameters stays at chance', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-mqar-'));
    const dna = JSON.parse(readFileSync(join(fileURLToPath(new URL('../../../', import.meta.url)), 'examples/dna/vanilla.json'), 'utf8'));
    // the attention call of the main subprogram calls the feed-forward network instead
    dna.subprograms[0].instructions[1].target = 1;
    dna.name = 'attention-free';
    const free = join(dir, 'attention-free.json');
    writeFileSync(free, JSON.stringify(dna));
    const MQAR = ['--dataset', 'mqar', '--vocab-size', '64', '--mqar-pairs', '4', '--seq-len', '16', '--d-model', '32', '--layers', '2', '--batch', '32', '--budget', '500steps', '--lr', '5e-3', '--warmup', '30', '--eval-windows', '256', '--json'];
    const recall = async (model: string) => {
      const r = await run(['train', '--model', model, ...MQAR]);
      expect(r.code, r.stderr).toBe(0);
      const record = JSON.parse(r.stdout);
      return { recall: record.result.final.recall as number, parameters: record.result.parameters as number, curve: record.result.evaluations as Array<{ recall?: number }> };
    };
    const vanilla = await recall('vanilla');
    const attentionFree = await recall(free);
    console.log(`mqar recall, 4 pairs, 500 steps: vanilla ${(vanilla.recall * 100).toFixed(1)}% (${vanilla.parameters} parameters), attention-free ${(attentionFree.recall * 100).toFixed(1)}% (${attentionFree.parameters})`);
    expect(attentionFree.parameters).toBeGreaterThanOrEqual(vanilla.parameters);
    // chance: 1 of the 32 values
    expect(attentionFree.recall).toBeLessThan(0.08);
    expect(vanilla.recall).toBeGreaterThan(0.15);
    expect(vanilla.recall).toBeGreaterThan(3 * attentionFree.recall);
    // measured at every evaluation
    for (const e of vanilla.curve) expect(e.recall).toBeGreaterThanOrEqual(0);
    // flags it cannot use
    const bad = await run(['train', '--model', 'vanilla', '--dataset', 'mqar', '--mqar-pairs', '20', '--seq-len', '16']);
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringContaining('20 pairs and a query need 42 tokens; the window is 16')]);
    const stray = await run(['train', '--model', 'vanilla', '--mqar-pairs', '2']);
    expect([stray.code, stray.stderr]).toEqual([2, expect.stringContaining('--mqar-pairs goes with --dataset mqar')]);
  }, 120_000);
});
