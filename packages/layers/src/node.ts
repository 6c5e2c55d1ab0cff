// Saving and loading tfjs-layers models as files in Node, without tfjs-node: the standard
// layout (`model.json` + binary weight shards) that `tf.loadLayersModel(url)` reads in a page.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from './tf.js';

/** Bytes per weight shard, as tfjs's converter writes them. */
const SHARD_BYTES = 4 * 1024 * 1024;

function writeAtomically(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

/**
 * An IOHandler for a model folder: `model.save(fileSystem(dir))` writes `model.json` and
 * `group1-shardNofM.bin`; `tf.loadLayersModel(fileSystem(dir))` reads them. Folders it writes
 * load in a browser with `tf.loadLayersModel('<url of dir>/model.json')`.
 */
export function fileSystem(dir: string): tf.io.IOHandler {
  return {
    async save(artifacts) {
      mkdirSync(dir, { recursive: true });
      const weights = artifacts.weightData === undefined ? new Uint8Array(0) : new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
      const shards = Math.max(1, Math.ceil(weights.byteLength / SHARD_BYTES));
      const paths: string[] = [];
      for (let i = 0; i < shards; i++) {
        const path = `group1-shard${i + 1}of${shards}.bin`;
        writeAtomically(join(dir, path), weights.subarray(i * SHARD_BYTES, (i + 1) * SHARD_BYTES));
        paths.push(path);
      }
      const json = {
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        modelTopology: artifacts.modelTopology,
        ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
        ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
        weightsManifest: [{ paths, weights: artifacts.weightSpecs ?? [] }],
      };
      writeAtomically(join(dir, 'model.json'), `${JSON.stringify(json)}\n`);
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          modelTopologyBytes: JSON.stringify(artifacts.modelTopology).length,
          weightSpecsBytes: JSON.stringify(artifacts.weightSpecs ?? []).length,
          weightDataBytes: weights.byteLength,
        },
      };
    },
    async load() {
      const file = join(dir, 'model.json');
      let json: tf.io.ModelJSON;
      try {
        json = JSON.parse(readFileSync(file, 'utf8'));
      } catch (e) {
        throw new Error(`cannot read the model ${file}: ${(e as Error).message}`);
      }
      if (!json?.modelTopology || !Array.isArray(json.weightsManifest)) throw new Error(`${file} is not a tfjs-layers model.json (no modelTopology or weightsManifest)`);
      return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const specs = manifest.flatMap((g) => g.weights);
        const parts = manifest.flatMap((g) => g.paths).map((p) => {
          try {
            return new Uint8Array(readFileSync(join(dir, p)));
          } catch (e) {
            throw new Error(`the model ${file} names the weight file ${p}, which cannot be read: ${(e as Error).message}`);
          }
        });
        const buffers = parts.map((u) => u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength) as ArrayBuffer);
        return [specs, tf.io.CompositeArrayBuffer.join(buffers)];
      });
    },
  };
}

/** Loads a model folder written by `fileSystem` (or tfjs's own tools), with this package's layers registered. */
export function loadModel(dir: string): Promise<tf.LayersModel> {
  return tf.loadLayersModel(fileSystem(dir));
}
