import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadModel } from '@primer-search/layers/node';
import { describe, expect, it } from 'vitest';
import { runPrimer as run } from './__fixtures__/run.js';
import { terminalText } from './format.js';
import { SqliteStudyStore } from '@primer-search/store';
import { decodeWeights } from '@primer-search/study';

const tiny = ['--d-model', '32', '--seq-len', '16', '--batch', '4', '--layers', '1', '--eval-windows', '4'];
const dir = mkdtempSync(join(tmpdir(), 'primer-export-'));

describe('exporting trained models and generating text', () => {
  const saved = join(dir, 'saved');
  const checkpoint = join(dir, 'ckpt');

  it('primer train --save writes a tfjs-layers model with its tokenizer, DNA and README', async () => {
    const r = await run(['train', '--model', 'primer-ez', '--budget', '8steps', ...tiny, '--save', saved, '--checkpoint', checkpoint]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`saved the model to ${saved}`);
    expect(readdirSync(saved).sort()).toEqual(['README.md', 'dna.json', 'group1-shard1of1.bin', 'model.json', 'tokenizer.json']);
    // a folder anyone may read, as a new folder is (its staging folder is private, and gone)
    expect(statSync(saved).mode & 0o777).toBe(0o777 & ~process.umask());
    const json = JSON.parse(readFileSync(join(saved, 'model.json'), 'utf8'));
    const meta = json.userDefinedMetadata.primerSearch;
    expect(meta).toMatchObject({ name: 'primer-ez', dataset: 'brown', tokenizer: 'byte', vocabSize: 257, layers: 1, dModel: 32, seqLen: 16, steps: 8 });
    const perplexity = /perplexity ([\d.]+)/.exec(r.stdout)![1]!;
    expect(meta.validation.perplexity.toFixed(3)).toBe(perplexity);
    const readme = readFileSync(join(saved, 'README.md'), 'utf8');
    expect(readme).toContain(`perplexity ${perplexity}`);
    expect(readme).toContain('loadModel(');
    const model = await loadModel(saved);
    expect(model.countParams()).toBe(meta.parameters);
    expect((model.predict(tf.tensor2d([[84, 104, 101]], [1, 3], 'int32')) as tf.Tensor).shape).toEqual([1, 3, 257]);
  });

  it('primer export --checkpoint writes the same weights as --save did at the end of that run', async () => {
    const out = join(dir, 'from-checkpoint');
    const r = await run(['export', '--checkpoint', checkpoint, '--model', 'primer-ez', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`exported primer-ez to ${out}`);
    expect(readFileSync(join(out, 'group1-shard1of1.bin')).equals(readFileSync(join(saved, 'group1-shard1of1.bin')))).toBe(true);
    const wrong = await run(['export', '--checkpoint', checkpoint, '--model', 'vanilla', '--out', join(dir, 'wrong')]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/--model: vanilla .* is not the model .* trained/);
  });

  it('never writes over a model unless --force: refused before any training, naming the folder', async () => {
    const t0 = performance.now();
    const again = await run(['train', '--model', 'primer-ez', '--budget', '8steps', ...tiny, '--save', saved]);
    expect([again.code, again.stderr]).toEqual([2, expect.stringContaining(`--save: ${saved} already holds files (a model): add --force to write over them`)]);
    expect(again.stderr).not.toMatch(/data: /);
    expect(performance.now() - t0).toBeLessThan(5_000);
    const before = readFileSync(join(saved, 'group1-shard1of1.bin'));
    const out = await run(['export', '--checkpoint', checkpoint, '--model', 'primer-ez', '--out', saved]);
    expect([out.code, out.stderr]).toEqual([2, expect.stringContaining(`--out: ${saved} already holds files (a model)`)]);
    expect(readFileSync(join(saved, 'group1-shard1of1.bin')).equals(before)).toBe(true);
    // --force writes the new model over the old one file by file, once it has been checked
    // (staged in the folder, nothing of the staging left), and leaves the folder's other files
    writeFileSync(join(saved, 'notes.txt'), 'mine');
    const forced = await run(['export', '--checkpoint', checkpoint, '--model', 'primer-ez', '--out', saved, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(readdirSync(saved).sort()).toEqual(['README.md', 'dna.json', 'group1-shard1of1.bin', 'model.json', 'notes.txt', 'tokenizer.json']);
    expect(readFileSync(join(saved, 'README.md'), 'utf8')).not.toContain('notes.txt');
    expect(readFileSync(join(saved, 'group1-shard1of1.bin')).equals(before)).toBe(true);
    // what a killed export left (its staging folder, hours old) is neither a file of the user's nor kept
    const leftover = join(dir, 'leftover');
    mkdirSync(join(leftover, '.export-x1'), { recursive: true });
    const hoursAgo = new Date(Date.now() - 2 * 3600_000);
    utimesSync(join(leftover, '.export-x1'), hoursAgo, hoursAgo);
    const over = await run(['export', '--checkpoint', checkpoint, '--model', 'primer-ez', '--out', leftover]);
    expect(over.code, over.stderr).toBe(0);
    expect(readdirSync(leftover).sort()).toEqual(['README.md', 'dna.json', 'group1-shard1of1.bin', 'model.json', 'tokenizer.json']);
    // a file is not a folder, with or without --force
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    expect((await run(['export', '--checkpoint', checkpoint, '--model', 'primer-ez', '--out', file, '--force'])).stderr).toContain(`--out: ${file} is a file; give a folder`);
  });

  it('primer generate samples reproducibly for a seed, and names what is wrong with its input', async () => {
    const args = ['generate', '--model', saved, '--prompt', 'The jury', '--tokens', '12', '--json'];
    const a = await run([...args, '--seed', '1']);
    expect(a.code, a.stderr).toBe(0);
    const ja = JSON.parse(a.stdout);
    expect(ja.promptIds).toEqual([84, 104, 101, 32, 106, 117, 114, 121]);
    expect(ja.ids.length === 12 || ja.ids.at(-1) === 256).toBe(true);
    expect(JSON.parse((await run([...args, '--seed', '1'])).stdout).ids).toEqual(ja.ids);
    const text = await run(['generate', '--model', saved, '--prompt', 'The jury', '--tokens', '12', '--seed', '1']);
    // the same text as --json's, with what a terminal would act on (control characters, which a
    // briefly trained byte model samples) escaped: format.test checks terminalText against escapes written by hand
    expect(text.stdout).toBe(terminalText(`The jury${ja.text}\n`));
    expect(text.stdout).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    const notModel = await run(['generate', '--model', dir, '--prompt', 'x']);
    expect(notModel.code).toBe(2);
    expect(notModel.stderr).toContain(`--model: ${dir} has no model.json`);
    // a folder whose model.json is damaged: exit 1, naming it, no stack trace
    const damaged = join(dir, 'damaged');
    await run(['export', '--checkpoint', checkpoint, '--model', 'primer-ez', '--out', damaged]);
    writeFileSync(join(damaged, 'model.json'), '{"modelTopology": ');
    const broken = await run(['generate', '--model', damaged, '--prompt', 'x']);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/the model .*damaged cannot be loaded: cannot read the model .*model\.json/);
  });

  it('primer export --study retrains a candidate with the study\'s settings and exports it', async () => {
    const study = join(dir, 'study.sqlite');
    const s = await run(['search', '--candidates', '2', '--budget-per-candidate', '4steps', ...tiny, '--workers', '1', '--study', study]);
    expect(s.code, s.stderr).toBe(0);
    const out = join(dir, 'candidate');
    const r = await run(['export', '--study', study, '--candidate', '1', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("retraining candidate-1");
    const meta = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')).userDefinedMetadata.primerSearch;
    expect(meta).toMatchObject({ name: 'candidate-1', steps: 4, seqLen: 16 });
    expect(meta.source).toContain('retrained');
    const missing = await run(['export', '--study', study, '--candidate', '9', '--out', join(dir, 'none')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('has no candidate 9');
  }, 120_000);

  it('search --keep-weights K keeps the K best candidates\' weights, and export uses them instead of retraining', async () => {
    const study = join(dir, 'kept.sqlite');
    const s = await run(['search', '--candidates', '5', '--budget-per-candidate', '6steps', ...tiny, '--workers', '1', '--population', '2', '--tournament', '1', '--hurdles', 'none', '--keep-weights', '1', '--study', study, '--seed', '2']);
    expect(s.code, s.stderr).toBe(0);
    const summary = JSON.parse((await run(['study', 'show', study, '--json'])).stdout);
    const best = summary.leaderboard[0];
    // only the best is kept (the others were dropped as better ones came)
    expect(summary.keptWeights).toEqual([best.id]);
    expect(s.stdout).toContain(`weights kept for the 1 best: candidate ${best.id}`);
    const store = SqliteStudyStore.open(study, { readonly: true });
    const bytes = (await store.weightsOf(best.hash))!;
    expect(await store.weightHashes()).toEqual([best.hash]);
    await store.close();
    const out = join(dir, 'kept-export');
    const r = await run(['export', '--study', study, '--candidate', String(best.id), '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('with the weights the search kept');
    expect(r.stderr).not.toMatch(/retraining candidate/);
    const meta = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')).userDefinedMetadata.primerSearch;
    expect(meta).toMatchObject({ name: `candidate-${best.id}`, steps: best.steps });
    expect(meta.validation.perplexity).toBeCloseTo(best.fitness, 10);
    // the exported weights are the kept ones, value for value
    const kept = decodeWeights(bytes);
    const model = await loadModel(out);
    const exported = model.getWeights().map((w) => Array.from(w.dataSync()));
    const keptValues = kept.map((t) => Array.from(t.values)).sort((a, b) => a.length - b.length || a[0]! - b[0]!);
    expect(exported.sort((a, b) => a.length - b.length || a[0]! - b[0]!)).toEqual(keptValues);
    // another budget retrains
    const again = await run(['export', '--study', study, '--candidate', String(best.id), '--out', join(dir, 'kept-retrained'), '--budget', '3steps']);
    expect(again.stderr).toMatch(/retraining candidate/);
  }, 120_000);
});
