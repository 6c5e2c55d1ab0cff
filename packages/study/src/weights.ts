// A trained model's weights as bytes, for a study to keep (primer search --keep-weights) and
// primer export to load: a JSON header naming each tensor's name, shape and offset, then the
// float32 values (little-endian), so nothing but this file is needed to read them back.
import { PrimerError } from '@primer-search/core';

export interface NamedTensor {
  name: string;
  shape: number[];
  values: Float32Array;
}

const MAGIC = 'primer-weights/1\n';

/** The tensors as bytes: magic, a 4-byte header length, the JSON header, padding to 4, the values. */
export function encodeWeights(tensors: NamedTensor[]): Uint8Array {
  let offset = 0;
  const entries = tensors.map((t) => {
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.values.length) throw new PrimerError('BAD_WEIGHTS', `weight ${t.name}: shape [${t.shape.join(', ')}] holds ${size} values, not ${t.values.length}`);
    const e = { name: t.name, shape: t.shape, offset };
    offset += size;
    return e;
  });
  const header = new TextEncoder().encode(JSON.stringify({ tensors: entries }));
  const magic = new TextEncoder().encode(MAGIC);
  const start = Math.ceil((magic.length + 4 + header.length) / 4) * 4;
  const out = new Uint8Array(start + offset * 4);
  out.set(magic, 0);
  new DataView(out.buffer).setUint32(magic.length, header.length, true);
  out.set(header, magic.length + 4);
  const view = new DataView(out.buffer, start);
  let k = 0;
  for (const t of tensors) for (const v of t.values) view.setFloat32(4 * k++, v, true);
  return out;
}

/** The tensors back from `encodeWeights`'s bytes; a PrimerError naming what is wrong with bytes that are not that. */
export function decodeWeights(bytes: Uint8Array, what = 'the kept weights'): NamedTensor[] {
  const bad = (why: string) => new PrimerError('BAD_WEIGHTS', `${what} cannot be read: ${why}`);
  const magic = new TextEncoder().encode(MAGIC);
  if (bytes.length < magic.length + 4 || new TextDecoder().decode(bytes.subarray(0, magic.length)) !== MAGIC) throw bad('not primer-search weights');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = dv.getUint32(magic.length, true);
  if (magic.length + 4 + length > bytes.length) throw bad('the header runs past the end');
  let header: { tensors?: Array<{ name: unknown; shape: unknown; offset: unknown } | null> } | null;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(magic.length + 4, magic.length + 4 + length)));
  } catch {
    throw bad('its header is not JSON');
  }
  const start = Math.ceil((magic.length + 4 + length) / 4) * 4;
  const count = (bytes.length - start) / 4;
  if (!Number.isInteger(count) || header === null || typeof header !== 'object' || !Array.isArray(header.tensors)) throw bad('its size does not match its header');
  if (header.tensors.length > 100_000) throw bad('it names too many tensors');
  // tensors one after another, each once, filling the data exactly: nothing read twice, nothing made larger than the bytes
  let next = 0;
  const names = new Set<string>();
  const out = header.tensors.map((e) => {
    if (e === null || typeof e !== 'object') throw bad('a tensor entry is malformed');
    const shape = e.shape as number[];
    if (typeof e.name !== 'string' || names.has(e.name) || !Array.isArray(shape) || shape.length > 8 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0) || e.offset !== next) throw bad(`tensor entry ${names.size + 1} is malformed`);
    names.add(e.name);
    const size = shape.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(size) || next + size > count) throw bad(`tensor ${e.name} runs past the end`);
    const values = new Float32Array(size);
    for (let i = 0; i < size; i++) values[i] = dv.getFloat32(start + 4 * (next + i), true);
    next += size;
    return { name: e.name, shape, values };
  });
  if (next !== count) throw bad('its size does not match its header');
  return out;
}

/** Bytes as base64 and back: how weights travel in a job's outcome (JSON, over IPC or the queue). */
export const weightsToBase64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
export const weightsFromBase64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));
