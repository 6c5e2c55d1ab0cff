import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LanguageModel } from '@primer-search/compiler';
import { PrimerError } from '@primer-search/core';
import { saveTokenizer, sweepStale, type Tokenizer } from '@primer-search/datasets';
import { dnaHash } from '@primer-search/dna';
import { formatBudget, type RunSettings } from '@primer-search/study';
import { EXPORT_STAGING } from './flags.js';
import { fmt, jsonText } from './format.js';

/** What an exported model's README and metadata say about where it came from. */
export interface ExportInfo {
  /** The model's name: a baseline, a DNA file, `candidate-12`. */
  name: string;
  /** How it was made, in words (e.g. "primer train", "study runs.db, candidate 12, retrained"). */
  source: string;
  settings: RunSettings;
  result: { steps: number; tokens: number; trainSeconds: number; parameters: number; final?: { loss: number; perplexity: number } };
}

/** `model.json`'s `userDefinedMetadata.primerSearch`: the same, machine-readable. */
export interface ExportMetadata {
  format: 'primer-exported-model';
  version: 1;
  name: string;
  source: string;
  dnaHash: string;
  dataset: string;
  tokenizer: string;
  vocabSize: number;
  layers: number;
  dModel: number;
  seqLen: number;
  parameters: number;
  steps: number;
  tokens: number;
  budget: string;
  seed: number;
  validation?: { loss: number; perplexity: number; windows: number };
  exportedAt: string;
}

/** The most any logit of the exported model may differ from the trained one's on the check window. */
const EXPORT_TOLERANCE = 1e-3;

/**
 * Writes a trained language model as a tfjs-layers model folder: `model.json` and weight
 * shards (a `causalLanguageModel` of `DnaBlock`s with the trained weights), `tokenizer.json` (and
 * its vocabulary file), `dna.json` and a `README.md` on loading it. Reloads what it wrote and
 * checks its logits against the trained model's on a window of text before returning.
 *
 * Everything is written into a staging folder inside `dir` (`.export-*`, so on its filesystem)
 * and moved into place only once the check passed: an export that fails or is killed before
 * then leaves `dir` as it was (a model written over with --force included). The move takes
 * `model.json` away first and puts it back last, so a move cut short leaves no model to load,
 * never one with another model's weights.
 */
export async function exportLanguageModel(dir: string, model: LanguageModel, tokenizer: Tokenizer, info: ExportInfo): Promise<ExportMetadata> {
  if (statSync(dir, { throwIfNoEntry: false })?.isFile()) throw new PrimerError('EXPORT_FAILED', `${dir} is a file; give a folder`);
  const created = !existsSync(dir);
  let staging: string;
  try {
    mkdirSync(dir, { recursive: true });
    // what a killed export left (an hour old: no export takes that long to write)
    sweepStale(join(dir, EXPORT_STAGING), /^[A-Za-z0-9]+$/, { olderThanMs: 3600_000, folders: true });
    staging = mkdtempSync(join(dir, EXPORT_STAGING));
  } catch (e) {
    throw new PrimerError('EXPORT_FAILED', `cannot write ${dir}: ${(e as Error).message}`);
  }
  let done = false;
  try {
    const metadata = await exportInto(staging, dir, model, tokenizer, info);
    install(staging, dir);
    done = true;
    return metadata;
  } finally {
    rmSync(staging, { recursive: true, force: true });
    // a folder made for an export that failed is not left behind
    if (!done && created) {
      try {
        rmdirSync(dir);
      } catch {
        // not empty: left as it is
      }
    }
  }
}

/** A tfjs-layers weight shard's name, as `model.save` writes them. */
const SHARD = /^group\d+-shard\d+of\d+\.bin$/;

/**
 * Moves a checked export from `staging` into `dir`: the old `model.json` removed first, then each
 * file renamed onto its place (replaced whole), the old model's weight shards that the new one
 * does not have removed, and the new `model.json` last; any other file of the folder is left alone.
 */
function install(staging: string, dir: string): void {
  const step = (what: string, f: () => void) => {
    try {
      f();
    } catch (e) {
      throw new PrimerError('EXPORT_FAILED', `${dir}: ${what} failed (${(e as Error).message}); the folder holds no complete model: export again`);
    }
  };
  const fresh = readdirSync(staging).sort((a, b) => Number(a === 'model.json') - Number(b === 'model.json'));
  step('removing the old model.json', () => rmSync(join(dir, 'model.json'), { force: true }));
  for (const f of fresh) {
    if (f !== 'model.json') step(`writing ${f}`, () => renameSync(join(staging, f), join(dir, f)));
  }
  for (const f of readdirSync(dir)) if (SHARD.test(f) && !fresh.includes(f)) step(`removing the old ${f}`, () => rmSync(join(dir, f), { force: true }));
  step('writing model.json', () => renameSync(join(staging, 'model.json'), join(dir, 'model.json')));
}

/** Writes the model into `staging` (its README speaking of `dir`, where it will be) and checks it. */
async function exportInto(staging: string, dir: string, model: LanguageModel, tokenizer: Tokenizer, info: ExportInfo): Promise<ExportMetadata> {
  const layers = await import('@primer-search/layers');
  const { fileSystem, loadModel } = await import('@primer-search/layers/node');
  const tf = model.tf;
  const dna = model.blocks[0]!.plan.dna;
  const { vocabSize, dModel, seqLen } = model.config;
  const s = info.settings;
  const metadata: ExportMetadata = {
    format: 'primer-exported-model',
    version: 1,
    name: info.name,
    source: info.source,
    dnaHash: dnaHash(dna),
    dataset: s.dataset,
    tokenizer: tokenizer.name,
    vocabSize,
    layers: model.config.layers,
    dModel,
    seqLen,
    parameters: info.result.parameters,
    steps: info.result.steps,
    tokens: info.result.tokens,
    budget: formatBudget(s.budget),
    seed: s.seed,
    ...(info.result.final ? { validation: { ...info.result.final, windows: s.evalWindows } } : {}),
    exportedAt: new Date().toISOString(),
  };
  const out = layers.causalLanguageModel({ vocabSize, dModel, layers: model.config.layers, maxLength: seqLen, block: { dna }, name: info.name.replace(/[^A-Za-z0-9_]/g, '_') });
  layers.setCompiledWeights(out, model.namedVariables);
  out.setUserDefinedMetadata({ primerSearch: metadata as never });
  await out.save(fileSystem(staging));
  saveTokenizer(tokenizer, staging);
  writeFileSync(join(staging, 'dna.json'), jsonText(dna));
  writeFileSync(join(staging, 'README.md'), readme(dir, readdirSync(staging), metadata, s));

  // what was written computes what was trained
  const loaded = await loadModel(staging);
  const sample = tokenizer.encode('The Fulton County Grand Jury said Friday an investigation of recent primary elections produced no evidence.');
  const window = Int32Array.from({ length: seqLen }, (_, i) => sample[i % sample.length]! % vocabSize);
  const both = tf.tidy(() => {
    const ids = tf.tensor2d(window, [1, seqLen], 'int32');
    return [model.logits(ids), loaded.predict(ids) as ReturnType<typeof tf.zeros>];
  });
  // read asynchronously: a GPU backend has no synchronous read in Node
  const [trained, reloaded] = await Promise.all(both.map((t) => t.data())).finally(() => tf.dispose(both));
  let worst = 0;
  for (let i = 0; i < trained.length; i++) worst = Math.max(worst, Math.abs(trained[i]! - reloaded[i]!));
  loaded.dispose();
  out.dispose();
  if (!(worst <= EXPORT_TOLERANCE)) throw new PrimerError('EXPORT_FAILED', `the model exported for ${dir} does not compute what was trained: its logits differ by up to ${worst} (over ${EXPORT_TOLERANCE}); nothing was written there`);
  return metadata;
}

function readme(dir: string, written: string[], m: ExportMetadata, s: RunSettings): string {
  const files = [...new Set([...written, 'README.md'])].sort();
  const v = m.validation;
  return `# ${m.name}: a language model trained with primer-search

- **Model:** ${m.layers} × the \`${m.name}\` block (DNA hash \`${m.dnaHash}\`, in \`dna.json\`), model width ${m.dModel}, context ${m.seqLen} tokens, ${fmt(m.parameters)} parameters; token embedding × sqrt(${m.dModel}) plus a sinusoidal position signal, a final layer norm, the softmax tied to the embedding.
- **Trained on:** ${m.dataset} with the ${m.tokenizer} tokenizer (vocabulary ${fmt(m.vocabSize)}), ${fmt(m.steps)} steps of batch ${s.batch} (${fmt(m.tokens)} tokens; budget ${m.budget}), seed ${m.seed}, ${s.train.optimizer} at learning rate ${s.train.learningRate}.
- **Validation:** ${v ? `perplexity ${v.perplexity.toFixed(3)} (loss ${v.loss.toFixed(4)} nats/token) over ${v.windows} windows of ${m.seqLen} tokens` : 'none (the run did not complete)'}.
- **Made by:** ${m.source}, exported ${m.exportedAt}.

## Generate text

    primer generate --model ${dir} --prompt "The jury said" --tokens 200

## Load it in Node

    import * as tf from '@tensorflow/tfjs';
    import { generate } from '@primer-search/layers';
    import { loadModel } from '@primer-search/layers/node';

    const model = await loadModel('${dir}');   // a tf.LayersModel: int32 tokens [batch, seq] -> logits [batch, seq, ${m.vocabSize}]

## Load it in a browser

Serve this folder and load \`model.json\` (importing \`@primer-search/layers\` registers its layers):

    import * as tf from '@tensorflow/tfjs';
    import { generate } from '@primer-search/layers';

    const model = await tf.loadLayersModel('/path/to/this/folder/model.json');
    const ids = await generate(model, promptIds, { tokens: 100, temperature: 0.8, seed: 1 });

\`tokenizer.json\` names the tokenizer (${m.tokenizer})${m.tokenizer === 'byte' ? ': ids 0-255 are UTF-8 bytes, 256 ends a document' : ''}; \`examples/browser/\` in the primer-search repository is a page that does all of this.

## Files

${files.map((f) => `- \`${f}\``).join('\n')}
`;
}
