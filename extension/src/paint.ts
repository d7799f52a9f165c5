// Colours on a laid-out drawing: each box's state, the overlay's values (gradient norm, time,
// NaN/Inf, dead units), search hits, marks, and the legend that explains them. No layout.
import { byId, type Item, type Visible } from './fold';
import { h } from './inspector';
import { legend, ramp } from './overlay';
import { nodeMatches } from './search';
import type { GDoc, GNode } from './types';

const STATES = ['idle', 'pending', 'ready', 'current', 'done'];
const BAD = '#ef476f', GOOD = '#b7e4b0';

/** A drawn item's state: a group's is its most advanced member's. */
export function aggregateState(it: Item, m: Map<string, GNode>): string {
  if (it.type === 'node') return m.get(it.members[0])!.state || 'idle';
  let done = 0, pending = 0, ready = 0;
  for (const id of it.members) {
    const s = m.get(id)!.state;
    if (s === 'current') return 'current';
    if (s === 'done') done++;
    else if (s === 'ready') ready++;
    else if (s === 'pending') pending++;
  }
  if (ready) return 'ready';
  if (done === it.members.length) return 'done';
  if (pending || done) return 'pending';
  return 'idle';
}

/** What colours one box besides its state. */
export interface PaintContext {
  mode: string; // the overlay
  selected: string | null;
  breakpoints: Set<string>;
  marks: Record<string, string> | undefined;
  query: string; // the search, lower case
  values: Map<string, number> | null;
  lo: number;
  hi: number;
}

/** Classes and fill of one drawn group ``g`` of item ``it``. */
export function paintItem(g: SVGGElement, id: string, it: Item, st: string, m: Map<string, GNode>, c: PaintContext): void {
  if (g.getAttribute('data-state') !== st) {
    for (const s of STATES) g.classList.remove('st-' + s);
    g.classList.add('st-' + st);
    g.setAttribute('data-state', st);
  }
  g.classList.toggle('dt-selected', id === c.selected);
  g.classList.toggle('dt-bp', it.type === 'node' && c.breakpoints.has(id));
  const query = c.query;
  const hit = query !== '' && it.members.some(nid => nodeMatches(m.get(nid)!, query));
  g.classList.toggle('dt-match', hit);
  g.classList.toggle('dt-dim', query !== '' && !hit);
  const shape = g.querySelector<SVGElement>('path, polygon, ellipse');
  if (shape) {
    const values = c.values;
    const v = values ? values.get(id) : undefined;
    const marks = c.marks;
    let mark = '';
    if (marks && !values) for (const nid of it.members) if (marks[nid]) { mark = marks[nid]; if (mark === '#ef476f') break; }
    g.classList.toggle('dt-marked', !!mark);
    if (mark) shape.style.fill = mark;
    else if (v === undefined) shape.style.fill = '';
    else if (c.mode === 'nonfinite') shape.style.fill = v > 0 ? BAD : GOOD;
    else if (c.mode === 'dead') shape.style.fill = ramp(v);
    else shape.style.fill = ramp(c.hi > c.lo ? (v - c.lo) / (c.hi - c.lo) : 1);
  }
}

/** Each drawn item's overlay value (log10 for norms and times). */
export function overlayValues(vis: Visible, m: Map<string, GNode>, mode: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const it of vis.items.values()) {
    let acc = 0, any = false;
    for (const nid of it.members) {
      const n = m.get(nid)!;
      const rec = n.record;
      if (mode === 'nonfinite') {
        let c = 0;
        if (rec) for (const k of ['grad_nan', 'grad_inf', 'out_nan', 'out_inf']) c += Number(rec[k] || 0);
        const gs = n.grad ? [...(n.grad.in || []), ...(n.grad.out || [])] : [];
        for (const s of gs) if (s) c += (s.nan || 0) + (s.inf || 0);
        if (rec || n.grad) { acc += c; any = true; }
      } else if (mode === 'dead') {
        if (rec && rec.out_zeros !== null && rec.out_zeros !== undefined) { acc = Math.max(acc, Number(rec.out_zeros)); any = true; }
      } else if (mode === 'grad') {
        const gs = n.grad ? [...(n.grad.in || []), ...(n.grad.out || [])] : [];
        for (const s of gs) if (s && Number.isFinite(s.norm)) { acc = Math.max(acc, s.norm); any = true; }
      } else if (n.time_us !== null && n.time_us !== undefined) {
        acc += n.time_us;
        any = true;
      }
    }
    if (any) out.set(it.id, mode === 'nonfinite' || mode === 'dead' ? acc : Math.log10(Math.max(acc, 1e-12)));
  }
  return out;
}

/** The legend under the drawing for overlay ``mode``. */
export function renderLegend(el: HTMLElement, mode: string, doc: GDoc | null, values: Map<string, number> | null,
  lo: number, hi: number, debugging: boolean): void {
  el.setAttribute('data-mode', mode);
  if (mode === 'state' && doc && doc.legend && doc.legend.length) {
    el.replaceChildren(...doc.legend.map(([c, t]) => {
      const sw = h('i', { class: 'dt-sw' });
      sw.style.background = c;
      return h('span', { class: 'dt-key', 'data-color': c }, sw, t);
    }));
    return;
  }
  if (mode === 'nonfinite') {
    const key = (c: string, t: string) => { const sw = h('i', { class: 'dt-sw' }); sw.style.background = c; return h('span', { class: 'dt-key' }, sw, t); };
    el.replaceChildren(h('span', { class: 'dt-legend-title' }, 'NaN/Inf in output or gradient'),
      key(BAD, 'some'), key(GOOD, 'none'));
    return;
  }
  if (mode === 'dead') {
    const bar = h('span', { class: 'dt-colorbar' });
    bar.style.background = `linear-gradient(to right, ${[0, 0.25, 0.5, 0.75, 1].map(ramp).join(', ')})`;
    el.replaceChildren(h('span', { class: 'dt-legend-title' }, 'fraction of output zeros'),
      h('span', { class: 'dt-tick' }, '0'), bar, h('span', { class: 'dt-tick' }, '1'));
    if (!values || !values.size) el.append(h('span', { class: 'dt-legend-note' }, ' (needs a Recorder step: dyntorch.viz.show(rec))'));
    return;
  }
  el.replaceChildren(...legend(mode, values, lo, hi, debugging));
}

/** Label colours follow the theme: ``restyle`` when JupyterLab switches it. */
export function restyleOnTheme(restyle: () => void, cleanups: (() => void)[]): void {
  if (typeof MutationObserver === 'undefined' || !document.body) return;
  const mo = new MutationObserver(restyle);
  mo.observe(document.body, { attributes: true, attributeFilter: ['data-jp-theme-light', 'data-jp-theme-name'] });
  cleanups.push(() => mo.disconnect());
}

/** Index the drawn groups by drawn id into ``els`` (a shared leaf is drawn once per user, as
 *  "<id>~<k>"). */
export function indexGroups(svg: SVGSVGElement, els: Map<string, SVGGElement[]>): void {
  els.clear();
  for (const g of Array.from(svg.querySelectorAll<SVGGElement>('g.node'))) {
    const id = g.id.split('~')[0];
    const l = els.get(id);
    if (l) l.push(g);
    else els.set(id, [g]);
  }
}

/** Paint every drawn box for overlay ``mode`` and search ``query`` (lower case): the overlay's
 *  values with their range, and how many boxes match the search. */
export function paintAll(els: Map<string, SVGGElement[]>, vis: Visible, doc: GDoc, mode: string, query: string,
  selected: string | null, breakpoints: Set<string>): { values: Map<string, number> | null; lo: number; hi: number; matches: number } {
  const m = byId(doc);
  let values: Map<string, number> | null = null;
  if (mode !== 'state') values = overlayValues(vis, m, mode);
  let lo = Infinity, hi = -Infinity;
  if (values) for (const v of values.values()) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const ctx = { mode, selected, breakpoints, marks: doc.marks, query, values, lo, hi };
  let matches = 0;
  for (const [id, gs] of els) {
    const it = vis.items.get(id);
    if (!it) continue;
    const st = aggregateState(it, m);
    for (const g of gs) paintItem(g, id, it, st, m, ctx);
    if (query !== '' && gs[0].classList.contains('dt-match')) matches++;
  }
  return { values, lo, hi, matches };
}
