import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { baselines } from '@primer-search/baselines';
import { main, type CliIo } from '@primer-search/cli';
import { primitives } from '@primer-search/primitives';
import { describePrimitiveContract } from '@primer-search/primitives/testing';
import { strategies } from '@primer-search/search-strategies';
import { describeStrategyContract } from '@primer-search/search-strategies/testing';
import { SqliteStudyStore } from '@primer-search/store';
import { describe, expect, it } from 'vitest';
import { SOFTSIGN, truncation } from './index.js';

await tf.setBackend('cpu');
const pluginFile = fileURLToPath(new URL('./index.js', import.meta.url));

/** Vanilla with SOFTSIGN in place of ReLU. */
function softsignSeed() {
  const dna = baselines.get('vanilla').build({ dModel: 16, heads: 2 });
  const relu = dna.subprograms.find((s) => s.name === 'relu')!;
  relu.instructions = [{ op: 'SOFTSIGN', input1: 0, input2: 0, constant: 0, dimSize: 0, target: 0, branching: 1 }];
  return dna;
}

describePrimitiveContract(SOFTSIGN, { tf });
describeStrategyContract(truncation, { seedDna: baselines.get('vanilla').build({ dModel: 64, heads: 2 }), options: { keep: 2 } });

describe('the example plugin', () => {
  it('registers its primitive and strategy by name', async () => {
    expect(primitives.get('SOFTSIGN')).toBe(SOFTSIGN);
    expect(strategies.get('truncation')).toBe(truncation);
  });

  it('computes softsign', async () => {
    const y = SOFTSIGN.apply(tf as never, [tf.tensor3d([[[-3, 0, 1]]])], [], { batch: 1, seqLen: 1, outWidth: 3 } as never) as tf.Tensor;
    expect([...y.dataSync()]).toEqual([-0.75, 0, 0.5]);
  });

  it('runs primer search with both, in worker processes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-plugin-'));
    const seed = join(dir, 'softsign.json');
    writeFileSync(seed, JSON.stringify(softsignSeed()));
    const study = join(dir, 'study.sqlite');
    let out = '';
    let err = '';
    const io: CliIo = { stdout: (t) => void (out += t), stderr: (t) => void (err += t), readFile: (p) => (p === seed ? JSON.stringify(softsignSeed()) : ''), writeFile: () => {}, interactive: false };
    const code = await main(
      ['search', '--plugin', pluginFile, '--strategy', 'truncation', '--strategy-option', 'keep=2', '--seed-model', seed, '--candidates', '5',
        '--budget-per-candidate', '3steps', '--layers', '1', '--d-model', '16', '--heads', '2', '--seq-len', '16', '--batch', '4', '--eval-windows', '2',
        '--workers', '2', '--study', study],
      io,
    );
    expect(err).not.toMatch(/failed: /);
    expect(code).toBe(0);
    expect(out).toMatch(/truncation \(keep 2\) from .*softsign\.json/);
    const store = SqliteStudyStore.open(study, { readonly: true });
    const cs = await store.candidates();
    expect(cs).toHaveLength(5);
    expect(JSON.stringify(cs[0]!.dna)).toContain('SOFTSIGN');
    expect((await store.evaluations()).every((e) => e.status === 'completed')).toBe(true);
    await store.close();
  });
});
