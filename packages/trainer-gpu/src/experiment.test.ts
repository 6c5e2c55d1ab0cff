import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { baselineDna } from '@primer-search/baselines';
import { isPrimerError } from '@primer-search/core';
import { DEFAULT_RUN_SETTINGS, type RunSettings } from '@primer-search/study';
import { describe, expect, it } from 'vitest';
import { readCheckpoint } from './checkpoint.js';
import { runExperiment } from './experiment.js';

describe('a run continued from its checkpoint', () => {
  it('is the same run whether its data folder was named by a relative or an absolute path (a checkpoint of an earlier version held the path as given)', async () => {
    const data = mkdtempSync(join(tmpdir(), 'primer-exp-data-'));
    writeFileSync(join(data, 'train.txt'), Array.from({ length: 60 }, (_, i) => `Document ${i} has a line.\nAnd a second one.`).join('\n\n'));
    writeFileSync(join(data, 'validation.txt'), 'A held-out document.\n\nAnother one, held out too.');
    const ckpt = join(mkdtempSync(join(tmpdir(), 'primer-exp-ckpt-')), 'run');
    const settings = (steps: number, dataDir: string): RunSettings => ({
      ...DEFAULT_RUN_SETTINGS,
      dataset: 'text',
      dataDir,
      cache: join(data, 'cache'),
      layers: 1,
      dModel: 32,
      seqLen: 16,
      batch: 4,
      evalWindows: 2,
      budget: { kind: 'steps', steps },
      backend: 'wasm',
      train: { checkpoints: [] },
    });
    const dna = baselineDna('vanilla', { dModel: 32 });
    await runExperiment(dna, settings(3, data), { checkpoint: { path: ckpt, everySeconds: 0 } });
    // as an earlier version wrote it: the data folder as the command was given it, relative
    const file = join(ckpt, 'checkpoint.json');
    const saved = JSON.parse(readFileSync(file, 'utf8'));
    expect(saved.context.dataDir).toBe(data);
    saved.context.dataDir = relative(process.cwd(), data);
    writeFileSync(file, JSON.stringify(saved));
    const resumed = await runExperiment(dna, settings(5, data), { resume: readCheckpoint(ckpt) });
    expect(resumed.result.status).toBe('completed');
    expect(resumed.result.steps).toBe(5);
    // another folder is still another run
    saved.context.dataDir = join(data, 'elsewhere');
    writeFileSync(file, JSON.stringify(saved));
    const other = await runExperiment(dna, settings(5, data), { resume: readCheckpoint(ckpt) }).catch((e: unknown) => e);
    expect(isPrimerError(other) && other.code).toBe('BAD_CHECKPOINT');
    expect((other as Error).message).toContain(`dataDir "${join(data, 'elsewhere')}" (now "${data}")`);
  }, 120_000);
});
