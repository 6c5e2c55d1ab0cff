import { mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeWhole } from './io.js';

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

  it('fails as writing would, leaving nothing behind', () => {
    const dir = mkdtempSync(join(tmpdir(), 'primer-write-'));
    expect(() => writeWhole(join(dir, 'no', 'such', 'folder.csv'), 'x')).toThrow(/ENOENT/);
    mkdirSync(join(dir, 'folder'));
    expect(() => writeWhole(join(dir, 'folder'), 'x')).toThrow(/EISDIR/);
    expect(readdirSync(dir)).toEqual(['folder']);
  });
});
