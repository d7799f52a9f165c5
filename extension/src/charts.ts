// Training-loop panel of the live view: loss curve and per-module gradient norms (log scale).
import type { Metrics } from './types';
import { fmt, h } from './inspector';

const NS = 'http://www.w3.org/2000/svg';

export function lossCurve(loss: number[], name = 'loss'): SVGSVGElement {
  const W = 260, H = 90;
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H + 14}`);
  svg.setAttribute('class', 'dt-loss');
  svg.setAttribute('data-points', String(loss.length));
  const ok = loss.filter(Number.isFinite);
  if (ok.length) {
    const lo = Math.min(...ok), hi = Math.max(...ok);
    const span = hi - lo || 1;
    const pts = loss.map((v, i) => `${(i / Math.max(loss.length - 1, 1)) * W},${H - ((v - lo) / span) * (H - 4) - 2}`);
    const pl = document.createElementNS(NS, 'polyline');
    pl.setAttribute('points', pts.join(' '));
    svg.append(pl);
    const t = document.createElementNS(NS, 'text');
    t.setAttribute('x', '0');
    t.setAttribute('y', String(H + 12));
    t.textContent = `${name} ${fmt(loss[loss.length - 1])}  (min ${fmt(lo)}, max ${fmt(hi)}, ${loss.length} points)`;
    svg.append(t);
  }
  return svg;
}

export function gradNorms(norms: Record<string, number>): HTMLElement {
  const entries = Object.entries(norms);
  const box = h('div', { class: 'dt-norms' });
  if (!entries.length) return box;
  // a log axis over whole decades, bars from its left end: the largest reaches (near) full width
  const logs = entries.map(([, v]) => Math.log10(Math.max(v, 1e-12)));
  const hi = Math.max(...logs);
  let lo = Math.floor(Math.min(...logs));
  if (hi - lo < 1) lo = Math.floor(hi - 1);
  const pos = (x: number) => (100 * (x - lo)) / (hi - lo);
  entries.forEach(([k, v], i) => {
    const bar = h('span', { class: 'dt-norm-bar', style: `width:${Math.max(pos(logs[i]), 1).toFixed(1)}%` });
    box.append(h('div', { class: 'dt-norm-row', 'data-module': k },
      h('span', { class: 'dt-norm-name' }, k || '(top)'),
      h('span', { class: 'dt-norm-track' }, bar),
      h('span', { class: 'dt-norm-val' }, fmt(v))));
  });
  const track = h('span', { class: 'dt-norm-track' });
  const step = Math.max(1, Math.ceil((hi - lo) / 6));
  for (let d = Math.ceil(lo); d <= hi; d += step) {
    track.append(h('span', { class: 'dt-norm-tick', style: `left:${pos(d).toFixed(1)}%`, 'data-decade': String(d) }, '1e' + d));
  }
  box.append(h('div', { class: 'dt-norm-axis' }, h('span', { class: 'dt-norm-name' }, 'log scale'), track,
    h('span', { class: 'dt-norm-val' }, '')));
  return box;
}

export function chartsPanel(m: Metrics): HTMLElement {
  const box = h('div', { class: 'dt-charts-inner' });
  if (m.loss && m.loss.length) box.append(h('div', { class: 'dt-sec-title' }, 'loss'), lossCurve(m.loss));
  for (const [k, v] of Object.entries(m.series || {})) {
    if (v && v.length) box.append(h('div', { class: 'dt-sec-title' }, k), lossCurve(v, k));
  }
  if (m.grad_norms && Object.keys(m.grad_norms).length) {
    box.append(h('div', { class: 'dt-sec-title dt-norms-title' }, 'gradient norm per module (log scale)'), gradNorms(m.grad_norms));
  }
  return box;
}
