// `npm run bench:parallel`: machine-level training throughput with one `primer train` process
// per core (two candidates at once, as the search's worker pool runs them) and one process
// training with --data-parallel 2 (one model, both cores), against one process alone, on the
// reference configuration (2 layers, dModel 128, seq 64, batch 16, BPE vocabulary 1024 on
// the Brown corpus).
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const steps = process.argv[2] ?? '40steps';
const args = ['--conditions=@primer-search/source', '--import', 'tsx', 'tools/primer-dev.ts', 'train', '--model', 'vanilla', '--budget', steps,
  '--layers', '2', '--d-model', '128', '--seq-len', '64', '--batch', '16', '--tokenizer', 'bpe', '--vocab-size', '1024', '--json'];
const ONE = ['--data-parallel', '1'];

function run(seed: number, extra: string[] = ONE): Promise<{ tokensPerSecond: number; seconds: number; tokens: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...args, '--seed', String(seed), ...extra], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`primer train exited ${code}`));
      const r = JSON.parse(out.slice(out.indexOf('{'))).result;
      resolve({ tokensPerSecond: r.tokensPerSecond, seconds: r.trainSeconds, tokens: r.tokens });
    });
  });
}

await run(0); // trains and caches the BPE vocabulary, warms the file cache
const single = await run(1);
const t0 = performance.now();
const pair = await Promise.all([run(2), run(3)]);
const wall = (performance.now() - t0) / 1000;
const summed = pair.reduce((a, r) => a + r.tokensPerSecond, 0);
console.log(`cores: ${availableParallelism()}; budget ${steps} per process`);
console.log(`one process alone:          ${single.tokensPerSecond.toFixed(0)} tokens/s`);
console.log(`two processes at once:      ${pair.map((r) => r.tokensPerSecond.toFixed(0)).join(' + ')} = ${summed.toFixed(0)} tokens/s for the machine (${(summed / single.tokensPerSecond).toFixed(2)}x one)`);
console.log(`(two processes took ${wall.toFixed(1)} s of wall time, including process start and data preparation)`);
const dp = await run(4, ['--data-parallel', '2']);
console.log(`one process, --data-parallel 2: ${dp.tokensPerSecond.toFixed(0)} tokens/s (${(dp.tokensPerSecond / single.tokensPerSecond).toFixed(2)}x one thread)`);
