/** Small image filters on float RGB buffers (H x W x 3), shared by the generators. */

/** In-place separable Gaussian blur of an interleaved H x W x C float image. */
export function gaussianBlur(img: Float32Array, h: number, w: number, c: number, sigma: number): void {
  if (sigma <= 0.05) return;
  const radius = Math.max(1, Math.ceil(sigma * 2.5));
  const kernel = new Float32Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) sum += kernel[i + radius] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < kernel.length; i++) kernel[i] /= sum;
  const tmp = new Float32Array(img.length);
  const clamp = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) {
        let acc = 0;
        for (let k = -radius; k <= radius; k++) acc += kernel[k + radius] * img[(y * w + clamp(x + k, w - 1)) * c + ch];
        tmp[(y * w + x) * c + ch] = acc;
      }
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < c; ch++) {
        let acc = 0;
        for (let k = -radius; k <= radius; k++) acc += kernel[k + radius] * tmp[(clamp(y + k, h - 1) * w + x) * c + ch];
        img[(y * w + x) * c + ch] = acc;
      }
    }
  }
}

/** Rounds and clamps floats into uint8 pixels. */
export function toBytes(src: Float32Array, out: Uint8Array, offset = 0): void {
  for (let i = 0; i < src.length; i++) {
    const v = Math.round(src[i]);
    out[offset + i] = Math.min(Math.max(v, 0), 255);
  }
}
