import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tryLock } from './lock.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'primer-lock-'));

describe('tryLock', () => {
  it('takes a free lock, whole, and leaves nothing once released', () => {
    const dir = tmp();
    const file = join(dir, 'lock');
    const first = tryLock(file);
    expect('release' in first).toBe(true);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ pid: process.pid, host: hostname() });
    expect(readdirSync(dir)).toEqual(['lock']);
    (first as { release: () => void }).release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('says who holds it: a live process here, any process of another machine, or a file that is no lock; takes over a dead one', async () => {
    const dir = tmp();
    const file = join(dir, 'lock');
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      writeFileSync(file, JSON.stringify({ pid: other.pid, host: hostname() }));
      expect(tryLock(file)).toEqual({ heldBy: { pid: other.pid, host: hostname() } });
    } finally {
      other.kill();
    }
    writeFileSync(file, JSON.stringify({ pid: 7, host: 'elsewhere' }));
    expect(tryLock(file)).toEqual({ heldBy: { pid: 7, host: 'elsewhere' } });
    writeFileSync(file, 'notes');
    expect(tryLock(file)).toEqual({ heldBy: { text: 'notes' } });
    expect(readFileSync(file, 'utf8')).toBe('notes');
    for (const dead of [99_999_999, process.pid]) {
      writeFileSync(file, JSON.stringify({ pid: dead, host: hostname() }));
      const taken = tryLock(file);
      expect('release' in taken).toBe(true);
      expect(JSON.parse(readFileSync(file, 'utf8')).since).toBeTypeOf('string');
      (taken as { release: () => void }).release();
    }
    expect(readdirSync(dir)).toEqual([]);
  });

  it('throws what the file system says where the folder takes no files', () => {
    expect(() => tryLock(join(tmp(), 'missing', 'lock'))).toThrow(/ENOENT/);
  });
});
