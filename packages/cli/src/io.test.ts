import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, openSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isRegularOrAbsent, writeWhole } from './io.js';

describe('writeWhole: how the CLI writes its output files', () => {
  it('writes a new file and replaces an old one whole, leaving nothing beside them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-write-'));
    const file = join(dir, 'curves.csv');
    writeWhole(file, 'a\n');
    expect(readFileSync(file, 'utf8')).toBe('a\n');
    writeWhole(file, 'b\nc\n');
    expect(readFileSync(file, 'utf8')).toBe('b\nc\n');
    expect(readdirSync(dir)).toEqual(['curves.csv']);
  });

  it("removes the temporary files a killed writer left beside the same file once a day old, and nobody else's", () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-write-'));
    const file = join(dir, 'curves.csv');
    const day = Date.now() / 1000 - 25 * 3600;
    const left = ['curves.csv.123-0a1b2c3d.tmp', 'curves.csv.9-ffffffff.tmp', 'curves.csv.notes.tmp', 'other.csv.123-0a1b2c3d.tmp', 'curves.csv.1-00000000.tmp'];
    for (const n of left) writeFileSync(join(dir, n), 'half');
    // all old but the last (a writer at work now)
    for (const n of left.slice(0, 4)) utimesSync(join(dir, n), day, day);
    writeWhole(file, 'a\n');
    expect(readdirSync(dir).sort()).toEqual(['curves.csv', 'curves.csv.1-00000000.tmp', 'curves.csv.notes.tmp', 'other.csv.123-0a1b2c3d.tmp']);
  });

  it('writes through a link and into what is not a regular file, in place', () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-write-'));
    const target = join(dir, 'target.json');
    writeFileSync(target, 'old');
    symlinkSync(target, join(dir, 'link.json'));
    writeWhole(join(dir, 'link.json'), 'new');
    expect(readFileSync(target, 'utf8')).toBe('new');
    writeWhole('/dev/null', 'nothing');
    expect(readdirSync(dir).sort()).toEqual(['link.json', 'target.json']);
  });

  it("writes to /dev/stdout after what the process printed there, when its output goes to a file (--csv /dev/stdout > out.txt)", () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-write-'));
    const out = join(dir, 'out.txt');
    const io = fileURLToPath(new URL('./io.ts', import.meta.url));
    const script = `process.stdout.write('first\\n'); const { writeWhole } = await import(${JSON.stringify(pathToFileURL(io).href)}); writeWhole('/dev/stdout', 'second\\n'); writeWhole('/dev/stdout', 'third\\n', { durable: true }); process.stdout.write('fourth\\n');`;
    const fd = openSync(out, 'w');
    try {
      const r = spawnSync(process.execPath, ['--conditions=@primer-search/source', '--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', fd, 'pipe'], encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(out, 'utf8')).toBe('first\nsecond\nthird\nfourth\n');
    // a descriptor the process does not hold: named
    expect(() => writeWhole('/dev/fd/987', 'x')).toThrow(/cannot write \/dev\/fd\/987: ENOENT/);
  });

  it('writes to /dev/stdout whole when it is a pipe a slow reader empties, after the process printed there (Node makes its pipe non-blocking)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-write-'));
    const io = pathToFileURL(fileURLToPath(new URL('./io.ts', import.meta.url))).href;
    const script = join(dir, 'write.mjs');
    writeFileSync(script, `process.stdout.write('x'); void process.stderr.isTTY; const { writeWhole } = await import(${JSON.stringify(io)}); writeWhole('/dev/stdout', 'y'.repeat(1 << 20));\n`);
    const r = spawnSync('sh', ['-c', `"$0" --conditions=@primer-search/source --import tsx "$1" | (sleep 1; wc -c)`, process.execPath, script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(Number(r.stdout.trim())).toBe((1 << 20) + 1);
  });

  it('tells what it replaces whole (a file, or nothing yet) from what it writes in place', () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-write-'));
    writeFileSync(join(dir, 'file'), '');
    symlinkSync(join(dir, 'file'), join(dir, 'link'));
    expect([join(dir, 'file'), join(dir, 'none'), join(dir, 'link'), dir, '/dev/null'].map(isRegularOrAbsent)).toEqual([true, true, false, false, false]);
  });

  it('fails as writing would, naming the file, leaving nothing behind', () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-write-'));
    const missing = join(dir, 'no', 'such', 'folder.csv');
    expect(() => writeWhole(missing, 'x')).toThrow(`ENOENT: no such file or directory, open '${missing}'`);
    mkdirSync(join(dir, 'folder'));
    expect(() => writeWhole(join(dir, 'folder'), 'x')).toThrow(/EISDIR/);
    expect(readdirSync(dir)).toEqual(['folder']);
  });

  it('writes in place a file whose name leaves no room for the suffix of the one beside it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-write-'));
    // 250 characters: the name is allowed (255 at most), the name beside it (+ ".pid-random.tmp") is not
    const file = join(dir, `${'x'.repeat(246)}.csv`);
    writeFileSync(file, 'old');
    writeWhole(file, 'new');
    expect(readFileSync(file, 'utf8')).toBe('new');
    expect(readdirSync(dir)).toHaveLength(1);
  });

  const root = process.getuid?.() === 0;
  if (root) console.log('io.test.ts: the read-only folder case is skipped: running as root, which writes into a read-only folder anyway');
  it.skipIf(root)('writes in place a file whose folder takes no new file (skipped as root: root writes into a read-only folder anyway)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-write-'));
    const file = join(dir, 'kept.csv');
    writeFileSync(file, 'old');
    chmodSync(dir, 0o555);
    try {
      writeWhole(file, 'new');
      expect(readFileSync(file, 'utf8')).toBe('new');
    } finally {
      chmodSync(dir, 0o755);
    }
  });
});
