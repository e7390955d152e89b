import { decodeFrame, encodeFrame, WIRE_DTYPES, type WireDtype } from '@dann/protocol';
import { createRng } from '@dann/data';
import { formatSummary, markdownTable, summarize, type Summary } from './stats.ts';

export interface WireResult {
  readonly dtype: WireDtype;
  readonly bytes: number;
  /** GB/s of float32 gradient (4 bytes per value) through encode, and through decode. */
  readonly encode: Summary;
  readonly decode: Summary;
}

/** Encode and decode of one gradient frame of `values` floats per wire dtype, `runs` times each. */
export function benchWire(values: number, runs: number): WireResult[] {
  const rng = createRng(9);
  const gradient = Float32Array.from({ length: values }, () => rng.normal() * 1e-3);
  const header = {
    type: 'gradient',
    step: 1,
    shard: 0,
    samples: 64,
    labelLoss: 1,
    domainLoss: 1,
    labelAcc: 0.5,
    domainAcc: 0.5,
    computeMs: 1,
  } as const;
  const gb = (ms: number) => (values * 4) / 1e9 / (ms / 1000);
  return WIRE_DTYPES.map((dtype) => {
    const enc: number[] = [],
      dec: number[] = [];
    let frame = encodeFrame(header, gradient, dtype);
    for (let i = 0; i < runs + 1; i++) {
      const t0 = performance.now();
      frame = encodeFrame(header, gradient, dtype);
      const t1 = performance.now();
      decodeFrame(frame, { maxPayload: values });
      const t2 = performance.now();
      if (i > 0) {
        enc.push(gb(t1 - t0));
        dec.push(gb(t2 - t1));
      }
    }
    return { dtype, bytes: frame.length, encode: summarize(enc), decode: summarize(dec) };
  });
}

export function wireReport(values: number, results: readonly WireResult[]): string {
  return [
    `One gradient of ${values.toLocaleString('en')} floats (the \`seed\` network with its domain head), GB/s of float32 values; f32 decode is a view (no copy).`,
    '',
    markdownTable(
      ['wire dtype', 'frame bytes', 'encode GB/s', 'decode GB/s'],
      results.map((r) => [
        r.dtype,
        r.bytes.toLocaleString('en'),
        formatSummary(r.encode, 2),
        formatSummary(r.decode, 2),
      ]),
    ),
  ].join('\n');
}
