// `npm run bench:gpu`: training throughput on the webgpu backend (Dawn) beside wasm with native
// products, config by config, in one process (ratios are what to compare). On a machine without a
// GPU the adapter is Mesa's llvmpipe, a CPU: the GPU-sized config is then left out unless `--all`.
// `--quick`: fewer steps. `--steps N`: steps timed per row (after three untimed ones).
import * as tf from '@tensorflow/tfjs';
import { baselineDna } from '@primer-search/baselines';
import { compileLanguageModel } from '@primer-search/compiler';
import { Rng } from '@primer-search/core';
import { BatchSampler, evaluationBatches } from '@primer-search/datasets';
import { selectBackend, trainModel, webgpuAdapter, type SelectedBackend } from '@primer-search/trainer-gpu';

interface Config {
  label: string;
  model: string;
  layers: number;
  dModel: number;
  seqLen: number;
  batch: number;
  vocab: number;
  /** Timed steps on wasm and on a GPU, at full length. */
  steps: number;
  /** Only on a GPU (or with --all): hours on a CPU. */
  gpuOnly?: boolean;
}

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const all = args.includes('--all');
const stepsFlag = args.indexOf('--steps');
const stepsOverride = stepsFlag >= 0 ? Number(args[stepsFlag + 1]) : undefined;
if (stepsOverride !== undefined && !(Number.isInteger(stepsOverride) && stepsOverride > 0)) {
  console.error(`--steps: a positive integer, got ${args[stepsFlag + 1]}`);
  process.exit(2);
}
const configs: Config[] = [
  { label: 'reference', model: 'vanilla', layers: 2, dModel: 128, seqLen: 64, batch: 16, vocab: 1024, steps: 10 },
  { label: 'larger', model: 'vanilla', layers: 4, dModel: 256, seqLen: 128, batch: 16, vocab: 1024, steps: 5 },
  { label: 'gpu-sized', model: 'vanilla', layers: 6, dModel: 512, seqLen: 256, batch: 32, vocab: 1024, steps: 5, gpuOnly: true },
];

let gpu: SelectedBackend;
try {
  gpu = await selectBackend('webgpu');
} catch (e) {
  console.error(`bench:gpu: the webgpu backend did not start: ${(e as Error).message}`);
  process.exit(1);
}
const adapter = webgpuAdapter()!;
const wasm = await selectBackend('wasm');
console.error(`webgpu: ${gpu.products}\nwasm: ${wasm.products}`);

const rng = Rng.create('bench');
const stream = Uint32Array.from({ length: 400_000 }, () => rng.int(0, 1023));

async function measure(c: Config, backend: 'wasm' | 'webgpu') {
  await selectBackend(backend);
  const model = compileLanguageModel(baselineDna(c.model, { dModel: c.dModel }), { tf: tf as never, vocabSize: c.vocab, layers: c.layers, dModel: c.dModel, seqLen: c.seqLen, seed: 1 });
  const sampler = new BatchSampler(stream, c.batch, c.seqLen, 1);
  const evaluation = evaluationBatches(stream, c.batch, c.seqLen, c.batch);
  const steps = stepsOverride ?? (quick ? 2 : c.steps);
  try {
    // three steps first, untimed: shader compilation, kernel setup, the compiled step's recording and check
    await trainModel({ model, sampler, evaluation, budget: { kind: 'steps', steps: 3 }, config: { checkpoints: [] } });
    const r = await trainModel({ model, sampler, evaluation, budget: { kind: 'steps', steps }, config: { checkpoints: [] } });
    const msPerStep = (1000 * r.trainSeconds) / r.steps;
    const tokensPerSecond = (c.batch * c.seqLen * 1000) / msPerStep;
    return { msPerStep, tokensPerSecond, gflops: (model.estimate.trainingFlopsPerToken * tokensPerSecond) / 1e9, params: model.estimate.parameters };
  } finally {
    model.dispose();
  }
}

const rows: string[][] = [['config', 'params', 'backend', 'ms/step', 'tokens/s', 'GFLOP/s', 'webgpu vs wasm']];
for (const c of configs) {
  const name = `${c.label} ${c.layers}x${c.dModel} seq${c.seqLen} b${c.batch} V${c.vocab}`;
  if (c.gpuOnly && adapter.software && !all) {
    console.error(`left out: ${name} (the adapter is software, ${adapter.description}; --all runs it)`);
    continue;
  }
  const onWasm = await measure(c, 'wasm');
  const onGpu = await measure(c, 'webgpu');
  for (const [label, m] of [[wasm.products.startsWith('native') ? 'wasm, native products' : 'wasm, XNNPACK products', onWasm], ['webgpu', onGpu]] as const) {
    rows.push([name, m.params.toLocaleString('en-US'), label, m.msPerStep.toFixed(0), m.tokensPerSecond.toFixed(0), m.gflops.toFixed(1), label === 'webgpu' ? `${(onGpu.tokensPerSecond / onWasm.tokensPerSecond).toFixed(2)}x` : '']);
  }
  console.error(`done: ${name}`);
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
console.log(rows.map((r) => r.map((x, i) => (i === 0 || i === 2 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ')).join('\n'));
console.log(`\nwebgpu: ${gpu.products}; wasm: ${wasm.products}, one core; Node ${process.version}; ${new Date().toISOString()}`);
