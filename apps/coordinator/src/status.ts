/**
 * The status page: trainers with backend, device and step time, and live loss/accuracy curves from /status (a relay's
 * /status has its trainers and no curves: the run's are on the coordinator's page).
 */
export function statusPage(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DANN coordinator</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}svg{border:1px solid #ddd;background:#fff}</style></head>
<body><h1>DANN coordinator</h1><p id="progress">loading…</p>
<table id="trainers"><thead><tr><th>id</th><th>name</th><th>backend</th><th>device</th><th>steps</th><th>ms per shard</th></tr></thead><tbody></tbody></table>
<p id="removed"></p>
<svg id="chart" width="800" height="260"></svg>
<p><span style="color:#1f77b4">label loss</span> · <span style="color:#d62728">domain loss</span> · <span style="color:#2ca02c">label accuracy</span> (per step, source batch)</p>
<script>
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
function line(points, color, max) {
  if (points.length < 2) return '';
  const x0 = points[0][0], x1 = points[points.length - 1][0] || 1;
  const d = points.map(([x, y], i) => (i ? 'L' : 'M') + (10 + 780 * (x - x0) / Math.max(1, x1 - x0)).toFixed(1) + ' ' + (250 - 240 * Math.min(y, max) / max).toFixed(1)).join(' ');
  return '<path d="' + d + '" fill="none" stroke="' + color + '" stroke-width="1.5"/>';
}
async function tick() {
  try {
    const s = await (await fetch('/status')).json();
    document.getElementById('progress').textContent = s.relay
      ? 'relay ' + s.relay + ' of ' + s.upstream + (s.done ? ', finished' : '') + ': step ' + s.step + ', ' + s.trainers.length + ' trainer(s)'
      : (s.done ? 'finished: ' : '') + 'step ' + s.step + ' of ' + s.totalSteps + ', epoch ' + s.epoch + ', ' + s.trainers.length + ' trainer(s)';
    document.querySelector('#trainers tbody').innerHTML = s.trainers.map((t) => '<tr><td>' + [t.id, t.name, t.backend, t.device, t.steps, Number.isFinite(t.msPerStep) ? t.msPerStep.toFixed(0) : '-'].map(esc).join('</td><td>') + '</td></tr>').join('');
    document.getElementById('removed').innerHTML = s.removed.length ? '<b>dropped for what they sent:</b> ' + s.removed.map((r) => esc(r.name + ' at step ' + r.step + ': ' + r.reason)).join('; ') : '';
    const m = s.metrics.filter((r) => Number.isFinite(r.labelLoss));
    const max = Math.max(2.5, ...m.map((r) => r.labelLoss));
    document.getElementById('chart').innerHTML = line(m.map((r) => [r.step, r.labelLoss]), '#1f77b4', max)
      + line(m.filter((r) => Number.isFinite(r.domainLoss)).map((r) => [r.step, r.domainLoss]), '#d62728', max)
      + line(m.map((r) => [r.step, r.labelAcc * max]), '#2ca02c', max);
  } catch (e) { document.getElementById('progress').textContent = 'coordinator unreachable'; }
}
tick(); setInterval(tick, 2000);
</script></body></html>`;
}
