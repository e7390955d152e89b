/** Small, fast, seedable PRNG (sfc32 seeded by splitmix32) so every generator is reproducible. */
export interface Rng {
  /** Uniform float in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Uniform float in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** Standard normal (Box-Muller). */
  normal(): number;
  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T;
  /** The generator's state, so a run can be checkpointed and resumed. */
  state(): [number, number, number, number];
  /** Fills out[from, to) with uniform floats in [0, 1): the same numbers as calling next(), in one tight loop. */
  fill(out: Float32Array | Float64Array, from?: number, to?: number): void;
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** Mixes any number of integers (seed, epoch, index, ...) into one 32-bit seed. */
export function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const part of parts) {
    const next = splitmix32((h ^ (part >>> 0)) >>> 0);
    h = next() ^ Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function createRng(seed: number | [number, number, number, number]): Rng {
  let a: number, b: number, c: number, d: number;
  if (Array.isArray(seed)) {
    [a, b, c, d] = seed;
  } else {
    const sm = splitmix32(seed);
    a = sm();
    b = sm();
    c = sm();
    d = sm();
    for (let i = 0; i < 12; i++) step();
  }
  function step(): number {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  }
  let spare: number | null = null;
  const rng: Rng = {
    next: () => step() / 4294967296,
    int: (n) => Math.floor((step() / 4294967296) * n),
    uniform: (lo, hi) => lo + (step() / 4294967296) * (hi - lo),
    normal: () => {
      if (spare !== null) {
        const s = spare;
        spare = null;
        return s;
      }
      let u = 0;
      while (u === 0) u = rng.next();
      const v = rng.next();
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      return r * Math.cos(2 * Math.PI * v);
    },
    pick: (items) => items[Math.floor((step() / 4294967296) * items.length)],
    state: () => [a, b, c, d],
    fill: (out, from = 0, to = out.length) => {
      let A = a,
        B = b,
        C = c,
        D = d;
      for (let i = from; i < to; i++) {
        const t = (((A + B) >>> 0) + D) >>> 0;
        D = (D + 1) >>> 0;
        A = B ^ (B >>> 9);
        B = (C + (C << 3)) >>> 0;
        C = ((C << 21) | (C >>> 11)) >>> 0;
        C = (C + t) >>> 0;
        out[i] = t / 4294967296;
      }
      a = A;
      b = B;
      c = C;
      d = D;
    },
  };
  return rng;
}
