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
import { availableParallelism } from 'node:os';
import { DataParallel, loadNativeBlas, selectBackend, setBlasThreads, setNativeProducts, setWasmKernels, trainModel } from '@primer-search/trainer-gpu';

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
console.error(native.ok ? `native products: ${native.library} (${native.threads} thread, ${native.core || 'its own'} kernels${native.coreChosen ? ", chosen by the CPU's flags" : ''}), addon ${native.addon}` : `native products: off (${native.reason}); their row is left out`);

/**
 * One row: `stock` (tfjs's kernels, the plain compiler, the tape), `fast` (ours, XNNPACK
 * products), `native` (ours, BLAS products); `taped` runs the tape instead of the compiled step;
 * `cores` > 1 trains on that many cores, by BLAS threads or by data-parallel threads.
 */
async function measure(c: Config, kind: 'stock' | 'fast' | 'native', how: { taped?: boolean; cores?: { n: number; by: 'blas' | 'data-parallel' } } = {}) {
  // the stock row runs the plain compiler and the tape too: no fused projections, one run per branch
  const plain = kind === 'stock';
  setWasmKernels(kind === 'stock' ? 'stock' : 'fast');
  setNativeProducts(kind === 'native');
  process.env.PRIMER_COMPILED_STEP = plain || how.taped ? 'off' : 'on';
  const t0 = performance.now();
  const dna = baselineDna(c.model, { dModel: c.dModel });
  const runOptions = { fuseProjections: !plain, stackBranches: !plain, fuseKernels: !plain };
  const model = compileLanguageModel(dna, { tf: tf as never, vocabSize: c.vocab, layers: c.layers, dModel: c.dModel, seqLen: c.seqLen, seed: 1, ...runOptions });
  const compileSeconds = (performance.now() - t0) / 1000;
  const sampler = new BatchSampler(stream, c.batch, c.seqLen, 1);
  const evaluation = evaluationBatches(stream, c.batch, c.seqLen, 4 * c.batch);
  // two more steps for our kernels' rows, left out of the timing: a compiled step records its first and checks its second against the tape
  const steps = (quick ? Math.min(2, c.steps[kind === 'stock' ? 'stock' : 'fast']) : c.steps[kind === 'stock' ? 'stock' : 'fast']) + (plain ? 0 : 2);
  const blasBefore = how.cores?.by === 'blas' ? setBlasThreads(how.cores.n) : undefined;
  const parallel =
    how.cores?.by === 'data-parallel'
      ? await DataParallel.start(
          { dna, vocabSize: c.vocab, layers: c.layers, dModel: c.dModel, seqLen: c.seqLen, seed: '1', backend: 'wasm', runOptions, maxRows: Math.ceil(c.batch / how.cores.n) },
          how.cores.n,
          [...model.namedVariables] as never,
        )
      : undefined;
  try {
    // three steps first: tfjs's first steps pay for kernel setup, memory growth and the JIT (steady state from about the fourth); the compiled step records and checks itself in them
    await trainModel({ model, sampler, parallel, evaluation: evaluation.slice(0, 1), budget: { kind: 'steps', steps: quick ? 1 : 3 }, config: { checkpoints: [] } });
    const r = await trainModel({ model, sampler, parallel, evaluation, budget: { kind: 'steps', steps }, config: { checkpoints: [] } });
    if (!plain && !how.taped && r.compiledStep?.state !== 'replaying') console.error(`warning: ${c.model} ran on the tape: ${JSON.stringify(r.compiledStep)}`);
    // steady state: from the third step on (a compiled step records its first step and checks its second against the tape)
    // (the stock rows' full run too, as before; --quick times its two stock steps whole)
    const from = plain && quick ? 0 : Math.min(2, r.curve.length - 1);
    const seconds = r.curve.at(-1)!.seconds - (from > 0 ? r.curve[from - 1]!.seconds : 0);
    const msPerStep = (1000 * seconds) / (r.curve.length - from);
    const tokensPerSecond = (c.batch * c.seqLen * 1000) / msPerStep;
    const gflops = (model.estimate.trainingFlopsPerToken * tokensPerSecond) / 1e9;
    return { msPerStep, tokensPerSecond, gflops, compileSeconds, evalSeconds: r.evalSeconds, params: model.estimate.parameters };
  } finally {
    model.dispose();
    await parallel?.close();
    if (blasBefore !== undefined) setBlasThreads(blasBefore);
    delete process.env.PRIMER_COMPILED_STEP;
  }
}

const rows: string[][] = [['config', 'model', 'params', 'kernels', 'ms/step', 'tokens/s', 'GFLOP/s', 'vs stock']];
const best = native.ok ? 'native' : 'fast';
const bestName = native.ok ? 'native BLAS products' : 'XNNPACK products';
let larger: { config: Config; one: Awaited<ReturnType<typeof measure>> } | undefined;
for (const c of configs) {
  const stock = await measure(c, 'stock');
  const fast = await measure(c, 'fast');
  const withNative = native.ok ? await measure(c, 'native') : undefined;
  // the same kernels on the tape: what the compiled step saves
  const taped = await measure(c, best, { taped: true });
  const name = `${c.label} ${c.layers}x${c.dModel} seq${c.seqLen} b${c.batch} V${c.vocab}`;
  const measured: Array<[string, typeof stock]> = [['stock', stock], ['ours, XNNPACK products', fast]];
  if (withNative) measured.push(['ours, native BLAS products', withNative]);
  measured.push([`ours, ${bestName}, taped (no compiled step)`, taped]);
  if (c.label === 'larger') larger = { config: c, one: withNative ?? fast };
  for (const [kind, m] of measured) {
    rows.push([name, c.model, m.params.toLocaleString('en-US'), kind, m.msPerStep.toFixed(0), m.tokensPerSecond.toFixed(0), m.gflops.toFixed(1), `${(m.tokensPerSecond / stock.tokensPerSecond).toFixed(2)}x`]);
  }
  console.error(`done: ${name} ${c.model} (compile ${fast.compileSeconds.toFixed(2)}s, evaluation of ${4 * c.batch} windows ${fast.evalSeconds.toFixed(2)}s)`);
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
console.log(rows.map((r) => r.map((x, i) => (i < 4 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ')).join('\n'));

// one training on both cores, the larger config: BLAS threads (native products only) against data-parallel threads
const cores = Math.min(2, availableParallelism());
if (larger && cores > 1) {
  const c = larger.config;
  const both: string[][] = [['one training on the larger config', 'ms/step', 'tokens/s', 'vs one core']];
  const add = (label: string, m: Awaited<ReturnType<typeof measure>>) =>
    both.push([label, m.msPerStep.toFixed(0), m.tokensPerSecond.toFixed(0), `${(m.tokensPerSecond / larger!.one.tokensPerSecond).toFixed(2)}x`]);
  add(`one core, ${bestName}`, larger.one);
  if (native.ok) add(`${cores} cores: ${cores} BLAS threads`, await measure(c, 'native', { cores: { n: cores, by: 'blas' } }));
  add(`${cores} cores: --data-parallel ${cores}`, await measure(c, best, { cores: { n: cores, by: 'data-parallel' } }));
  const w = both[0]!.map((_, i) => Math.max(...both.map((r) => r[i]!.length)));
  console.log(`\n${both.map((r) => r.map((x, i) => (i < 1 ? x.padEnd(w[i]!) : x.padStart(w[i]!))).join('  ')).join('\n')}`);
}
console.log(`\nwasm backend, one process, one core; Node ${process.version}; ${new Date().toISOString()}`);
