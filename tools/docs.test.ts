import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { primitives } from '@primer-search/primitives';
import { describe, expect, it } from 'vitest';
import { EXCERPT_FILES, baselineExamples, dnaSchemaText, primitivesMarkdown, withExcerpts } from './docs.js';

const read = (p: string) => readFileSync(fileURLToPath(new URL(`../${p}`, import.meta.url)), 'utf8');

describe('generated docs (run `npm run docs` when these fail)', () => {
  it('docs/primitives.md has a doc line for every registered primitive (meta-test)', () => {
    const text = read('docs/primitives.md');
    for (const { name, entry } of primitives.list()) {
      const line = text.split('\n').find((l) => l.startsWith(`| \`${name}\` |`));
      expect(line, `no doc line for ${name}`).toBeDefined();
      expect(line).toContain(entry.doc.replaceAll('|', '\\|'));
    }
    expect(text).toBe(primitivesMarkdown());
  });

  it('docs/dna.schema.json is the schema the validator uses', () => {
    expect(read('docs/dna.schema.json')).toBe(dnaSchemaText());
  });

  it('examples/dna/*.json are the registered baselines', () => {
    for (const [file, text] of baselineExamples()) expect(read(`examples/dna/${file}`), file).toBe(text);
  });
});

describe("the tool's output in the docs (run `npm run docs` when these fail)", () => {
  it('every generated excerpt is what the tool prints now', async () => {
    let excerpts = 0;
    for (const file of EXCERPT_FILES) {
      const text = read(file);
      excerpts += (text.match(/<!-- generated: /g) ?? []).length;
      expect(await withExcerpts(text), file).toBe(text);
    }
    expect(excerpts).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it('an excerpt the generator does not know is an error, not left as it is', async () => {
    await expect(withExcerpts('<!-- generated: no-such-thing -->\n```\nx\n```\n<!-- end of generated -->')).rejects.toThrow(/no generated excerpt no-such-thing/);
  });

  it("the README's command list names every primer command, and only those", async () => {
    const { buildProgram } = await import('@primer-search/cli');
    const names: string[] = [];
    const walk = (c: { name(): string; commands: readonly unknown[] }, path: string[]) => {
      for (const s of c.commands as Array<{ name(): string; commands: readonly unknown[] }>) {
        if (s.commands.length) walk(s, [...path, s.name()]);
        else names.push([...path, s.name()].join(' '));
      }
    };
    walk(buildProgram({ stdout: () => {}, stderr: () => {}, readFile: () => '', writeFile: () => {} }, { exitCode: 0 }) as never, []);
    const readme = read('README.md');
    const block = readme.slice(readme.indexOf('## The `primer` command'), readme.indexOf('## Packages'));
    const listed = new Set([...block.matchAll(/^npx primer ([a-z-]+(?: [a-z-]+)?)/gm)].map((m) => m[1]!));
    for (const n of names) expect([...listed].some((l) => l === n || l.startsWith(`${n} `)), `README lists no "primer ${n}"`).toBe(true);
    for (const l of listed) expect(names.some((n) => l === n || l.startsWith(`${n} `)), `README lists "primer ${l}", which does not exist`).toBe(true);
  });
});
