import { describe, expect, it } from 'vitest';
import { decodeWeights, encodeWeights, weightsFromBase64, weightsToBase64 } from './weights.js';

describe('kept weights', () => {
  it('round-trip exactly, NaN, infinities, -0 and empty tensors included, through base64 too', () => {
    const tensors = [
      { name: 'block_0/attention/q', shape: [2, 3], values: new Float32Array([1, -2.5, NaN, Infinity, -Infinity, -0]) },
      { name: 'empty', shape: [0, 4], values: new Float32Array(0) },
      { name: 'scalar', shape: [], values: new Float32Array([Math.PI]) },
    ];
    const back = decodeWeights(weightsFromBase64(weightsToBase64(encodeWeights(tensors))));
    expect(back.map((t) => [t.name, t.shape])).toEqual(tensors.map((t) => [t.name, t.shape]));
    for (let i = 0; i < tensors.length; i++) expect(Array.from(back[i]!.values)).toEqual(Array.from(tensors[i]!.values));
    expect(Object.is(back[0]!.values[5], -0)).toBe(true);
  });

  it('refuse what is not theirs, naming it: a wrong shape, other bytes, a truncated file, a header that lies', () => {
    expect(() => encodeWeights([{ name: 'w', shape: [2, 2], values: new Float32Array(3) }])).toThrow(/weight w: shape \[2, 2\] holds 4 values, not 3/);
    expect(() => decodeWeights(new TextEncoder().encode('{"not": "weights"}'))).toThrow(/not primer-search weights/);
    const good = encodeWeights([{ name: 'w', shape: [4], values: new Float32Array([1, 2, 3, 4]) }]);
    expect(() => decodeWeights(good.subarray(0, good.length - 4))).toThrow(/runs past the end|does not match/);
    expect(() => decodeWeights(good.subarray(0, 20), 'candidate 3')).toThrow(/candidate 3 cannot be read/);
  });

  it('refuse a hostile header: overlapping or skipped offsets, shapes that overflow, null entries, repeated names', () => {
    const forge = (header: unknown, floats: number) => {
      const magic = new TextEncoder().encode('primer-weights/1\n');
      const h = new TextEncoder().encode(JSON.stringify(header));
      const start = Math.ceil((magic.length + 4 + h.length) / 4) * 4;
      const out = new Uint8Array(start + 4 * floats);
      out.set(magic);
      new DataView(out.buffer).setUint32(magic.length, h.length, true);
      out.set(h, magic.length + 4);
      return out;
    };
    const cases: Array<[unknown, number]> = [
      [{ tensors: [{ name: 'a', shape: [4], offset: 0 }, { name: 'b', shape: [4], offset: 0 }] }, 4], // both read the same data
      [{ tensors: [{ name: 'a', shape: [1e308, 1e308, 0], offset: 0 }] }, 0],
      [{ tensors: [null] }, 0],
      [{ tensors: [{ name: 'a', shape: [1], offset: 0 }, { name: 'a', shape: [1], offset: 1 }] }, 2],
      [{ tensors: [{ name: 'a', shape: [2], offset: 0 }] }, 4], // data left over
      [null, 0],
    ];
    for (const [header, floats] of cases) expect(() => decodeWeights(forge(header, floats)), JSON.stringify(header)).toThrow(/cannot be read/);
    expect(decodeWeights(forge({ tensors: [{ name: 'a', shape: [2], offset: 0 }, { name: 'b', shape: [2], offset: 2 }] }, 4)).map((t) => t.name)).toEqual(['a', 'b']);
  });
});
