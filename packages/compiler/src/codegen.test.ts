import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { baselineDna, baselines } from '@primer-search/baselines';
import { Rng } from '@primer-search/core';
import { mutateDna, type Dna } from '@primer-search/dna';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { tf } from './__fixtures__/tf-cpu.js';
import { compileBlock } from './block.js';
import { generateBlockModule } from './codegen.js';

const outDir = fileURLToPath(new URL('../.generated/', import.meta.url));
mkdirSync(outDir, { recursive: true });
const size = { dModel: 32, seqLen: 7 };
let counter = 0;

/** Writes the generated module, imports it, and compares it with the in-memory block on the same weights. */
async function compare(dna: Dna, seed: number) {
  const source = generateBlockModule(dna, size);
  const file = `${outDir}block-${process.pid}-${counter++}.ts`;
  writeFileSync(file, source);
  const mod = await import(/* @vite-ignore */ file);
  const compiled = compileBlock(dna, { tf, ...size, seed });
  // the module lists exactly the compiler's parameters, with the same shapes
  expect(mod.parameters.map((p: { name: string }) => p.name).sort()).toEqual([...compiled.variables.keys()].sort());
  for (const p of mod.parameters) expect(p.shape).toEqual(compiled.variables.get(p.name)!.shape);
  const x = tf.randomNormal([2, size.seqLen, size.dModel], 0, 1, 'float32', seed + 1);
  const [a, b] = tf.tidy(() => [
    Array.from(compiled.apply(x).dataSync()),
    Array.from(mod.block(tf, (name: string) => compiled.variables.get(name)!, x).dataSync() as Float32Array),
  ]);
  compiled.dispose();
  x.dispose();
  return { a: a!, b: b!, source, file };
}

describe('generateBlockModule', () => {
  for (const name of baselines.names()) {
    it(`${name}: the generated module computes what the compiler builds`, async () => {
      const { a, b, source } = await compare(baselineDna(name, size), 1);
      expect(b).toEqual(a);
      expect(source).toContain('export function block(tf: TF, p: Params, x: Tensor): Tensor {');
    });
  }

  it('does the same for random valid mutants', async () => {
    const rng = Rng.create(21);
    let dna = baselineDna('primer-ez', size);
    for (let i = 0; i < 8; i++) {
      dna = mutateDna(dna, rng, { requireValid: true }).child;
      const { a, b } = await compare(dna, i);
      const worst = a.reduce((m, v, k) => Math.max(m, Math.abs(v - b[k]!) / Math.max(1, Math.abs(v))), 0);
      expect(Number.isNaN(worst) ? 0 : worst, `mutant ${i}`).toBeLessThan(1e-6);
    }
  });

  it('is readable TypeScript that compiles under strict settings', async () => {
    const { source, file } = await compare(baselineDna('primer', size), 2);
    expect(source).toMatch(/function attentionHead\(tf: TF, p: Params, path: string, h0: Tensor, h1: Tensor\): Tensor \{/);
    expect(source).toContain("const h3 = depthwiseCausalConv(tf, h2, p(`${path}h3:DCONV_3X1.kernel`)); // DCONV_3X1 -> [8]");
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      skipLibCheck: true,
      types: [],
    });
    const problems = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(problems).toEqual([]);
  });
});
