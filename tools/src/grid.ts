import { createCanvas } from '@napi-rs/canvas';
import { imageAt, type ImageSet } from '@dann/data';

/** Renders the first `count` images of a set as a labelled grid PNG (pixels scaled up, nearest neighbour). */
export function renderGrid(set: ImageSet, count: number, scale = 3): Buffer {
  const n = Math.min(count, set.count);
  const cols = Math.ceil(Math.sqrt(n));
  const rows = Math.ceil(n / cols);
  const cellW = set.width * scale + 8;
  const cellH = set.height * scale + 22;
  const titleH = 26;
  const canvas = createCanvas(cols * cellW + 8, rows * cellH + titleH + 4);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#f4f4f4';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = '#222';
  ctx.font = '15px sans-serif';
  ctx.fillText(`${set.name}: first ${n} of ${set.count} (${set.height}x${set.width}x${set.channels})`, 8, 18);
  const img = ctx.createImageData(set.width * scale, set.height * scale);
  for (let i = 0; i < n; i++) {
    const px = imageAt(set, i);
    for (let y = 0; y < set.height * scale; y++) {
      for (let x = 0; x < set.width * scale; x++) {
        const s = (Math.floor(y / scale) * set.width + Math.floor(x / scale)) * set.channels;
        const d = (y * set.width * scale + x) * 4;
        img.data[d] = px[s];
        img.data[d + 1] = px[set.channels === 3 ? s + 1 : s];
        img.data[d + 2] = px[set.channels === 3 ? s + 2 : s];
        img.data[d + 3] = 255;
      }
    }
    const cx = 8 + (i % cols) * cellW;
    const cy = titleH + Math.floor(i / cols) * cellH;
    ctx.putImageData(img, cx, cy);
    ctx.fillStyle = '#222';
    ctx.fillText(String(set.labels[i]), cx + (set.width * scale) / 2 - 4, cy + set.height * scale + 16);
  }
  return canvas.toBuffer('image/png');
}
