// `npm run bench`: training throughput of the reference configurations, stock wasm and our
// fast wasm side by side in one process (ratios are what to compare: this machine is shared).
// Rows: stock kernels with the plain compiler (no fused projections, branches one by one); our kernels with products on XNNPACK (what
// `npm ci` alone gives); ours with products on the system's BLAS (the native path, where
// OpenBLAS is installed; the default then).
import * as tf from '@tensorflow/tfjs';
import { baselineDna } from '@primer-search/baselines';
import { compileLanguageModel } from '@primer-search/compiler';
import { Rng } from '@primer-search/core';
import { BatchSampler, evaluationBatches } from '@primer-search/datasets';
import { loadNativeBlas, selectBackend, setNativeProducts, setWasmKernels, trainModel } from '@primer-search/trainer-gpu';

interface Config {
  label: string;
  model: string;
  layers: number;
  dModel: number;
  seqLen: number;
  batch: number;
  vocab: number;
  steps: { stock: number; fast: number };
}

const quick = process.argv.includes('--quick');
const configs: Config[] = [
  { label: 'reference', model: 'vanilla', layers: 2, dModel: 128, seqLen: 64, batch: 16, vocab: 1024, steps: { stock: 6, fast: 20 } },
  { label: 'reference', model: 'primer-ez', layers: 2, dModel: 128, seqLen: 64, batch: 16, vocab: 1024, steps: { stock: 6, fast: 20 } },
  { label: 'larger', model: 'vanilla', layers: 4, dModel: 256, seqLen: 128, batch: 16, vocab: 1024, steps: { stock: 2, fast: 5 } },
];

await selectBackend('wasm');
const rng = Rng.create('bench');
const stream = Uint32Array.from({ length: 200_000 }, () => rng.int(0, 1023));

const native = loadNativeBlas();
console.error(native.ok ? `native products: ${native.library} (${native.threads} thread), addon ${native.addon}` : `native products: off (${native.reason}); their row is left out`);

async function measure(c: Config, kind: 'stock' | 'fast' | 'native') {
  // the stock row runs the plain compiler too: no fused projections, one run per branch
  const plain = kind === 'stock';
  setWasmKernels(kind === 'stock' ? 'stock' : 'fast');
  setNativeProducts(kind === 'native');
  const t0 = performance.now();
  const model = compileLanguageModel(baselineDna(c.model, { dModel: c.dModel }), { tf: tf as never, vocabSize: c.vocab, layers: c.layers, dModel: c.dModel, seqLen: c.seqLen, seed: 1, fuseProjections: !plain, stackBranches: !plain, fuseKernels: !plain });
  const compileSeconds = (performance.now() - t0) / 1000;
  const sampler = new BatchSampler(stream, c.batch, c.seqLen, 1);
  const evaluation = evaluationBatches(stream, c.batch, c.seqLen, 4 * c.batch);
  const steps = quick ? Math.min(2, c.steps[kind === 'stock' ? 'stock' : 'fast']) : c.steps[kind === 'stock' ? 'stock' : 'fast'];
  // three steps first: tfjs's first steps pay for kernel setup, memory growth and the JIT (steady state from about the fourth)
  await trainModel({ model, sampler, evaluation: evaluation.slice(0, 1), budget: { kind: 'steps', steps: quick ? 1 : 3 }, config: { checkpoints: [] } });
  const r = await trainModel({ model, sampler, evaluation, budget: { kind: 'steps', steps }, config: { checkpoints: [] } });
  const msPerStep = (1000 * r.trainSeconds) / r.steps;
  const tokensPerSecond = r.tokensPerSecond;
  const gflops = (model.estimate.trainingFlopsPerToken * tokensPerSecond) / 1e9;
  model.dispose();
  return { msPerStep, tokensPerSecond, gflops, compileSeconds, evalSeconds: r.evalSeconds, params: model.estimate.parameters };
}

const rows: string[][] = [['config', 'model', 'params', 'kernels', 'ms/step', 'tokens/s', 'GFLOP/s', 'vs stock']];
for (const c of configs) {
  const stock = await measure(c, 'stock');
  const fast = await measure(c, 'fast');
  const withNative = native.ok ? await measure(c, 'native') : undefined;
  const name = `${c.label} ${c.layers}x${c.dModel} seq${c.seqLen} b${c.batch} V${c.vocab}`;
  const measured: Array<[string, typeof stock]> = [['stock', stock], ['ours, XNNPACK products', fast]];
  if (withNative) measured.push(['ours, native BLAS products', withNative]);
  for (const [kind, m] of measured) {
    rows.push([name, c.model, m.params.toLocaleString('en-US'), kind, m.msPerStep.toFixed(0), m.tokensPerSecond.toFixed(0), m.gflops.toFixed(1), `${(m.tokensPerSecond / stock.tokensPerSecond).toFixed(2)}x`]);
  }
  console.error(`done: ${name} ${c.model} (compile ${fast.compileSeconds.toFixed(2)}s, evaluation of ${4 * c.batch} windows ${fast.evalSeconds.toFixed(2)}s)`);
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
console.log(rows.map((r) => r.map((x, i) => (i < 4 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ')).join('\n'));
console.log(`\nwasm backend, one process, one core; Node ${process.version}; ${new Date().toISOString()}`);
