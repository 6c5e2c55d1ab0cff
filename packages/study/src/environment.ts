/**
 * Where an evaluation was trained, and whether two workers may share a study: a fitness
 * measured under a time budget depends on the machine, so a study's workers must match (or
 * say that they need not, and have it recorded).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { quote } from '@primer-search/core';
import type { Budget } from './budget.js';

/** The version of primer-search itself (its packages are released together). */
export const PROJECT_VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

/** The machine and software that trained an evaluation, as recorded with it. */
export interface TrainingEnvironment {
  host: string;
  /** Our backend choice (tfjs-node-gpu, tfjs-node, wasm, cpu). */
  backend: string;
  /** What ran the matrix products (on wasm: XNNPACK, or the system's BLAS). Absent in records from before it was recorded. */
  products?: string;
  /** The processor (model and threads), which decides how many steps a time budget buys. */
  device: string;
  /** TensorFlow.js's version (tfjs-core). */
  tfjs: string;
  /** primer-search's version. */
  project: string;
  node: string;
  /** Set when the worker was told its hardware may differ from the study's (`--allow-mixed-hardware`). */
  mixedHardware?: true;
}

/** A backend in words, as every run prints and records it, e.g. "wasm · products: native BLAS (libopenblas.so.0, SkylakeX kernels)". */
export function describeBackend(b: { choice: string; products?: string }): string {
  return b.products ? `${b.choice} · products: ${b.products}` : b.choice;
}

/** This machine's processor, in words. */
export function deviceOf(): string {
  const c = cpus();
  return `${(c[0]?.model ?? 'unknown cpu').replace(/\s+/g, ' ').trim()} x${c.length}`;
}

/** The environment of this process, given the backend it trains on and TensorFlow.js's version. */
export function trainingEnvironment(backend: string, tfjs: string, products?: string): TrainingEnvironment {
  return { host: hostname(), backend, ...(products ? { products } : {}), device: deviceOf(), tfjs, project: PROJECT_VERSION, node: process.version };
}

/** A plugin as studies compare it across machines: its name (a package, or a file's name) and what its code is. */
export interface PluginIdentity {
  name: string;
  /** A package's version. */
  version?: string;
  /** SHA-256 of a file plugin's source (first 16 hex digits). */
  sha256?: string;
}

const isFileSpecifier = (s: string) => s.startsWith('file:') || s.startsWith('.') || s.startsWith('/');

/** The name a plugin goes by on every machine: the package (without a subpath) or the file's name. */
export function pluginName(specifier: string): string {
  if (isFileSpecifier(specifier)) return basename(specifier.startsWith('file:') ? fileURLToPath(specifier) : specifier);
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** Finds a package's package.json from the working directory up (what Node's resolution would find). */
function packageJsonOf(name: string, from: string): string | undefined {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    const p = join(dir, 'node_modules', name, 'package.json');
    if (existsSync(p)) return p;
    if (dirname(dir) === dir) return undefined;
  }
}

/** What a plugin is on this machine; a name alone when its code cannot be found here. */
export function pluginIdentity(specifier: string, cwd = process.cwd()): PluginIdentity {
  const name = pluginName(specifier);
  if (isFileSpecifier(specifier)) {
    const path = specifier.startsWith('file:') ? fileURLToPath(specifier) : resolve(cwd, specifier);
    if (!existsSync(path)) return { name };
    return { name, sha256: createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16) };
  }
  const pkg = packageJsonOf(name, cwd);
  if (!pkg) return { name };
  try {
    const version = (JSON.parse(readFileSync(pkg, 'utf8')) as { version?: string }).version;
    return version ? { name, version } : { name };
  } catch {
    return { name };
  }
}

/** How a study's plugins and a worker's differ, one line each (empty: they match); `extraAllowed`: plugins only the worker has are not a difference. */
export function pluginDifferences(study: PluginIdentity[], worker: PluginIdentity[], options: { extraAllowed?: boolean } = {}): string[] {
  const out: string[] = [];
  const mine = new Map(worker.map((p) => [p.name, p]));
  for (const p of study) {
    const w = mine.get(p.name);
    if (!w) out.push(`the plugin ${p.name} is missing (start the worker with --plugin ${p.name}, or the path to it on this machine)`);
    else if (p.version && w.version && p.version !== w.version) out.push(`the plugin ${p.name} is version ${w.version} here, ${p.version} in the study`);
    else if (p.sha256 && w.sha256 && p.sha256 !== w.sha256) out.push(`the plugin ${p.name} has different code here (sha256 ${w.sha256}, the study's ${p.sha256})`);
  }
  const theirs = new Set(study.map((p) => p.name));
  if (!options.extraAllowed) for (const w of worker) if (!theirs.has(w.name)) out.push(`the plugin ${w.name} is loaded here but not by the study`);
  return out;
}

/**
 * What a study records of its plugins: their identities as the controller that created it saw
 * them, or (studies from before identities were recorded) their names alone.
 */
export function studyPluginIdentities(config: { plugins?: unknown; pluginIds?: unknown }): PluginIdentity[] {
  if (Array.isArray(config.pluginIds)) {
    return config.pluginIds.filter((p): p is PluginIdentity => typeof p === 'object' && p !== null && typeof (p as PluginIdentity).name === 'string');
  }
  return (Array.isArray(config.plugins) ? config.plugins : []).filter((p): p is string => typeof p === 'string').map((p) => ({ name: pluginName(p) }));
}

/**
 * The one rule for the plugins of a study that is continued, retrained or exported: a study is
 * data and never says what code runs. Only the modules the caller names itself (its command
 * line's `--plugin`) are loaded, and they must be the plugins the study was run with (same names,
 * and same version or code where the study recorded them). Returns how they differ, one line
 * each; empty: load `specifiers`.
 */
export function studyPluginRefusal(config: { plugins?: unknown; pluginIds?: unknown }, specifiers: string[], cwd = process.cwd()): string[] {
  const study = studyPluginIdentities(config);
  const mine = specifiers.map((s) => pluginIdentity(s, cwd));
  const have = new Set(mine.map((p) => p.name));
  const missing = study.filter((p) => !have.has(p.name)).map((p) => quote(p.name));
  const out: string[] = [];
  if (missing.length > 0) {
    out.push(`the study was run with the plugin${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: give --plugin with the path or package of each on this machine (a study's own record of its plugins is never imported)`);
  }
  out.push(...pluginDifferences(study, mine).filter((line) => !/ is missing /.test(line)));
  return out;
}

/** A worker that joined a study, as the study records it. */
export interface WorkerRecord {
  /** Unique per worker process. */
  id: string;
  environment: TrainingEnvironment;
  plugins: PluginIdentity[];
  allowMixedHardware: boolean;
  startedAt: string;
}

/**
 * How a worker's hardware differs from the reference (the study's first worker), one line
 * each: the backend always (numbers differ between backends), the processor only when the
 * budget is time (a step or token budget gives the same result on any processor).
 */
export function hardwareDifferences(reference: TrainingEnvironment, worker: TrainingEnvironment, budget: Budget): string[] {
  const out: string[] = [];
  if (reference.backend !== worker.backend) out.push(`backend ${worker.backend} here, ${reference.backend} on the study's first worker (${reference.host})`);
  if (budget.kind === 'seconds' && reference.products && worker.products && reference.products !== worker.products) {
    out.push(`products by ${worker.products} here, by ${reference.products} on the study's first worker (${reference.host}); under a time budget that changes how many steps a candidate gets`);
  }
  if (budget.kind === 'seconds' && reference.device !== worker.device) {
    out.push(`processor ${worker.device} here, ${reference.device} on the study's first worker (${reference.host}); under a time budget that changes how many steps a candidate gets`);
  }
  return out;
}
