import { formatWidth, primitives as defaultPrimitives, type PrimitiveRegistry } from '@primer-search/primitives';
import { analyzeDna, type CallShapes, type DnaAnalysis } from './analyze.js';
import { dnaHash, shortHash } from './canonical.js';
import { CALL, inputCount, type Dna } from './types.js';

export interface FormatOptions {
  primitives?: PrimitiveRegistry;
  analysis?: DnaAnalysis;
  /** Show dead instructions as comments (default true). */
  showDead?: boolean;
  /** Print the header comment with hash, counts and bank (default true). */
  header?: boolean;
  /** Print the body of a subprogram no live code calls (default true; false: its title line only). */
  showUnused?: boolean;
}

const formatNumber = (v: number) => String(Number(v.toPrecision(6)));

/** A subprogram name as a camelCase identifier (`attention_head` -> `attentionHead`), or `fallback`. */
export function camelName(name: string | undefined, fallback: string): string {
  const words = (name ?? '').split(/[^A-Za-z0-9]+/).filter(Boolean);
  if (words.length === 0) return fallback;
  const s = words.map((w, k) => (k === 0 ? w.toLowerCase() : w[0]!.toUpperCase() + w.slice(1).toLowerCase())).join('');
  return /^[0-9]/.test(s) ? `sub${s}` : s;
}

function functionNames(dna: Dna): string[] {
  const seen = new Set<string>();
  return dna.subprograms.map((s, i) => {
    if (i === 0) return 'main';
    let name = camelName(s.name, `sub${i}`);
    if (seen.has(name) || name === 'main') name = `${name}${i}`;
    seen.add(name);
    return name;
  });
}

/** One call signature per subprogram (the first met from MAIN), for width annotations. */
function firstShapes(root: CallShapes | undefined): Map<number, CallShapes> {
  const out = new Map<number, CallShapes>();
  const visit = (c: CallShapes) => {
    if (!out.has(c.subprogram)) out.set(c.subprogram, c);
    for (const callee of c.calls.values()) visit(callee);
  };
  if (root) visit(root);
  return out;
}

/**
 * A DNA as readable TensorFlow.js-like code: one function per subprogram, one line per
 * instruction, annotated with each hidden state's width (in units of dModel/8, `seq` for
 * attention scores) and the op.
 */
export function formatDna(dna: Dna, options: FormatOptions = {}): string {
  const registry = options.primitives ?? defaultPrimitives;
  const analysis = options.analysis ?? analyzeDna(dna, registry);
  const names = functionNames(dna);
  const shapes = firstShapes(analysis.shapes);
  const lines: string[] = [];

  if (options.header !== false) {
    const total = dna.subprograms.reduce((a, s) => a + s.instructions.length, 0);
    const liveCount = analysis.live.reduce((a, s, i) => a + (analysis.used[i] ? s.filter(Boolean).length : 0), 0);
    let hash = '';
    try {
      hash = ` · hash ${shortHash(dnaHash(dna, { primitives: registry, analysis }))}`;
    } catch {
      hash = ' · (invalid: no hash)';
    }
    lines.push(
      `// ${dna.name ?? 'DNA'}${hash} · ${dna.subprograms.length} subprograms, ${total} instructions (${liveCount} live)`,
      `// bank: ${dna.bank.constants.map((c, i) => `c${i}=${formatNumber(c)}`).join(' ')} · ${dna.bank.dimSizes.map((d, i) => `d${i}=${d}u`).join(' ')}`,
      '// widths: u = dModel / 8 features; seq = one column per position (attention scores)',
      '',
    );
  }

  dna.subprograms.forEach((sub, s) => {
    const nIn = inputCount(s);
    const shape = shapes.get(s);
    const params = Array.from({ length: nIn }, (_, k) => `h${k}`).join(', ');
    const readsInput = s === 0 ? [true] : (analysis.readsInput[s] ?? [true, true]);
    const described = shape ? shape.inputs.slice(0, nIn).flatMap((w, k) => (readsInput[k] ? [`h${k}: [${formatWidth(w)}]`] : [])) : [];
    const sig = described.length ? `  // ${described.join(', ')}` : '';
    const title = s === 0 ? 'subprogram 0' : `subprogram ${s}${sub.name ? ` (${sub.name})` : ''}`;
    const unused = analysis.used[s] ? '' : ', never called';
    if (unused && options.showUnused === false) {
      lines.push(`// ${title}${unused}`, '');
      return;
    }
    lines.push(`// ${title}${unused}`, `function ${names[s]}(${params}) {${sig}`);
    sub.instructions.forEach((ins, i) => {
      const h = (k: number) => `h${k}`;
      let expr: string;
      if (ins.op === CALL) {
        const calleeReads = analysis.readsInput[ins.target] ?? [true, true];
        const args = [calleeReads[0] ? h(ins.input1) : undefined, calleeReads[1] ? h(ins.input2) : undefined].filter(Boolean);
        expr = `${names[ins.target] ?? `sub${ins.target}`}(${args.join(', ')})`;
      } else if (registry.has(ins.op)) {
        const d = registry.get(ins.op);
        const c = dna.bank.constants[ins.constant];
        const dim = dna.bank.dimSizes[ins.dimSize];
        expr = d.code({
          input1: h(ins.input1),
          input2: h(ins.input2),
          constant: c === undefined ? `c${ins.constant}` : formatNumber(c),
          dimSize: dim === undefined ? `d${ins.dimSize}` : `${dim} * unit`,
        });
      } else {
        expr = `${ins.op}(${h(ins.input1)}, ${h(ins.input2)}) /* unknown op */`;
      }
      if (ins.branching > 1) expr = `branch(${ins.branching}, () => ${expr})`;
      const w = shape?.states[nIn + i];
      const what = ins.op === CALL ? `CALL ${ins.target}` : ins.op;
      const note = `// ${w ? `[${formatWidth(w)}] ` : ''}${what}`;
      const code = `const ${h(nIn + i)} = ${expr};`;
      if (analysis.live[s]![i]) lines.push(`  ${code.padEnd(50)} ${note}`);
      else if (options.showDead !== false) lines.push(`  // dead: ${code}`);
    });
    lines.push(`  return h${nIn + sub.instructions.length - 1};`, '}', '');
  });
  return lines.join('\n').trimEnd() + '\n';
}
