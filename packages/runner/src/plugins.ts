import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Why a plugin module failed to import, in one message: for a file that does not parse, the
 * file, line and the offending source line with its caret (Node's ESM loader gives none of
 * them), found by `node --check`, which parses the file without running it.
 */
export function importFailure(specifier: string, e: unknown): string {
  const message = typeof (e as { message?: unknown })?.message === 'string' ? (e as Error).message : String(e);
  if (!/^(file:|\/|\.)/.test(specifier)) return message;
  const path = specifier.startsWith('file:') ? fileURLToPath(specifier) : specifier;
  const check = spawnSync(process.execPath, ['--check', path], { encoding: 'utf8', timeout: 10_000 });
  if (check.status === 0) return message;
  const lines = (check.stderr ?? '').split('\n');
  const at = lines.findIndex((l) => l.startsWith(`${path}:`));
  const error = lines.find((l) => /^\w*Error: /.test(l));
  if (at < 0 || !error) return message;
  // "path:LINE: the error", the source line, its caret
  return `${lines[at]}: ${error.replace(/^\w*Error: /, '')}\n  ${lines[at + 1] ?? ''}\n  ${lines[at + 2] ?? ''}`.trimEnd();
}

/** Imports plugin modules in order, naming the one that fails (and, for a syntax error, its line). */
export async function importPlugins(specifiers: string[], onError: (specifier: string, message: string) => never): Promise<void> {
  for (const p of specifiers) {
    try {
      await import(p);
    } catch (e) {
      onError(p, importFailure(p, e));
    }
  }
}
