import { createCanvas, type SKRSContext2D } from '@napi-rs/canvas';

/** Ten distinguishable colours (Tableau 10), one per digit class. */
export const CLASS_COLORS = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
  '#bab0ac',
];

export interface Series {
  readonly name: string;
  readonly color: string;
  readonly points: readonly (readonly [number, number])[];
  /** Draw a marker at every point (for sparse series such as per-epoch accuracy). */
  readonly markers?: boolean;
}

const W = 900,
  H = 520,
  M = { left: 70, right: 190, top: 44, bottom: 56 };

function niceTicks(lo: number, hi: number, count = 6): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

function frame(ctx: SKRSContext2D, title: string): void {
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, W, H);
  ctx.fillStyle = '#222';
  ctx.font = 'bold 17px sans-serif';
  ctx.fillText(title, M.left, 26);
}

function legend(
  ctx: SKRSContext2D,
  items: readonly { name: string; color: string }[],
  x = W - M.right + 16,
  y = M.top + 8,
): void {
  ctx.font = '13px sans-serif';
  items.forEach((item, i) => {
    ctx.fillStyle = item.color;
    ctx.fillRect(x, y + i * 20, 14, 10);
    ctx.fillStyle = '#222';
    ctx.fillText(item.name, x + 20, y + i * 20 + 10);
  });
}

/** A line chart with axes, ticks and a legend. `yRange` fixes the y axis (e.g. [0, 1] for accuracy). */
export function lineChart(o: {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  yRange?: [number, number];
}): Buffer {
  const canvas = createCanvas(W, H);
  const ctx = canvas.getContext('2d');
  frame(ctx, o.title);
  const all = o.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (all.length === 0) {
    ctx.fillText('no data', W / 2 - 30, H / 2);
    return canvas.toBuffer('image/png');
  }
  const xs = all.map((p) => p[0]),
    ys = all.map((p) => p[1]);
  const x0 = Math.min(...xs),
    x1 = Math.max(...xs, x0 + 1);
  const [y0, y1] = o.yRange ?? [Math.min(0, ...ys), Math.max(...ys) * 1.05 || 1];
  const px = (x: number) => M.left + ((x - x0) / (x1 - x0)) * (W - M.left - M.right);
  const py = (y: number) => H - M.bottom - ((y - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  ctx.strokeStyle = '#ddd';
  ctx.fillStyle = '#444';
  ctx.font = '12px sans-serif';
  for (const t of niceTicks(y0, y1)) {
    ctx.beginPath();
    ctx.moveTo(M.left, py(t));
    ctx.lineTo(W - M.right, py(t));
    ctx.stroke();
    ctx.textAlign = 'right';
    ctx.fillText(String(t), M.left - 6, py(t) + 4);
    ctx.textAlign = 'left';
  }
  for (const t of niceTicks(x0, x1)) ctx.fillText(String(t), px(t) - 10, H - M.bottom + 18);
  ctx.fillText(o.xLabel, (W - M.right) / 2, H - 14);
  ctx.save();
  ctx.translate(16, H / 2 + 40);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(o.yLabel, 0, 0);
  ctx.restore();
  ctx.strokeStyle = '#888';
  ctx.strokeRect(M.left, M.top, W - M.left - M.right, H - M.top - M.bottom);
  for (const s of o.series) {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    ctx.strokeStyle = s.color;
    ctx.fillStyle = s.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    pts.forEach(([x, y], i) =>
      i ? ctx.lineTo(px(x), py(Math.min(Math.max(y, y0), y1))) : ctx.moveTo(px(x), py(Math.min(Math.max(y, y0), y1))),
    );
    ctx.stroke();
    if (s.markers)
      for (const [x, y] of pts) {
        ctx.beginPath();
        ctx.arc(px(x), py(y), 4, 0, 2 * Math.PI);
        ctx.fill();
      }
    ctx.lineWidth = 1;
  }
  legend(ctx, o.series);
  return canvas.toBuffer('image/png');
}

/** A confusion matrix (rows: true class, columns: predicted), cells shaded by row-normalised count. */
export function confusionChart(o: { title: string; matrix: readonly (readonly number[])[] }): Buffer {
  const n = o.matrix.length,
    cell = 40,
    left = 70,
    top = 70;
  const canvas = createCanvas(left + n * cell + 30, top + n * cell + 50);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = '#222';
  ctx.font = 'bold 16px sans-serif';
  ctx.fillText(o.title, 10, 24);
  ctx.font = '12px sans-serif';
  ctx.fillText('predicted →', left, top - 26);
  ctx.save();
  ctx.translate(22, top + n * cell);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText('true class →', 0, 0);
  ctx.restore();
  o.matrix.forEach((row, r) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    ctx.fillStyle = '#222';
    ctx.fillText(String(r), left - 16, top + r * cell + cell / 2 + 4);
    ctx.fillText(String(r), left + r * cell + cell / 2 - 4, top - 8);
    row.forEach((v, c) => {
      const f = v / total;
      const shade = Math.round(255 - 200 * f);
      ctx.fillStyle = r === c ? `rgb(${shade},${Math.round(255 - 120 * f)},${shade})` : `rgb(255,${shade},${shade})`;
      ctx.fillRect(left + c * cell, top + r * cell, cell - 1, cell - 1);
      ctx.fillStyle = f > 0.6 ? '#fff' : '#222';
      ctx.fillText(String(v), left + c * cell + 4, top + r * cell + cell / 2 + 4);
    });
  });
  return canvas.toBuffer('image/png');
}

export interface ScatterPoint {
  readonly x: number;
  readonly y: number;
  readonly color: string;
  /** Circles for one group (source), crosses for the other (target). */
  readonly shape: 'circle' | 'cross';
}

/** Two scatter panels side by side over the same points, e.g. coloured by domain and by class. */
export function scatterPanels(
  title: string,
  panels: readonly {
    title: string;
    points: readonly ScatterPoint[];
    legend: readonly { name: string; color: string }[];
  }[],
): Buffer {
  const pw = 520,
    ph = 520,
    pad = 30;
  const canvas = createCanvas(panels.length * pw, ph + 50);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = '#222';
  ctx.font = 'bold 16px sans-serif';
  ctx.fillText(title, 10, 22);
  panels.forEach((panel, k) => {
    const ox = k * pw,
      oy = 40;
    const xs = panel.points.map((p) => p.x),
      ys = panel.points.map((p) => p.y);
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const sx = (x: number) => ox + pad + ((x - x0) / (x1 - x0 || 1)) * (pw - 2 * pad - 110);
    const sy = (y: number) => oy + pad + ((y - y0) / (y1 - y0 || 1)) * (ph - 2 * pad);
    ctx.strokeStyle = '#bbb';
    ctx.strokeRect(ox + 10, oy, pw - 20, ph);
    ctx.fillStyle = '#222';
    ctx.font = '14px sans-serif';
    ctx.fillText(panel.title, ox + 16, oy + 18);
    for (const p of panel.points) {
      ctx.strokeStyle = p.color;
      ctx.fillStyle = p.color;
      const X = sx(p.x),
        Y = sy(p.y);
      if (p.shape === 'circle') {
        ctx.beginPath();
        ctx.arc(X, Y, 2.6, 0, 2 * Math.PI);
        ctx.fill();
      } else {
        ctx.beginPath();
        ctx.moveTo(X - 3, Y - 3);
        ctx.lineTo(X + 3, Y + 3);
        ctx.moveTo(X + 3, Y - 3);
        ctx.lineTo(X - 3, Y + 3);
        ctx.stroke();
      }
    }
    legend(ctx, panel.legend, ox + pw - 115, oy + 30);
  });
  return canvas.toBuffer('image/png');
}
