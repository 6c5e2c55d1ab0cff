// What the commands share about studies and plugins: opening a study to read, the plugin
// modules of a command line, and the one check of them against a study's record.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cacheDirectory, prepareData } from '@primer-search/datasets';
import { openStudyStore, parseStudyLocation, type StudyStore } from '@primer-search/store';
import { studyPluginRefusal, type DataIdentity, type StudyConfig } from '@primer-search/study';
import { UsageError } from './io.js';

/**
 * Refuses (exit 2) to continue, retrain or export a study with plugins other than the ones it
 * was run with; the modules loaded are always the command line's `--plugin`, never the study's.
 */
export function checkStudyPlugins(config: Pick<StudyConfig, 'plugins' | 'pluginIds'>, plugins: string[], shown: string): void {
  const refused = studyPluginRefusal(config, plugins);
  if (refused.length > 0) throw new UsageError(`${shown}: ${refused.join('; ')}`);
}

/**
 * The data a study trains on, as prepared here now; for a recorded study (`config` read from the
 * store), refuses (exit 2) to go on when they are not the ones it began with (changed or moved
 * files: another vocabulary or other token counts), and records them in a study that has no
 * record yet. Call it with the controller's lock held.
 */
export async function checkStudyData(store: StudyStore, config: StudyConfig | undefined, settings: StudyConfig['settings'], shown: string): Promise<DataIdentity> {
  const data = await prepareData(settings);
  const now: DataIdentity = { tokenizer: data.tokenizer.fingerprint, trainTokens: data.train.length, validationTokens: data.validation.length };
  if (!config) return now;
  const then = config.data;
  if (!then) {
    await store.updateStudy({ ...config, data: now } as unknown as Record<string, unknown>);
    return now;
  }
  const differ: string[] = [];
  if (then.tokenizer !== now.tokenizer) differ.push(`the ${settings.tokenizer} tokenizer is ${now.tokenizer} now, ${then.tokenizer} then`);
  if (then.trainTokens !== now.trainTokens) differ.push(`${now.trainTokens.toLocaleString('en-US')} training tokens now, ${then.trainTokens.toLocaleString('en-US')} then`);
  if (then.validationTokens !== now.validationTokens) differ.push(`${now.validationTokens.toLocaleString('en-US')} validation tokens now, ${then.validationTokens.toLocaleString('en-US')} then`);
  if (differ.length) {
    throw new UsageError(
      `${shown} began with other data than ${settings.dataset}${settings.dataDir ? ` in ${settings.dataDir}` : ''} gives now (${differ.join('; ')}): restore the files it began with, or start a new study`,
    );
  }
  return now;
}

/** Plugin modules: a path (relative to the working directory) or a package name. */
export function pluginSpecifier(p: string): string {
  const pathLike = p.startsWith('.') || isAbsolute(p) || existsSync(p);
  if (pathLike && !existsSync(p)) throw new UsageError(`--plugin: no such file ${p}`);
  return pathLike ? pathToFileURL(resolve(p)).href : p;
}

/**
 * A study a command will change (retrain, delete): a file that must exist (a usage error if not),
 * or a database URL, opened for writing; a location that holds no study is refused, naming it.
 * The caller closes the store.
 */
export async function openForChange(location: string, what = ''): Promise<{ store: StudyStore; config: StudyConfig; shown: string }> {
  const where = parseStudyLocation(location);
  if (where.kind === 'sqlite' && !existsSync(where.target)) throw new UsageError(`no study file at ${location}`);
  const store = await openStudyStore(location, { mustExist: true });
  const config = (await store.config().catch(async (e) => {
    await store.close();
    throw e;
  })) as StudyConfig | undefined;
  if (!config) {
    await store.close();
    throw new UsageError(`${where.display} holds no study${what}`);
  }
  return { store, config, shown: where.display };
}

/** A study to read: a file that must exist (a usage error if not), or a database URL. */
export async function openForReading(location: string): Promise<StudyStore> {
  const where = parseStudyLocation(location);
  if (where.kind === 'sqlite' && !existsSync(where.target)) throw new UsageError(`no study file at ${location}`);
  // a one-time reader: a study file not being written is read from an image, leaving nothing beside it
  return openStudyStore(location, { readonly: true, snapshot: true });
}

/**
 * Where a study's retraining runs keep their training checkpoints on this machine while they
 * train: beside a SQLite study (`STUDY.checkpoints/`), in the cache directory for a PostgreSQL
 * study (by its study id; none for a study from before ids).
 */
export function checkpointFolder(where: ReturnType<typeof parseStudyLocation>, config: Pick<StudyConfig, 'studyId'> | undefined): string | undefined {
  if (where.kind === 'sqlite') return `${where.target}.checkpoints`;
  const id = config?.studyId;
  // by where the study is too: a copy of a study (another schema) keeps its id, and its own checkpoints
  const place = createHash('sha256').update(where.target).digest('hex').slice(0, 16);
  return id && /^[A-Za-z0-9_-]{1,100}$/.test(id) ? join(cacheDirectory(), 'checkpoints', `${place}-${id}`) : undefined;
}
