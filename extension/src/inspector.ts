// The node inspector: what a node is, where it came from, and the gradients through it.
import { byId, type Item } from './fold';
import type { GDoc, GNode, GScope, Heat, Summary, TensorMeta } from './types';

export function h(tag: string, attrs: Record<string, string> = {}, ...kids: (Node | string)[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of kids) el.append(c);
  return el;
}

export function fmt(x: number | null | undefined): string {
  if (x === null || x === undefined) return '\u2013';
  if (typeof x !== 'number') return String(x);
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return '0';
  const a = Math.abs(x);
  return a >= 1e4 || a < 1e-3 ? x.toExponential(3) : x.toPrecision(4);
}

function metaRow(m: TensorMeta, i: number, label: string): HTMLElement {
  return h('tr', {},
    h('td', {}, m.name || `${label}${i}`),
    h('td', {}, '[' + (m.shape || []).join(', ') + ']'),
    h('td', {}, m.dtype || ''),
    h('td', {}, m.device || ''),
    h('td', {}, m.requires_grad === undefined ? '' : m.requires_grad ? 'grad' : ''));
}

function metaTable(title: string, ms: TensorMeta[] | undefined, label: string): HTMLElement | null {
  if (!ms || !ms.length) return null;
  return h('div', { class: 'dt-sec' }, h('div', { class: 'dt-sec-title' }, title),
    h('table', { class: 'dt-meta', 'data-part': label }, ...ms.map((m, i) => metaRow(m, i, label))));
}

export function histogram(s: Summary): SVGSVGElement | null {
  const hist = s.hist;
  if (!hist || !hist.counts || !hist.counts.length) return null;
  const W = 220, H = 60;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H + 12}`);
  svg.setAttribute('class', 'dt-hist');
  const max = Math.max(...hist.counts, 1);
  const bw = W / hist.counts.length;
  hist.counts.forEach((c, i) => {
    const r = document.createElementNS(ns, 'rect');
    const bh = (c / max) * H;
    r.setAttribute('x', String(i * bw + 0.5));
    r.setAttribute('y', String(H - bh));
    r.setAttribute('width', String(Math.max(bw - 1, 0.5)));
    r.setAttribute('height', String(bh));
    r.setAttribute('data-count', String(c));
    const t = document.createElementNS(ns, 'title');
    t.textContent = `${fmt(hist.edges[i])} .. ${fmt(hist.edges[i + 1])}: ${c}`;
    r.append(t);
    svg.append(r);
  });
  for (const [x, v, anchor] of [[0, hist.edges[0], 'start'], [W, hist.edges[hist.edges.length - 1], 'end']] as const) {
    const t = document.createElementNS(ns, 'text');
    t.setAttribute('x', String(x));
    t.setAttribute('y', String(H + 10));
    t.setAttribute('text-anchor', anchor);
    t.textContent = fmt(v as number);
    svg.append(t);
  }
  return svg;
}

export function heatmap(heat: Heat): HTMLCanvasElement {
  const c = document.createElement('canvas');
  c.width = heat.cols;
  c.height = heat.rows;
  c.className = 'dt-heat';
  const ctx = c.getContext('2d');
  if (ctx) {
    const img = ctx.createImageData(heat.cols, heat.rows);
    const m = Math.max(Math.abs(heat.min), Math.abs(heat.max)) || 1;
    heat.values.forEach((v, i) => {
      // diverging blue-white-red around zero
      const t = Math.max(-1, Math.min(1, v / m));
      const r = t > 0 ? 255 : Math.round(255 * (1 + t));
      const b = t < 0 ? 255 : Math.round(255 * (1 - t));
      const g = Math.round(255 * (1 - Math.abs(t)));
      img.data.set([r, g, b, Number.isFinite(v) ? 255 : 0], i * 4);
    });
    ctx.putImageData(img, 0, 0);
  }
  c.title = `pooled ${heat.rows}x${heat.cols}, range ${fmt(heat.min)} .. ${fmt(heat.max)}`;
  return c;
}

export function summaryBlock(title: string, s: Summary | null, part: string): HTMLElement {
  const box = h('div', { class: 'dt-grad', 'data-part': part }, h('div', { class: 'dt-sec-title' }, title));
  if (!s) {
    box.append(h('div', { class: 'dt-muted' }, 'no gradient'));
    return box;
  }
  const badges = h('div', { class: 'dt-badges' });
  if (s.nan) badges.append(h('span', { class: 'dt-badge dt-bad', 'data-badge': 'nan' }, `NaN \u00d7${s.nan}`));
  if (s.inf) badges.append(h('span', { class: 'dt-badge dt-bad', 'data-badge': 'inf' }, `Inf \u00d7${s.inf}`));
  if (s.zeros >= 0.999) badges.append(h('span', { class: 'dt-badge dt-warn', 'data-badge': 'zero' }, 'all zero'));
  box.append(badges);
  const stats: [string, number][] = [['mean', s.mean], ['std', s.std], ['min', s.min], ['max', s.max],
    ['norm', s.norm], ['zeros', s.zeros]];
  const t = h('table', { class: 'dt-stats' });
  t.append(h('tr', {}, h('td', {}, 'shape'), h('td', {}, '[' + (s.shape || []).join(', ') + '] ' + (s.dtype || ''))));
  for (const [k, v] of stats) {
    t.append(h('tr', {}, h('td', {}, k), h('td', { 'data-stat': k, 'data-value': String(v) }, k === 'zeros' ? (100 * v).toFixed(1) + '%' : fmt(v))));
  }
  box.append(t);
  const hg = histogram(s);
  if (hg) box.append(hg);
  if (s.heat && s.heat.rows && s.heat.cols) box.append(heatmap(s.heat));
  return box;
}

export function nodeInspector(n: GNode, breakpoints: Set<string>): HTMLElement {
  const root = h('div', { class: 'dt-insp', 'data-node': n.id });
  root.append(h('div', { class: 'dt-insp-head' },
    h('b', {}, n.op), ' ',
    h('span', { class: `dt-chip dt-st-${n.state}`, 'data-state': n.state }, n.state),
    breakpoints.has(n.id) ? h('span', { class: 'dt-chip dt-bp' }, 'breakpoint') : ''));
  const rows: [string, string][] = [['node', `${n.id} (seq ${n.seq}, ${n.kind})`], ['scope', n.scope || '(top level)']];
  if (n.param) rows.push(['parameter', n.param]);
  if (n.source) rows.push(['source', n.source.cell !== undefined && n.source.cell !== null ? `In [${n.source.cell}], line ${n.source.line}` : `${n.source.file}:${n.source.line}`]);
  if (n.time_us !== null && n.time_us !== undefined) rows.push(['time', `${fmt(n.time_us)} \u00b5s`]);
  const t = h('table', { class: 'dt-kv' });
  for (const [k, v] of rows) t.append(h('tr', {}, h('td', {}, k), h('td', { 'data-field': k }, v)));
  root.append(t);
  if (n.source && n.source.text) root.append(h('pre', { class: 'dt-src' }, n.source.text));
  for (const sec of [metaTable('inputs', n.inputs, 'input'), metaTable('outputs', n.outputs, 'output'),
    metaTable('saved tensors', n.saved, 'saved')]) if (sec) root.append(sec);
  if (n.grad) {
    (n.grad.in || []).forEach((s, i) => root.append(summaryBlock(`gradient in${n.grad!.in.length > 1 ? ' ' + i : ''} (d out)`, s, `in${i}`)));
    (n.grad.out || []).forEach((s, i) => root.append(summaryBlock(`gradient out ${i} (d input)`, s, `out${i}`)));
  } else {
    root.append(h('div', { class: 'dt-muted' }, 'Backward has not reached this node yet.'));
  }
  return root;
}

/** A module scope: a folded box or group (``it``), or an open cluster (``it`` null). */
export function scopeInspector(id: string, info: GScope | undefined, it: Item | null, doc: GDoc,
  fold: (scope: string) => void): HTMLElement {
  const scope = id.slice(2);
  const box = h('div', { class: 'dt-insp', 'data-scope': scope },
    h('b', {}, (id.startsWith('r:') && it && it.scopes ? `${info?.type || scope} \u00d7 ${it.scopes.length}` : scope)),
    info && info.type ? h('span', { class: 'dt-muted' }, ' ' + info.type) : '',
    h('div', { class: 'dt-muted' }, it ? `${it.members.length} nodes, folded (click the box to open it)` : 'open'));
  if (it) {
    const m = byId(doc);
    const counts: Record<string, number> = {};
    let gmax = -1, gname = '';
    const params: string[] = [];
    for (const nid of it.members) {
      const n = m.get(nid)!;
      counts[n.state] = (counts[n.state] || 0) + 1;
      if (n.param) params.push(n.param);
      for (const sm of n.grad ? [...(n.grad.in || []), ...(n.grad.out || [])] : []) {
        if (sm && sm.norm !== null && sm.norm > gmax) { gmax = sm.norm; gname = n.op; }
      }
    }
    const t = h('table', { class: 'dt-kv' });
    t.append(h('tr', {}, h('td', {}, 'states'), h('td', {}, Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', '))));
    if (params.length) t.append(h('tr', {}, h('td', {}, 'parameters'), h('td', {}, params.slice(0, 12).join(', ') + (params.length > 12 ? ', \u2026' : ''))));
    if (gmax >= 0) t.append(h('tr', {}, h('td', {}, 'largest grad'), h('td', {}, `${fmt(gmax)} (${gname})`)));
    box.append(t);
  } else {
    const b = h('button', { class: 'dt-btn', 'data-cmd': 'fold-scope' }, 'Fold ' + scope);
    b.addEventListener('click', () => fold(scope));
    box.append(b);
  }
  return box;
}

/** Whether the inspector follows the current node or shows a pinned one (with an unpin button). */
export function pinBar(pinned: boolean, unpin: () => void): HTMLElement {
  const bar = h('div', { class: 'dt-pinbar' });
  if (pinned) {
    const b = h('button', { class: 'dt-btn dt-unpin', title: 'Unpin: follow the current node again' }, '\ud83d\udccc pinned \u2715');
    b.addEventListener('click', unpin);
    bar.append(b);
  } else bar.append(h('span', { class: 'dt-muted dt-following' }, 'following the current node (click a node to pin it)'));
  return bar;
}
