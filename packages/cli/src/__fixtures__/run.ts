import { readFileSync, writeFileSync } from 'node:fs';
import { main, type CliIo } from '../index.js';

/** Runs `primer` in this process on the real file system, capturing what it prints. */
export async function runPrimer(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
    readFile: (p) => readFileSync(p, 'utf8'),
    writeFile: (p, t) => writeFileSync(p, t),
    interactive: false,
  };
  const code = await main(args, io);
  return { code, stdout, stderr };
}
