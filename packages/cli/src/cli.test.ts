import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createServer, type AddressInfo } from 'node:net';
import { dnaHash, validateDna } from '@primer-search/dna';
import { builtinPrimitives } from '@primer-search/primitives';
import { describe, expect, it } from 'vitest';
import { buildProgram, main, numberedPath, type CliIo } from './index.js';
import { configFlags } from './config.js';

const configFlagsOf = (path: string) => {
  const io: CliIo = { stdout: () => {}, stderr: () => {}, readFile: (p) => readFileSync(p, 'utf8'), writeFile: () => {} };
  return configFlags(io, path, buildProgram(io, { exitCode: 0 }).commands.find((c) => c.name() === 'search')!);
};

const root = fileURLToPath(new URL('../../../', import.meta.url));
const VANILLA = join(root, 'examples/dna/vanilla.json');

async function run(args: string[], files: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const written: Record<string, string> = {};
  const writes: Array<[string, string]> = [];
  const io: CliIo = {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    readFile: (p) => {
      if (p in files) return files[p]!;
      return readFileSync(p, 'utf8');
    },
    writeFile: (p, t) => {
      written[p] = t;
      writes.push([p, t]);
    },
  };
  const code = await main(args, io);
  return { code, stdout, stderr, written, writes };
}

describe('primer primitives', () => {
  it('lists the whole vocabulary as JSON', async () => {
    const r = await run(['primitives', '--json']);
    expect(r.code).toBe(0);
    const list = JSON.parse(r.stdout);
    expect(list.map((p: { name: string }) => p.name)).toEqual(builtinPrimitives.map((p) => p.name));
    expect(list.find((p: { name: string }) => p.name === 'CONV_1X1')).toMatchObject({
      arity: 1,
      reads: { input1: true, input2: false, constant: false, dimSize: true },
      sequenceMixing: 'none',
    });
  });

  it('prints a table by default', async () => {
    const r = await run(['primitives']);
    expect(r.stdout.split('\n')[0]).toMatch(/^OP +ARITY +READS +SEQUENCE +COMPUTES$/);
    expect(r.stdout).toContain('39 primitives.');
  });
});

describe('primer dna changes', () => {
  it("lists what makes a winner from its seed, and writes each change alone, inserted into the seed and removed from the winner", async () => {
    const seed = JSON.parse(readFileSync(VANILLA, 'utf8'));
    // the search's kind of winner: attention's call replaced by a causal convolution, the ReLU's scale raised
    const w = structuredClone(seed);
    const main = w.subprograms[0].instructions;
    const call = main.findIndex((i: { op: string; target?: number }) => i.op === 'CALL' && w.subprograms[i.target!]?.name === 'multi_head_attention');
    main[call] = { ...main[call], op: 'CONV_15X1', dimSize: 0, target: 0, branching: 1 };
    const relu = w.subprograms.findIndex((s: { name?: string }) => s.name === 'relu');
    const scale = w.subprograms[relu].instructions.find((i: { op: string }) => i.op === 'C_MUL').constant ?? 0;
    w.bank.constants[scale] = 2;
    const out = join(mkdtempSync(join(tmpdir(), 'primer-changes-')), 'parts');
    const r = await run(['dna', 'changes', VANILLA, 'winner.json', '--out', out], { 'winner.json': JSON.stringify(w) });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^2 changes from .*vanilla\.json \(hash [0-9a-f]{12}\) to winner\.json \(hash [0-9a-f]{12}\)$/m);
    expect(r.stdout).toMatch(/^change +what +inserted into the base +removed from the winner$/m);
    expect(r.stdout).toContain('+  const h2 = causalConv(h1, 15, 2 * unit);');
    expect(r.stdout).toContain('@@ base line');
    // removing the convolution from the winner is inserting the scale into the seed, and the other way round: each program written once, the others named
    expect(r.stdout).toMatch(new RegExp(`^c${scale} +bank constant c${scale}: 0\\.5 -> 2 += remove-sub0-main += insert-sub0-main$`, 'm'));
    const files = Object.keys(r.written).sort();
    expect(files.map((f) => f.slice(out.length + 1))).toEqual(['insert-sub0-main.json', 'remove-sub0-main.json']);
    expect(r.stdout).toContain(`primer compare --models ${VANILLA},winner.json,${join(out, 'insert-sub0-main.json')},${join(out, 'remove-sub0-main.json')} --seeds 3 --budget`);
    const hash = (f: string) => {
      const v = validateDna(JSON.parse(r.written[join(out, f)]!));
      if (!v.ok) throw v.error;
      return dnaHash(v.dna, { analysis: v.analysis });
    };
    const scaled = structuredClone(seed);
    scaled.bank.constants[scale] = 2;
    const checked = validateDna(scaled);
    if (!checked.ok) throw checked.error;
    expect(hash('remove-sub0-main.json')).toBe(dnaHash(checked.dna));
    // a baseline's constants depend on the width: naming one asks for --d-model
    const named = await run(['dna', 'changes', 'vanilla', 'winner.json'], { 'winner.json': JSON.stringify(w) });
    expect([named.code, named.stderr]).toEqual([2, expect.stringContaining('--d-model: vanilla is a baseline, whose constants depend on the width')]);
    const at128 = await run(['dna', 'changes', 'vanilla', 'winner.json', '--d-model', '128'], { 'winner.json': JSON.stringify(w) });
    expect(at128.code, at128.stderr).toBe(0);
    expect(at128.stdout).toMatch(/^2 changes from vanilla /m);
    const json = JSON.parse((await run(['dna', 'changes', VANILLA, 'winner.json', '--json'], { 'winner.json': JSON.stringify(w) })).stdout);
    expect(json.changes.map((c: { slug: string }) => c.slug)).toEqual(['sub0-main', `c${scale}`]);
    expect(json.files).toEqual([]);
    expect(json.same).toEqual({ [`insert-c${scale}`]: 'remove-sub0-main', [`remove-c${scale}`]: 'insert-sub0-main' });
    // programs of different layouts are refused, saying why
    w.bank.constants.push(1);
    const other = await run(['dna', 'changes', VANILLA, 'winner.json'], { 'winner.json': JSON.stringify(w) });
    expect([other.code, other.stderr]).toEqual([1, expect.stringContaining('the two programs differ in layout')]);
  });
});

describe('primer dna validate', () => {
  it('exits 0 for a valid DNA and prints its hash', async () => {
    const r = await run(['dna', 'validate', VANILLA]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/vanilla\.json: valid · hash [0-9a-f]{12} · 7 subprograms, 37 instructions \(37 live\)/);
  });

  it('exits 1 with the located error for an invalid DNA, and for bad JSON', async () => {
    const dna = JSON.parse(readFileSync(VANILLA, 'utf8'));
    const ffn = dna.subprograms.findIndex((s: { name: string }) => s.name === 'feed_forward');
    dna.subprograms[ffn].instructions[0].op = 'CONV1X1';
    const r = await run(['dna', 'validate', 'bad.json'], { 'bad.json': JSON.stringify(dna) });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `bad.json: invalid DNA: subprogram ${ffn} (feed_forward), instruction 0, field op: unknown op "CONV1X1" (did you mean CONV_1X1?); see \`primer primitives\`\n`,
    );
    const j = await run(['dna', 'validate', 'broken.json'], { 'broken.json': '{"format":\n  "primer-dna",,}' });
    expect(j.code).toBe(1);
    expect(j.stderr).toMatch(/^broken\.json:2:\d+: not valid JSON/);
  });

  it('exits 2 on usage errors: no file, unknown option, unreadable file', async () => {
    expect((await run(['dna', 'validate'])).code).toBe(2);
    expect((await run(['dna', 'validate', VANILLA, '--colour'])).code).toBe(2);
    const missing = await run(['dna', 'validate', '/nonexistent/x.json']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read /nonexistent/x.json: no such file');
    expect((await run(['nonsense'])).code).toBe(2);
  });

  it('reports every file, as JSON lines with --json', async () => {
    const r = await run(['dna', 'validate', VANILLA, 'b.json', '--json'], { 'b.json': '{}' });
    expect(r.code).toBe(1);
    const [a, b] = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(a).toMatchObject({ valid: true, instructions: 37 });
    expect(b).toMatchObject({ file: 'b.json', valid: false });
  });

  it('writes no character in its JSON that could reorder or hide what a terminal shows, and parses back to the same names', async () => {
    // a right-to-left override, a C1 CSI (ESC [ in one byte), DEL, a line separator and a zero-width space in a file name
    const name = 'evil\u202egnp.json\u009b31m\u007f\u2028\u200b.json';
    const r = await run(['dna', 'validate', name, '--json'], { [name]: readFileSync(VANILLA, 'utf8') });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/[\u007f-\u009f\u200b-\u200f\u2028-\u202e]/);
    expect(r.stdout).toContain('evil\\u202egnp.json\\u009b31m\\u007f\\u2028\\u200b.json');
    expect(JSON.parse(r.stdout)).toMatchObject({ file: name, valid: true });
  });

  it('writes the files it makes with the same escapes (a DNA name with a right-to-left override and a C1 CSI)', async () => {
    const named = { ...JSON.parse(readFileSync(VANILLA, 'utf8')), name: 'vanilla\u202e\u009b31m' };
    const r = await run(['dna', 'mutate', 'named.json', '--seed', '7', '--out', 'kid.json'], { 'named.json': JSON.stringify(named) });
    expect(r.code).toBe(0);
    const written = r.written['kid.json']!;
    expect(written).toContain('"name": "vanilla\\u202e\\u009b31m"');
    expect(written).not.toMatch(/[\u007f-\u009f\u202e]/);
    expect(JSON.parse(written).name).toBe(named.name);
  });

  it('prints names read from files with their control and direction characters escaped, in its text and its messages', async () => {
    // ESC [2J (clear the screen), a C1 CSI, a right-to-left override, a backspace
    const name = 'x\u001b[2J\u009b31m\u202e\u0008.json';
    const ok = await run(['dna', 'validate', name], { [name]: readFileSync(VANILLA, 'utf8') });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('x\\u001b[2J\\u009b31m\\u202e\\u0008.json: valid');
    const bad = await run(['dna', 'validate', name], { [name]: '{"nonsense\u001b[2J": 1}' });
    expect(bad.code).toBe(1);
    for (const text of [ok.stdout, bad.stdout, bad.stderr]) expect(text).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u202e]/);
    expect(bad.stderr).toContain('x\\u001b[2J');
  });
});

describe('primer baselines', () => {
  it('lists the five baselines with parameters per block', async () => {
    const r = await run(['baselines', '--json', '--d-model', '128']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.baselines.map((b: { name: string }) => b.name)).toEqual(['vanilla', 'gelu', 'transformer++', 'primer-ez', 'primer']);
    expect(out.baselines[0].parametersPerBlock).toBe(197_760);
  });

  it('lets dna commands take a baseline name instead of a file', async () => {
    const show = await run(['dna', 'show', 'primer-ez']);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('DCONV_3X1');
    const small = await run(['dna', 'show', 'vanilla', '--d-model', '32']);
    expect(small.stdout).toContain('tf.mul(h5, 0.353553)'); // 1 / sqrt(32 / 4)
    expect((await run(['dna', 'validate', 'transformer++'])).code).toBe(0);
    const typo = await run(['dna', 'show', 'primer_ez']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('no baseline is called that (did you mean primer-ez?); baselines: vanilla, gelu, transformer++, primer-ez, primer');
    expect((await run(['dna', 'show', 'vanila'])).stderr).toContain('(did you mean vanilla?)');
    expect((await run(['train', '--model', 'vanilla', '--dataset', 'bown'])).stderr).toContain('--dataset: no dataset "bown" (did you mean brown?)');
    expect((await run(['dna', 'show', 'zzzzzz'])).stderr).not.toContain('did you mean');
  });

  it('builds baselines at the width train and search use, so the hash dna show prints is the trained model\'s', async () => {
    const hashOf = (text: string) => /· hash ([0-9a-f]+)/.exec(text)![1];
    const shown = hashOf((await run(['dna', 'show', 'vanilla'])).stdout);
    const at64 = hashOf((await run(['dna', 'show', 'vanilla', '--d-model', '64'])).stdout);
    expect(shown).toBe(at64);
    expect(JSON.parse((await run(['baselines', '--json'])).stdout).dModel).toBe(64);
  });
});

describe('primer dna show', () => {
  it('prints the program as code', async () => {
    const r = await run(['dna', 'show', VANILLA]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('function attentionHead(h0, h1) {');
    expect(r.stdout).toContain('const h7 = causalSoftmax(h6);');
  });

  it('prints the canonical form with --canonical', async () => {
    const r = await run(['dna', 'show', VANILLA, '--canonical']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('function sub1(h0, h1)');
  });
});

describe('primer dna export', () => {
  it('writes a standalone TypeScript module of the block', async () => {
    const r = await run(['dna', 'export', 'primer-ez', '--d-model', '64', '--seq-len', '32', '--out', 'block.ts']);
    expect(r.code).toBe(0);
    const source = r.written['block.ts']!;
    expect(source).toMatch(/^\/\/ Generated by primer-search from the DNA "primer-ez" \(hash [0-9a-f]{12}\) for dModel 64, seqLen 32\./);
    expect(source).toContain("import type * as tfc from '@tensorflow/tfjs-core';");
    expect(source).not.toContain('@primer-search');
  });
});

describe('primer dna mutate', () => {
  it('is deterministic under --seed and writes valid children', async () => {
    const a = await run(['dna', 'mutate', VANILLA, '--seed', '7', '--count', '3', '--out', 'kid.json']);
    const b = await run(['dna', 'mutate', VANILLA, '--seed', '7', '--count', '3', '--out', 'kid.json']);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(b.stdout);
    expect(Object.keys(a.written)).toEqual(['kid-1.json', 'kid-2.json', 'kid-3.json']);
    for (const text of Object.values(a.written)) expect(validateDna(JSON.parse(text)).ok).toBe(true);
    expect(a.written).toEqual(b.written);
    const c = await run(['dna', 'mutate', VANILLA, '--seed', '8', '--count', '3']);
    expect(c.stdout).not.toBe(a.stdout);
  });

  it('walks a chain and reports mutations as JSON', async () => {
    const r = await run(['dna', 'mutate', VANILLA, '--seed', '1', '--count', '4', '--chain', '--json']);
    expect(r.code).toBe(0);
    const kids = JSON.parse(r.stdout);
    expect(kids).toHaveLength(4);
    // in a chain each child's parent is the previous valid child
    for (let i = 1; i < kids.length; i++) expect(kids[i].parentHash).toBe(kids[i - 1].hash);
    expect(kids[0].mutations[0].description).toMatch(/^(delete|insert|replace|change|swap)/);
  });

  it('rejects a bad --seed or --count as a usage error', async () => {
    expect((await run(['dna', 'mutate', VANILLA])).code).toBe(2);
    expect((await run(['dna', 'mutate', VANILLA, '--seed', 'x'])).code).toBe(2);
    expect((await run(['dna', 'mutate', VANILLA, '--seed', '1', '--count', '0'])).code).toBe(2);
  });

  it('names numbered output files', () => {
    expect(numberedPath('out/child.json', 3)).toBe('out/child-3.json');
    expect(numberedPath('child', 2)).toBe('child-2');
    expect(numberedPath('c{i}/dna.json', 4)).toBe('c4/dna.json');
  });
});

describe('primer train and compare', () => {
  const tiny = ['--d-model', '32', '--seq-len', '16', '--batch', '4', '--layers', '1', '--eval-windows', '8'];

  it('trains a baseline and reports the figures, as text and as JSON', async () => {
    const r = await run(['train', '--model', 'primer-ez', '--budget', '12steps', ...tiny]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^primer-ez on brown \(byte tokens, vocabulary 257\) · backend wasm · products: (native BLAS \(libopenblas\.so\.0(, \w+ kernels)?\)|XNNPACK \(wasm\): native BLAS off, .+) · budget 12 steps/);
    for (const field of ['steps         12', 'tokens        768', 'tokens/s', 'parameters', 'FLOPs/token', 'validation    loss']) expect(r.stdout).toContain(field);
    expect(r.stderr).toContain('validation at step 3');
    expect(r.stderr).toMatch(/data: [\d,]+ training and [\d,]+ validation tokens, vocabulary 257/);
    const j = await run(['train', '--model', 'vanilla', '--budget', '6steps', '--json', '--out', 'rec.json', ...tiny]);
    const rec = JSON.parse(j.stdout);
    expect(rec.result.steps).toBe(6);
    expect(rec.backend.choice).toBe('wasm');
    expect(rec.settings.budget).toEqual({ kind: 'steps', steps: 6 });
    expect(JSON.parse(j.written['rec.json']!)).toEqual(rec);
  });

  it('trains under a FLOP budget: the steps the compiler\'s estimate pays for, the same on every run', async () => {
    const a = JSON.parse((await run(['train', '--model', 'vanilla', '--budget', '2e8flops', '--json', ...tiny])).stdout);
    const b = JSON.parse((await run(['train', '--model', 'vanilla', '--budget', '2e8flops', '--json', ...tiny])).stdout);
    expect(a.settings.budget).toEqual({ kind: 'flops', flops: 2e8 });
    expect(a.result.steps).toBe(Math.ceil(2e8 / (4 * 16 * a.model.trainingFlopsPerToken)));
    expect(b.result.steps).toBe(a.result.steps);
    expect(b.result.final.loss).toBe(a.result.final.loss);
    const text = await run(['train', '--model', 'vanilla', '--budget', '1e8flops', ...tiny]);
    expect(text.stdout).toContain('budget 1e8 FLOPs');
  });

  it('resumes a run from its checkpoint, and refuses other data settings, another model or another learning rate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-cli-ckpt-'));
    const ckpt = join(dir, 'run');
    // checkpoints are written by the trainer itself, to the real file system
    const first = await run(['train', '--model', 'vanilla', '--budget', '6steps', '--checkpoint', ckpt, ...tiny]);
    expect(first.code).toBe(0);
    const more = await run(['train', '--model', 'vanilla', '--budget', '10steps', '--checkpoint', ckpt, '--resume', ...tiny]);
    expect(more.code).toBe(0);
    expect(more.stderr).toContain('resuming');
    expect(more.stderr).toContain('at step 6');
    expect(more.stdout).toContain('steps         10');
    const other = await run(['train', '--model', 'vanilla', '--budget', '12steps', '--checkpoint', ckpt, '--resume', ...tiny, '--batch', '2']);
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('the checkpoint was made with other settings: batch 4 (now 2)');
    // another DNA of the same parameter names and shapes (gelu is vanilla with another activation)
    const gelu = await run(['train', '--model', 'gelu', '--budget', '12steps', '--checkpoint', ckpt, '--resume', ...tiny]);
    expect(gelu.code).toBe(1);
    expect(gelu.stderr).toMatch(/the checkpoint was made with other settings: dna "[0-9a-f]{64}" \(now "[0-9a-f]{64}"\)/);
    const lr = await run(['train', '--model', 'vanilla', '--budget', '12steps', '--checkpoint', ckpt, '--resume', ...tiny, '--lr', '0.01']);
    expect(lr.code).toBe(1);
    expect(lr.stderr).toContain('learningRate 0.002 (now 0.01)');
    const windows = await run(['train', '--model', 'vanilla', '--budget', '12steps', '--checkpoint', ckpt, '--resume', ...tiny, '--eval-windows', '4']);
    expect(windows.stderr).toContain('evalWindows 8 (now 4)');
    expect((await run(['train', '--model', 'vanilla', '--resume'])).code).toBe(2);
  });

  it('refuses bad budgets and unknown models', async () => {
    const b = await run(['train', '--model', 'vanilla', '--budget', 'soon']);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('cannot read the budget "soon"');
    expect((await run(['train', '--model', 'primer_ez', '--budget', '1steps'])).code).toBe(2);
  });

  it('compares models under one budget and writes the curves', async () => {
    const r = await run(['compare', '--models', 'vanilla,primer-ez', '--budget', '10steps', '--csv', 'c.csv', ...tiny]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^model +params +steps +tokens\/s +val perplexity +speedup vs vanilla$/);
    expect(lines[1]).toMatch(/^vanilla .* 1\.00x \(reference\)$/);
    expect(lines[2]).toMatch(/^primer-ez /);
    const csv = r.written['c.csv']!.trim().split('\n');
    expect(csv[0]).toBe('model,seed,step,tokens,seconds,flops,loss,perplexity');
    expect(csv).toHaveLength(1 + 2 * 10); // 9 checkpoints + the end, per model
    // written after each run: a comparison stopped during the second keeps the first's curve
    const csvWrites = r.writes.filter(([p]) => p === 'c.csv').map(([, t]) => t.trim().split('\n'));
    expect(csvWrites).toHaveLength(2);
    expect(csvWrites[0]).toEqual(csv.slice(0, 1 + 10));
  });

  it('compares over seeds: mean ± sd, speedups with intervals, and which differences are within the noise', async () => {
    const r = await run(['compare', '--models', 'vanilla,primer-ez', '--budget', '6steps', '--seeds', '3', '--seed', '4', '--json', ...tiny]);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.seeds).toEqual([4, 5, 6]);
    expect(j.perSeed).toHaveLength(6);
    // seeds give different but reproducible numbers
    const vanilla = j.perSeed.filter((x: { model: string }) => x.model === 'vanilla').map((x: { finalPerplexity: number }) => x.finalPerplexity);
    expect(new Set(vanilla).size).toBe(3);
    const again = JSON.parse((await run(['train', '--model', 'vanilla', '--budget', '6steps', '--seed', '5', '--json', ...tiny])).stdout);
    expect(again.result.final.perplexity).toBe(vanilla[1]);
    // the statistics, against a hand computation
    const mean = vanilla.reduce((a: number, b: number) => a + b, 0) / 3;
    const sd = Math.sqrt(vanilla.reduce((a: number, v: number) => a + (v - mean) ** 2, 0) / 2);
    const [ref, ez] = j.rows;
    expect(ref.perplexity.mean).toBeCloseTo(mean, 10);
    expect(ref.perplexity.sd).toBeCloseTo(sd, 10);
    expect(ref.perplexity.interval[1] - mean).toBeCloseTo((4.303 * sd) / Math.sqrt(3), 10);
    expect(['better', 'worse', 'within the noise']).toContain(ez.verdict);
    const d = ez.perplexityDifference;
    expect(ez.verdict).toBe(d.interval[1] < 0 ? 'better' : d.interval[0] > 0 ? 'worse' : 'within the noise');
    // --out writes the same record --json prints
    const both = await run(['compare', '--models', 'vanilla,primer-ez', '--budget', '3steps', '--json', '--out', 'o.json', ...tiny]);
    expect(JSON.parse(both.written['o.json']!)).toEqual(JSON.parse(both.stdout));
    expect(Object.keys(JSON.parse(both.stdout))).toEqual(['reference', 'axis', 'seeds', 'rows', 'perSeed', 'records']);
    const text = await run(['compare', '--models', 'vanilla,primer-ez', '--budget', '3steps', '--seeds', '2', ...tiny]);
    expect(text.stdout).toMatch(/^model +params +steps +tokens\/s +val perplexity \(mean ± sd\) +speedup vs vanilla \(geo\. mean\) +perplexity − vanilla's \(mean\)$/m);
    expect(text.stdout).toMatch(/^vanilla .* ± .*\(reference\)$/m);
    // two seeds: no interval, no verdict, and it says why
    expect(text.stdout).not.toMatch(/\[/);
    expect(text.stdout).toContain('2 seeds are too few for a 95% interval or a verdict');
    // a step budget: speedups in steps, not in the machine's seconds
    expect(text.stdout).toContain('speedup: the training steps vanilla needed to reach its final perplexity');
  }, 120_000);

  it('measures against the model --against names, labels DNA files by file name or --labels, and refuses what it cannot label', async () => {
    const r = await run(['compare', '--models', `vanilla,${VANILLA}`, '--labels', 'a,b', '--against', 'b', '--budget', '3steps', '--json', ...tiny]);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.reference).toBe('b');
    expect(j.rows.map((x: { model: string }) => x.model)).toEqual(['a', 'b']);
    expect(j.rows[1].speedup).toBe(1);
    const named = await run(['compare', '--models', `primer-ez,${VANILLA}`, '--budget', '2steps', ...tiny]);
    expect(named.stdout).toMatch(/^primer-ez .*1\.00x \(reference\)$/m);
    expect(named.stdout).toMatch(/^vanilla /m);
    expect(named.stdout).not.toContain(`${VANILLA}  `);
    const same = await run(['compare', '--models', `vanilla,${VANILLA}`, '--budget', '2steps', ...tiny]);
    expect([same.code, same.stderr]).toEqual([2, expect.stringContaining('two models are labelled "vanilla": give each its own name with --labels')]);
    const against = await run(['compare', '--models', 'vanilla,primer-ez', '--against', 'primer_ez', '--budget', '2steps', ...tiny]);
    expect([against.code, against.stderr]).toEqual([2, expect.stringContaining('--against: "primer_ez" is not one of the models (did you mean primer-ez?)')]);
    const count = await run(['compare', '--models', 'vanilla,primer-ez', '--labels', 'x', '--budget', '2steps', ...tiny]);
    expect(count.code).toBe(2);
  }, 120_000);
});

describe('--config: settings from a file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'primer-config-'));
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  it('reads JSON or YAML keyed by the flags, and flags on the command line override it', async () => {
    const yaml = file('run.yaml', 'model: vanilla\nbudget: 3steps\nd-model: 32\nseqLen: 16\nbatch: 4\nlayers: 1\neval-windows: 2\n');
    const a = JSON.parse((await run(['train', '--config', yaml, '--json'])).stdout);
    expect([a.result.steps, a.settings.dModel, a.settings.seqLen]).toEqual([3, 32, 16]);
    const b = JSON.parse((await run(['train', '--config', yaml, '--budget', '2steps', '--json'])).stdout);
    expect([b.result.steps, b.settings.dModel]).toEqual([2, 32]);
    const json = file('run.json', JSON.stringify({ model: 'vanilla', budget: '2steps', 'd-model': 32, 'seq-len': 16, batch: 4, layers: 1, 'eval-windows': 2, json: true }));
    expect(JSON.parse((await run(['train', `--config=${json}`])).stdout).result.steps).toBe(2);
  }, 60_000);

  it("checks each setting with its flag's own message, naming the file and the key", async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['a.yaml', 'candidates: 0\n', /--config .*a\.yaml: "candidates": --candidates must be an integer >= 1\./],
      ['b.json', '{"canidates": 3}', /"canidates" is not a setting of primer search \(did you mean candidates\?\)/],
      ['c.json', '[1, 2]', /expected an object of settings \(flag names as keys\), got a list/],
      ['d.json', '{"candidates": ', /cannot read it as JSON/],
      ['e.yaml', 'batch-mode: zigzag\n', /"batch-mode": "zigzag" is not one of packed, sentence/],
      ['f.yaml', 'resume: 3\n', /--resume is a switch: write true or false/],
      ['g.yaml', 'budget-per-candidate: soon\n', /"budget-per-candidate": cannot read the budget "soon"/],
      ['h.yaml', 'config: other.yaml\n', /a settings file cannot name another/],
      ['i.json', '{"d-model": 32, "dModel": 16}', /"dModel" sets what "d-model" already set: keep one/],
      ['j.yaml', 'study: --resume\n', /"study": "--resume" looks like a flag, not a value/],
    ];
    for (const [name, text, why] of cases) {
      const r = await run(['search', '--config', file(name, text)]);
      expect([r.code, r.stderr], name).toEqual([2, expect.stringMatching(why)]);
    }
    expect((await run(['search', '--config', join(dir, 'none.yaml')])).stderr).toMatch(/cannot read .*none\.yaml: no such file/);
    const twice = await run(['search', '--config', file('k.yaml', 'candidates: 2\n'), '--config', file('l.yaml', 'candidates: 3\n')]);
    expect([twice.code, twice.stderr]).toEqual([2, expect.stringContaining('--config: give one settings file')]);
    // a switch set to false where the flag is a negation (--no-dedupe-behaviour), and lists for list flags
    const ok = file('ok.yaml', 'dedupe-behaviour: false\nhurdles: [0.25, 0.5]\nplugin: []\n');
    expect(configFlagsOf(ok)).toEqual(['--no-dedupe-behaviour', '--hurdles', '0.25,0.5']);
  });
});

describe('the primer executable', () => {
  it('sets the process exit status (0, 1, 2) from source', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-cli-'));
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"format": "primer-dna"}');
    const exec = (args: string[]) =>
      promisify(execFile)(process.execPath, ['--conditions=@primer-search/source', '--import', 'tsx', join(root, 'tools/primer-dev.ts'), ...args], { cwd: root })
        .then(() => 0)
        .catch((e: { code: number }) => e.code);
    expect(await exec(['dna', 'validate', VANILLA])).toBe(0);
    expect(await exec(['dna', 'validate', bad])).toBe(1);
    expect(await exec(['dna', 'validate'])).toBe(2);
  });

  it('dashboard on a busy port: says so and exits 1, leaving nothing running', async () => {
    const busy = createServer();
    await new Promise<void>((ok) => busy.listen(0, '127.0.0.1', ok));
    const port = (busy.address() as AddressInfo).port;
    try {
      const t0 = performance.now();
      const e = await promisify(execFile)(
        process.execPath,
        ['--conditions=@primer-search/source', '--import', 'tsx', join(root, 'tools/primer-dev.ts'), 'dashboard', '--study', join(tmpdir(), 'never-there.sqlite'), '--port', String(port)],
        { cwd: root, timeout: 30_000 },
      ).then(
        () => ({ code: 0, stderr: '', killed: false }),
        (x: { code: number; stderr: string; killed: boolean }) => x,
      );
      expect(e.killed).toBe(false);
      expect([e.code, e.stderr]).toEqual([1, expect.stringContaining(`--port ${port}: something else listens there`)]);
      expect(performance.now() - t0).toBeLessThan(30_000);
    } finally {
      busy.close();
    }
  }, 60_000);

  it("trains on the cpu backend without tfjs's greeting to Node users (the backend is chosen on purpose)", async () => {
    const { stderr, stdout } = await promisify(execFile)(
      process.execPath,
      ['--conditions=@primer-search/source', '--import', 'tsx', join(root, 'tools/primer-dev.ts'), 'train', '--model', 'vanilla', '--backend', 'cpu', '--budget', '2steps', '--d-model', '16', '--seq-len', '8', '--batch', '2', '--layers', '1', '--eval-windows', '1'],
      { cwd: root },
    );
    expect(stdout).toContain('backend cpu');
    expect(`${stdout}${stderr}`).not.toMatch(/running TensorFlow\.js in Node\.js/);
  }, 60_000);
});
