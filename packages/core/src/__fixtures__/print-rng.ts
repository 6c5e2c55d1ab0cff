// Run in a fresh process by rng.test.ts: prints draws of seeded generators as JSON.
import { Rng } from '../rng.js';

const seed = Number(process.argv[2] ?? 7);
const r = Rng.create(seed);
const child = r.split('child');
console.log(
  JSON.stringify({
    ints: Array.from({ length: 8 }, () => r.int(0, 1000)),
    floats: Array.from({ length: 4 }, () => r.float()),
    child: Array.from({ length: 4 }, () => child.int(0, 1_000_000)),
    text: Array.from({ length: 3 }, () => Rng.create('study-a').int(0, 99)),
  }),
);
