// The graph view: toolbar, the drawing (pan/zoom), the inspector, the status line and, in the
// live view, the training charts. It draws what the kernel sends and holds no model logic.
import { getEngine, loadedEngine } from './engine';
import { byId, Folding, type Item, type Visible } from './fold';
import { chartsPanel } from './charts';
import { fmt, h, nodeInspector, pinBar, scopeInspector } from './inspector';
import type { GDiff, GDoc, GNode, History, Metrics, RecorderInfo } from './types';
import { lossCurve } from './charts';
import { hub, type HubView } from './hub';
import { GraphModel } from './model';
import { contrastLabels, legend, ramp } from './overlay';
import { toolbar } from './toolbar';
import { stepsOf, withSteps } from './repeat';

export interface Host {
  mode: 'graph' | 'stepper' | 'live' | 'mirror';
  send(msg: Record<string, unknown>): void;
  fetchEngine(): Promise<string>;
  foldLimit?: number;
}

const STATES = ['idle', 'pending', 'ready', 'current', 'done'];
const BAD = '#ef476f', GOOD = '#b7e4b0';
// screen pixels per layout point below which labels (10 pt) would be under 9 px: Fit never
// shrinks further; bigger drawings are panned (drag) instead
const READABLE = 1.0;
let counter = 0;

export interface Timing {
  layout_ms: number;
  draw_ms: number;
  items: number;
  at: number;
}

export class GraphView implements HubView {
  id = 'dtv' + ++counter + '-' + Math.random().toString(36).slice(2, 7);
  root: HTMLElement;
  canvas: HTMLElement;
  inspector: HTMLElement;
  status: HTMLElement;
  charts: HTMLElement;
  legend: HTMLElement;
  caption: HTMLElement; // a marked graph's sentence (explain's reason, a diff's verdict)
  scrub: HTMLElement; // a Recorder's step slider
  private slider: HTMLInputElement | null = null;
  recorder: RecorderInfo | null = null;
  private histories = new Map<string, History>(); // recorder node key -> its history
  private scrubTimer: number | null = null;
  scrubSent = 0; // steps asked for by the slider (tests read it)
  pinned = false; // the inspector shows a clicked node instead of following the current one
  search: HTMLInputElement;
  overlay: HTMLSelectElement;
  model = new GraphModel();
  metrics: Metrics = {};
  folding = new Folding();
  vis: Visible | null = null;
  els = new Map<string, SVGGElement[]>(); // drawn id -> its SVG groups (copies of a shared leaf)
  selected: string | null = null;
  lastActive = Date.now();
  shown = false; // drawn while on the page (a view later removed from the page leaves the hub)

  /** The document drawn (held by the model). */
  get doc(): GDoc | null {
    return this.model.doc;
  }

  get breakpoints(): Set<string> {
    return this.model.breakpoints;
  }

  timings: Timing[] = [];
  drawn = 0; // completed drawings
  createdAt = performance.now();
  firstDrawMs: number | null = null; // from the view's creation to its first drawing
  private structDirty = true;
  private styleDirty = true;
  private busy = false;
  private again = false;
  private lastDraw = 0;
  private timer: number | null = null;
  private view = { x: 0, y: 0, w: 100, h: 100 };
  private full = { x: 0, y: 0, w: 100, h: 100 };
  private svg: SVGSVGElement | null = null;
  private disposed = false;
  private cleanups: (() => void)[] = [];
  phase: Record<string, number> = {}; // where the last drawing's time went

  constructor(public el: HTMLElement, public host: Host) {
    this.root = h('div', { class: `dt-root dt-mode-${host.mode}`, tabindex: '0', 'data-view': this.id });
    const tb = toolbar(host.mode === 'stepper', {
      command: cmd => this.command(cmd),
      restyle: () => this.restyle(),
      revealFirstMatch: () => this.revealFirstMatch(),
      fit: () => this.fit(true),
      foldAll: () => {
        const fd = this.foldDoc();
        if (!fd) return;
        this.autoFolding = false;
        this.folding.autoFold(fd, 0);
        this.structDirty = true;
        this.schedule(true);
      },
      exportAs: fmt => {
        this.touch();
        this.flash(`Saving ${fmt.toUpperCase()}\u2026`);
        // PNG: the drawing as shown (colours, open folds), rasterised here, so it needs no
        // plotting library in the kernel; the kernel writes the file beside the notebook
        if (fmt === 'png' && this.svg) {
          rasterise(this.svg, this.full).then(png => this.host.send({ type: 'export', format: fmt, png }),
            e => this.flash('Export failed: ' + String(e)));
        } else this.host.send({ type: 'export', format: fmt });
      },
      unfoldAll: () => {
        this.autoFolding = false;
        this.folding.folded.clear();
        for (const sc of this.folding.scopeInfo.keys()) this.folding.openGroups.add(sc);
        this.structDirty = true;
        this.schedule(true);
      }
    });
    const bar = tb.bar;
    this.search = tb.search;
    this.overlay = tb.overlay;
    this.canvas = h('div', { class: 'dt-canvas' }, h('div', { class: 'dt-empty' }, 'waiting for the graph\u2026'));
    this.legend = h('div', { class: 'dt-legend' });
    this.inspector = h('div', { class: 'dt-inspector' }, h('div', { class: 'dt-muted' },
      host.mode === 'stepper' ? 'Press Step: the inspector follows the current node (click a node to pin it).' : 'Click a node to inspect it.'));
    this.charts = h('div', { class: 'dt-charts' });
    this.status = h('div', { class: 'dt-status' });
    this.caption = h('div', { class: 'dt-caption' });
    this.scrub = h('div', { class: 'dt-scrub' });
    this.root.append(bar, this.caption, this.scrub, h('div', { class: 'dt-main' }, h('div', { class: 'dt-stage' }, this.canvas, this.legend), this.inspector), this.charts, this.status);
    el.append(this.root);
    // label colours follow the theme: restyle when JupyterLab switches it
    if (typeof MutationObserver !== 'undefined' && document.body) {
      const mo = new MutationObserver(() => { if (this.svg) this.restyle(); });
      mo.observe(document.body, { attributes: true, attributeFilter: ['data-jp-theme-light', 'data-jp-theme-name'] });
      this.cleanups.push(() => mo.disconnect());
    }
    this.panZoom();
    // Output areas may be laid out (or resized) after the first drawing: refit then, unless the
    // user has moved the view.
    if (typeof ResizeObserver !== 'undefined') {
      let last = '';
      const ro = new ResizeObserver(() => {
        const r = this.canvas.getBoundingClientRect();
        const k = `${Math.round(r.width)}x${Math.round(r.height)}`;
        if (k === last || !r.width || !r.height) return;
        last = k;
        if (this.svg && !this.userMoved) this.fit();
      });
      ro.observe(this.canvas);
      this.cleanups.push(() => ro.disconnect());
    }
    this.canvas.addEventListener('click', ev => this.onClick(ev));
    this.root.addEventListener('pointerdown', () => this.touch());
    this.root.addEventListener('focusin', () => this.touch());
    hub().register(this);
  }

  dispose(): void {
    this.disposed = true;
    for (const c of this.cleanups) c();
    this.cleanups = [];
    hub().unregister(this);
    this.root.remove();
  }

  private flashText = '';
  private flashTimer: number | null = null;

  /** A short message in the status line (a control that cannot act says why). */
  flash(text: string): void {
    this.flashText = text;
    if (this.flashTimer !== null) clearTimeout(this.flashTimer);
    this.flashTimer = window.setTimeout(() => { this.flashText = ''; this.flashTimer = null; this.renderStatus(); }, 6000);
    this.renderStatus();
  }

  /** The kernel wrote an export (or could not). */
  exported(msg: { path?: string; name?: string; error?: string; format?: string }): void {
    this.root.setAttribute('data-export-error', msg.error || '');
    if (msg.error) this.flash('Export failed: ' + msg.error);
    else this.flash(`Saved ${msg.name || msg.path} beside the notebook`);
    this.root.setAttribute('data-exported', msg.path || '');
  }

  /** A Recorder's kept steps: the slider scrubs the colours across them. */
  setRecorder(info: RecorderInfo): void {
    const first = !this.recorder;
    this.recorder = info;
    if (first && this.overlay.value === 'state') this.overlay.value = 'grad';
    if (!this.slider) {
      const s = h('input', { type: 'range', class: 'dt-step-slider', min: '0', step: '1', title: 'training step (kept by the Recorder)' }) as HTMLInputElement;
      const label = h('span', { class: 'dt-step-label' });
      s.addEventListener('input', () => {
        const steps = this.recorder ? this.recorder.steps : [];
        const k = steps[Number(s.value)];
        label.textContent = `training step ${k}`;
        // one request per frame while dragging: the kernel answers with a diff of colours
        if (this.scrubTimer !== null) clearTimeout(this.scrubTimer);
        this.scrubTimer = window.setTimeout(() => {
          this.scrubTimer = null;
          this.scrubSent++;
          this.host.send({ type: 'cmd', cmd: 'rec_step', step: k });
        }, 16);
      });
      s.addEventListener('keydown', ev => ev.stopPropagation());
      this.slider = s;
      this.scrub.append(h('span', { class: 'dt-muted' }, 'step '), s, label);
    }
    this.slider.max = String(Math.max(0, info.steps.length - 1));
    this.slider.value = String(Math.max(0, info.steps.indexOf(info.step)));
    (this.scrub.lastChild as HTMLElement).textContent = `training step ${info.step} (${info.steps.length} kept: ${info.steps[0]}\u2013${info.steps[info.steps.length - 1]})`;
    this.root.setAttribute('data-rec-step', String(info.step));
    this.histories.clear();
    if (this.selected) this.renderInspector();
  }

  /** A node's history from the kernel: charted in the inspector. */
  setHistory(hist: History): void {
    this.histories.set(hist.key, hist);
    if (this.selected) this.renderInspector();
  }

  touch(): void {
    this.lastActive = Date.now();
    if (!this.disposed && !hub().views.has(this) && this.host.mode !== 'mirror') hub().register(this);
    hub().focus(this);
  }

  command(cmd: string): void {
    this.touch();
    if (cmd === 'break') {
      if (this.selected && !this.selected.includes(':')) this.host.send({ type: 'cmd', cmd: 'break', node: this.selected });
      else this.flash('Breakpoint: select a node first (click it in the graph), then press Breakpoint.');
      return;
    }
    this.host.send({ type: 'cmd', cmd });
  }

  // ---------------------------------------------------------------- data in
  setDoc(doc: GDoc): void {
    const ch = this.model.setDoc(doc);
    this.caption.textContent = doc.caption || '';
    if (doc.recorder) this.setRecorder(doc.recorder);
    if (!ch.sameGraph) {
      this.folding.autoFold(this.foldDoc()!, this.host.foldLimit ?? 300);
      this.fitNext = true;
      this.autoFolding = true;
    } else this.foldDoc();
    this.structDirty = this.structDirty || ch.struct;
    this.styleDirty = true;
    this.schedule(!ch.sameGraph);
    hub().changed(this);
  }

  private fitNext = true;
  // fold deeper until the drawing fits at a readable size: on the first paint, and while a live
  // graph grows, until the user folds or opens something by hand
  private autoFolding = true;
  private followed: string | null = null; // the current node we last panned to
  private revealAfter: string | null = null; // a cluster to bring into view after the next layout

  private lastFold: GDoc | null = null;

  /** The document as folding sees it (long repeated runs as time steps; ``repeat.ts``);
   *  the folding's scope index follows it. */
  foldDoc(): GDoc | null {
    if (!this.doc) return null;
    const fd = withSteps(this.doc);
    if (fd !== this.lastFold) {
      this.lastFold = fd;
      this.folding.index(fd);
    }
    return fd;
  }

  /** Apply a diff; returns false when it does not follow the document (ask for the full one). */
  applyDiff(d: GDiff): boolean {
    const ch = this.model.applyDiff(d);
    if (!ch) return false;
    if (d.scopes || ch.struct) this.foldDoc();
    this.structDirty = this.structDirty || ch.struct;
    this.styleDirty = true;
    // a stepper update must land within one frame: restyle now when nothing moved
    if (!this.structDirty && this.svg) this.restyle();
    else this.schedule(false);
    hub().changed(this);
    return true;
  }

  setMetrics(m: Metrics): void {
    this.metrics = m || {};
    this.charts.replaceChildren(chartsPanel(this.metrics));
  }

  // ---------------------------------------------------------------- drawing
  /** Redraw soon: at most ~10 times a second, one layout in flight at a time. */
  schedule(now: boolean): void {
    if (this.disposed) return;
    if (this.busy) {
      this.again = true;
      return;
    }
    const wait = now ? 0 : Math.max(0, 100 - (performance.now() - this.lastDraw));
    if (this.timer !== null) return;
    this.timer = window.setTimeout(() => {
      this.timer = null;
      void this.draw();
    }, wait);
  }

  private async draw(): Promise<void> {
    if (!this.doc) return;
    this.busy = true;
    try {
      if (this.structDirty) {
        this.structDirty = false;
        const t0 = performance.now();
        const fd = this.foldDoc()!;
        let vis = this.folding.visible(fd);
        const engine = this.host.mode === 'mirror' ? loadedEngine() : getEngine(() => this.host.fetchEngine());
        if (!engine) throw new Error('no layout engine loaded on this page yet');
        let res = await (await engine).layout(vis.dot);
        // first paint: the whole drawing in view at a readable size, folding repeated blocks
        // and module scopes deeper while it does not fit (never shrinking labels below 9 px)
        let tries = 0;
        while (this.autoFolding && this.host.mode !== 'mirror' && !this.fitsReadable(res.svg) && tries++ < 6 &&
          this.folding.foldDeeper(fd)) {
          vis = this.folding.visible(fd);
          res = await (await engine).layout(vis.dot);
        }
        const t1 = performance.now();
        this.install(res.svg, vis); // classes and colours are set before the first page layout
        this.phase.worker_ms = res.ms;
        this.lastDraw = performance.now();
        this.timings.push({ layout_ms: t1 - t0, draw_ms: this.lastDraw - t0, items: vis.items.size, at: Date.now() });
        if (this.timings.length > 50) this.timings.shift();
        this.drawn++;
        if (this.firstDrawMs === null) this.firstDrawMs = this.lastDraw - this.createdAt;
      } else if (this.styleDirty) {
        this.restyle();
      }
    } catch (e) {
      this.status.textContent = 'dyntorch view: ' + String(e);
    } finally {
      this.busy = false;
      if (this.again) {
        this.again = false;
        this.schedule(false);
      }
    }
  }

  /** Whether a laid-out drawing fits the canvas at the readable scale (1 px per point). */
  private fitsReadable(svgText: string): boolean {
    const m = /viewBox="([-\d.]+) ([-\d.]+) ([\d.]+) ([\d.]+)"/.exec(svgText);
    const r = this.canvas.getBoundingClientRect();
    if (!m || !r.width || !r.height) return true;
    return Number(m[3]) * READABLE <= r.width && Number(m[4]) * READABLE <= r.height;
  }

  private install(svgText: string, vis: Visible): void {
    // keep the user's pan/zoom across redraws; otherwise fit the new drawing
    const keep = this.svg !== null && this.userMoved && !this.fitNext;
    const p0 = performance.now();
    this.canvas.innerHTML = svgText;
    this.phase.parse_ms = performance.now() - p0;
    this.svg = this.canvas.querySelector('svg');
    this.vis = vis;
    if (this.root.isConnected) this.shown = true;
    if (!this.svg) return;
    this.svg.removeAttribute('width');
    this.svg.removeAttribute('height');
    const vb = this.svg.viewBox.baseVal;
    this.full = { x: vb.x, y: vb.y, w: vb.width, h: vb.height };
    this.indexSvg();
    this.svg.setAttribute('data-items', String(vis.items.size));
    this.svg.setAttribute('data-nodes', String(this.doc ? this.doc.nodes.length : 0));
    this.followed = this.doc && this.doc.status ? this.doc.status.current : null; // fit() shows it
    const p1 = performance.now();
    this.restyle();
    const p2 = performance.now();
    if (keep) this.applyView();
    else this.fit();
    this.phase.style_ms = p2 - p1;
    this.phase.fit_ms = performance.now() - p2;
    this.fitNext = false;
    const ra = this.revealAfter;
    this.revealAfter = null;
    if (ra && this.els.has(ra)) this.reveal(ra);
    else if (ra) {
      const c = this.svg.querySelector<SVGGElement>(`g.cluster[id="${CSS.escape(ra)}"]`);
      if (c) {
        this.els.set(ra, [c]);
        this.reveal(ra);
        this.els.delete(ra);
      }
    }
  }

  private indexSvg(): void {
    this.els.clear();
    if (!this.svg) return;
    for (const g of Array.from(this.svg.querySelectorAll<SVGGElement>('g.node'))) {
      const id = g.id.split('~')[0];
      const l = this.els.get(id);
      if (l) l.push(g);
      else this.els.set(id, [g]);
    }
  }

  /** Colours, classes and highlights; no layout. */
  restyle(): void {
    this.styleDirty = false;
    const doc = this.doc;
    const vis = this.vis;
    if (!doc || !vis) {
      this.renderStatus();
      return;
    }
    const m = byId(doc);
    const mode = this.overlay.value;
    const query = this.search.value.trim().toLowerCase();
    let values: Map<string, number> | null = null;
    if (mode !== 'state') values = this.overlayValues(vis, m, mode);
    let lo = Infinity, hi = -Infinity;
    if (values) for (const v of values.values()) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    let matches = 0;
    for (const [id, gs] of this.els) {
      const it = vis.items.get(id);
      if (!it) continue;
      const st = aggregateState(it, m);
      for (const g of gs) this.styleOne(g, id, it, st, m, query, values, lo, hi);
      if (query !== '' && gs[0].classList.contains('dt-match')) matches++;
    }
    this.root.setAttribute('data-matches', String(matches));
    const cur = doc.status && doc.status.current;
    if (cur && cur !== this.followed) {
      this.followed = cur;
      const rid = vis.rep.get(cur);
      if (rid) this.reveal(rid);
    }
    // the inspector follows the step unless the user pinned a node
    if (!this.pinned && this.host.mode === 'stepper' && this.selected !== (cur || null)) {
      this.selected = cur || null;
      for (const gs of this.els.values()) for (const g of gs) g.classList.toggle('dt-selected', false);
      if (!cur) this.inspector.replaceChildren(h('div', { class: 'dt-muted' }, 'Press Step: the inspector follows the current node (click a node to pin it).'));
    }
    this.renderLegend(mode, values, lo, hi);
    contrastLabels(this.els.values());
    this.renderStatus();
    if (this.selected) this.renderInspector();
  }

  private renderLegend(mode: string, values: Map<string, number> | null, lo: number, hi: number): void {
    this.legend.setAttribute('data-mode', mode);
    const doc = this.doc;
    if (mode === 'state' && doc && doc.legend && doc.legend.length) {
      this.legend.replaceChildren(...doc.legend.map(([c, t]) => {
        const sw = h('i', { class: 'dt-sw' });
        sw.style.background = c;
        return h('span', { class: 'dt-key', 'data-color': c }, sw, t);
      }));
      return;
    }
    if (mode === 'nonfinite') {
      const key = (c: string, t: string) => { const sw = h('i', { class: 'dt-sw' }); sw.style.background = c; return h('span', { class: 'dt-key' }, sw, t); };
      this.legend.replaceChildren(h('span', { class: 'dt-legend-title' }, 'NaN/Inf in output or gradient'),
        key(BAD, 'some'), key(GOOD, 'none'));
      return;
    }
    if (mode === 'dead') {
      const bar = h('span', { class: 'dt-colorbar' });
      bar.style.background = `linear-gradient(to right, ${[0, 0.25, 0.5, 0.75, 1].map(ramp).join(', ')})`;
      this.legend.replaceChildren(h('span', { class: 'dt-legend-title' }, 'fraction of output zeros'),
        h('span', { class: 'dt-tick' }, '0'), bar, h('span', { class: 'dt-tick' }, '1'));
      if (!values || !values.size) this.legend.append(h('span', { class: 'dt-legend-note' }, ' (needs a Recorder step: dyntorch.viz.show(rec))'));
      return;
    }
    this.legend.replaceChildren(...legend(mode, values, lo, hi, this.host.mode === 'stepper' || this.host.mode === 'mirror'));
  }

  private styleOne(g: SVGGElement, id: string, it: Item, st: string, m: Map<string, GNode>, query: string,
    values: Map<string, number> | null, lo: number, hi: number): void {
    {
      if (g.getAttribute('data-state') !== st) {
        for (const s of STATES) g.classList.remove('st-' + s);
        g.classList.add('st-' + st);
        g.setAttribute('data-state', st);
      }
      g.classList.toggle('dt-selected', id === this.selected);
      g.classList.toggle('dt-bp', it.type === 'node' && this.breakpoints.has(id));
      const hit = query !== '' && it.members.some(nid => {
        const n = m.get(nid)!;
        return n.op.toLowerCase().includes(query) || (n.scope || '').toLowerCase().includes(query) ||
          (n.label || '').toLowerCase().includes(query);
      });
      g.classList.toggle('dt-match', hit);
      g.classList.toggle('dt-dim', query !== '' && !hit);
      const shape = g.querySelector<SVGElement>('path, polygon, ellipse');
      if (shape) {
        const v = values ? values.get(id) : undefined;
        const marks = this.doc && this.doc.marks;
        let mark = '';
        if (marks && !values) for (const nid of it.members) if (marks[nid]) { mark = marks[nid]; if (mark === '#ef476f') break; }
        g.classList.toggle('dt-marked', !!mark);
        if (mark) shape.style.fill = mark;
        else if (v === undefined) shape.style.fill = '';
        else if (this.overlay.value === 'nonfinite') shape.style.fill = v > 0 ? BAD : GOOD;
        else if (this.overlay.value === 'dead') shape.style.fill = ramp(v);
        else shape.style.fill = ramp(hi > lo ? (v - lo) / (hi - lo) : 1);
      }
    }
  }

  private overlayValues(vis: Visible, m: Map<string, GNode>, mode: string): Map<string, number> {
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

  private renderStatus(): void {
    const st = this.doc && this.doc.status;
    const n = this.doc ? this.doc.nodes.length : 0;
    const shown = this.vis ? this.vis.items.size : 0;
    let text = st && st.text ? st.text : this.doc ? `${n} nodes` : '';
    if (this.host.mode === 'stepper' && st && st.step === 0 && !st.done) text += ' \u2014 press Step to run the first node';
    this.status.replaceChildren(h('span', { class: 'dt-status-text', 'data-step': String(st ? st.step : 0), 'data-current': st && st.current ? st.current : '' }, text),
      h('span', { class: 'dt-muted' }, shown && shown !== n ? `  \u00b7 ${shown} drawn items for ${n} nodes (click a box to open it)` : ''),
      this.flashText ? h('span', { class: 'dt-flash' }, '  ' + this.flashText) : '');
  }

  // ---------------------------------------------------------------- interaction
  private onClick(ev: MouseEvent): void {
    if (this.dragged) return;
    const g = (ev.target as Element).closest('g.node') as SVGGElement | null;
    if (!g) {
      const c = (ev.target as Element).closest('g.cluster') as SVGGElement | null;
      if (c && c.id.startsWith('c:')) {
        this.touch();
        this.pinned = true;
        this.select(c.id);
      }
      return;
    }
    this.touch();
    this.pinned = true;
    const id = g.id.split('~')[0];
    if (id.startsWith('s:') || id.startsWith('r:')) {
      this.folding.toggle(id);
      this.autoFolding = false;
      // after the layout, show what opened: a group's first block, or the scope's cluster
      this.revealAfter = id.startsWith('r:') ? 's:' + id.slice(2) : 'c:' + id.slice(2);
      this.select(id);
      this.structDirty = true;
      this.schedule(true);
      return;
    }
    this.select(id);
  }

  select(id: string | null): void {
    this.selected = id;
    for (const [k, gs] of this.els) for (const g of gs) g.classList.toggle('dt-selected', k === id);
    this.renderInspector();
    if (id && !id.includes(':')) this.host.send({ type: 'select', node: id });
  }

  renderInspector(): void {
    const doc = this.doc;
    const id = this.selected;
    if (!doc || !id) return;
    const fold = (scope: string) => { this.autoFolding = false; this.folding.fold(scope); this.structDirty = true; this.schedule(true); };
    if (id.includes(':')) {
      const scope = id.slice(2);
      const it = (this.vis && this.vis.items.get(id)) || null;
      this.inspector.replaceChildren(scopeInspector(id, this.folding.scopeInfo.get(scope), it, this.foldDoc() || doc, fold));
      return;
    }
    const n = byId(doc).get(id);
    if (!n) return;
    const insp = nodeInspector(n, this.breakpoints);
    if (this.host.mode === 'stepper') {
      insp.prepend(pinBar(this.pinned, () => { this.pinned = false; this.selected = null; this.restyle(); }));
    }
    if (this.recorder && n.key) {
      const hist = this.histories.get(n.key);
      const sec = h('div', { class: 'dt-sec dt-history', 'data-key': n.key }, h('div', { class: 'dt-sec-title' }, 'across training steps'));
      if (!hist) {
        sec.append(h('div', { class: 'dt-muted' }, 'loading history\u2026'));
        this.host.send({ type: 'cmd', cmd: 'history', key: n.key });
      } else {
        for (const [stat, vals] of Object.entries(hist.series)) {
          const ys = vals.map(v => (v === null ? NaN : v));
          const c = lossCurve(ys, stat);
          c.setAttribute('data-stat', stat);
          sec.append(c);
        }
        sec.setAttribute('data-points', String(hist.steps.length));
      }
      insp.prepend(sec);
    }
    if (n.scope) {
      const b = h('button', { class: 'dt-btn', title: 'Fold this node\u2019s module scope' }, 'Fold ' + n.scope);
      b.addEventListener('click', () => fold(n.scope));
      insp.append(b);
    }
    this.inspector.replaceChildren(insp);
  }

  private searchQuery = '';
  private searchAt = 0;

  private revealFirstMatch(): void {
    const doc = this.foldDoc();
    if (!doc) return;
    this.autoFolding = false;
    const q = this.search.value.trim().toLowerCase();
    if (!q) return;
    // Enter again goes to the next match, in forward order
    const hits = doc.nodes.filter(x => x.op.toLowerCase().includes(q) || (x.scope || '').toLowerCase().includes(q) ||
      (x.label || '').toLowerCase().includes(q)).sort((a, b) => a.seq - b.seq);
    if (!hits.length) {
      this.flash(`No node matches \u201c${q}\u201d (op, scope or label).`);
      return;
    }
    this.searchAt = q === this.searchQuery ? (this.searchAt + 1) % hits.length : 0;
    this.searchQuery = q;
    const n = hits[this.searchAt];
    this.flash(`match ${this.searchAt + 1} of ${hits.length} (Enter: next)`);
    let changed = false;
    for (const a of n.scope ? n.scope.split('.').map((_, i, p) => p.slice(0, i + 1).join('.')) : []) {
      if (this.folding.folded.delete(a)) changed = true;
      if (this.folding.openMember(a)) changed = true;
    }
    this.selected = n.id;
    this.pinned = true; // the stepper's inspector keeps the found node
    this.root.setAttribute('data-found', n.id);
    if (changed) {
      this.revealAfter = n.id; // pan to it once the opened drawing is laid out
      this.structDirty = true;
      this.schedule(true);
    } else {
      this.select(n.id);
      const rid = this.vis ? this.vis.rep.get(n.id) : null;
      if (rid) this.reveal(rid);
    }
  }

  private dragged = false;
  private userMoved = false; // the user panned or zoomed since the last fit

  private panZoom(): void {
    let start: { x: number; y: number; vx: number; vy: number } | null = null;
    this.canvas.addEventListener('wheel', ev => {
      if (!this.svg) return;
      ev.preventDefault();
      const r = this.canvas.getBoundingClientRect();
      const fx = (ev.clientX - r.left) / r.width, fy = (ev.clientY - r.top) / r.height;
      const k = Math.exp(ev.deltaY * 0.0015);
      const v = this.view;
      const nw = v.w * k, nh = v.h * k;
      this.view = { x: v.x + (v.w - nw) * fx, y: v.y + (v.h - nh) * fy, w: nw, h: nh };
      this.userMoved = true;
      this.applyView();
    }, { passive: false });
    this.canvas.addEventListener('pointerdown', ev => {
      start = { x: ev.clientX, y: ev.clientY, vx: this.view.x, vy: this.view.y };
      this.dragged = false;
    });
    const move = (ev: PointerEvent) => {
      if (!start || !this.svg) return;
      const dx = ev.clientX - start.x, dy = ev.clientY - start.y;
      if (!this.dragged && Math.hypot(dx, dy) < 4) return;
      this.dragged = true;
      this.userMoved = true;
      const r = this.canvas.getBoundingClientRect();
      const s = Math.max(this.view.w / r.width, this.view.h / r.height);
      this.view.x = start.vx - dx * s;
      this.view.y = start.vy - dy * s;
      this.applyView();
    };
    const up = () => {
      start = null;
      setTimeout(() => (this.dragged = false), 0);
    };
    window.addEventListener('pointermove', move);
    window.addEventListener('pointerup', up);
    this.cleanups.push(() => {
      window.removeEventListener('pointermove', move);
      window.removeEventListener('pointerup', up);
    });
  }

  /** Every first paint: the whole graph, centred, when it fits with labels at least 9 px;
   *  else a readable window that fills the canvas from the top of the drawing (its inputs and
   *  the folded repeated part), scrolled just enough to show the first "× N" box, or on the
   *  current node (stepper). Never blank canvas while boxes are out of view, and no box cut
   *  by the top edge. */
  fit(force = false): void {
    this.userMoved = false;
    const r = this.canvas.getBoundingClientRect();
    const f = this.full;
    const s = r.width && r.height ? Math.min(r.width / f.w, r.height / f.h) : 1;
    if (s > 1.2 && r.width && r.height) {
      // small graphs: natural size (about 12 px text), centred, rather than blown up
      const w = r.width / 1.2, h = r.height / 1.2;
      this.view = { x: f.x + (f.w - w) / 2, y: f.y + (f.h - h) / 2, w, h };
      this.applyView();
      return;
    }
    if (s >= READABLE) {
      this.view = { ...f };
      this.applyView();
      return;
    }
    void force;
    const k = READABLE; // too big to fit readably: a readable window on the drawing
    const w = r.width / k, h = r.height / k;
    this.view = { x: f.x, y: f.y, w, h };
    this.applyView();
    const boxes = this.boxesInView(); // drawn boxes in layout units
    const doc = this.doc;
    const cur = doc && doc.status ? doc.status.current : null;
    const curId = cur && this.vis ? this.vis.rep.get(cur) : null;
    let target = curId ? boxes.get(curId) || null : null;
    if (!target) {
      // the first folded repeat ("time step × 198" before any other "× N")
      const folds = [...boxes.entries()].filter(([id]) => id.startsWith('r:'))
        .sort((a, b) => Number(!a[0].startsWith('r:@t')) - Number(!b[0].startsWith('r:@t')) || a[1].y0 - b[1].y0);
      target = folds.length ? folds[0][1] : null;
    }
    const m = 6; // margin around a box brought into view, layout units
    let x = f.x + (f.w - w) / 2;
    let y = f.y;
    if (target) {
      if (f.w > w) x = (target.x0 + target.x1) / 2 - w / 2;
      if (curId) y = (target.y0 + target.y1) / 2 - h / 2; // the stepper's node, centred
      else if (target.y1 + m > y + h) y = target.y1 + m - h; // scroll just enough to include it
    }
    // no blank band: keep the window inside the drawing where the drawing is bigger
    if (f.w > w) x = Math.min(Math.max(x, f.x), f.x + f.w - w);
    if (f.h > h) y = Math.min(Math.max(y, f.y), f.y + f.h - h);
    else y = f.y + (f.h - h) / 2;
    // a box cut by the top edge: show it whole, or drop it if that would hide the target
    let cutTop = Infinity, cutBottom = -Infinity;
    for (const b of boxes.values()) {
      if (b.y0 < y && b.y1 > y) {
        cutTop = Math.min(cutTop, b.y0);
        cutBottom = Math.max(cutBottom, b.y1);
      }
    }
    if (cutTop < Infinity) {
      const up = Math.max(f.y, cutTop - m);
      if (!target || target.y1 <= up + h) y = up;
      else y = cutBottom + m;
    }
    this.view = { x, y, w, h };
    this.applyView();
  }

  /** The drawn boxes' extents in layout units for the current view (one layout read). */
  private boxesInView(): Map<string, { x0: number; y0: number; x1: number; y1: number }> {
    const out = new Map<string, { x0: number; y0: number; x1: number; y1: number }>();
    if (!this.svg) return out;
    const sr = this.svg.getBoundingClientRect();
    const v = this.view;
    if (!sr.width || !sr.height) return out;
    // preserveAspectRatio "xMidYMid meet": one scale, the viewBox centred in the element
    const sc = Math.min(sr.width / v.w, sr.height / v.h);
    const ox = sr.left + (sr.width - v.w * sc) / 2, oy = sr.top + (sr.height - v.h * sc) / 2;
    for (const [id, gs] of this.els) {
      const b = gs[0].getBoundingClientRect();
      out.set(id, { x0: v.x + (b.left - ox) / sc, y0: v.y + (b.top - oy) / sc,
        x1: v.x + (b.right - ox) / sc, y1: v.y + (b.bottom - oy) / sc });
    }
    return out;
  }

  /** Pan so that the drawn item ``id`` is in view (no-op when it already is). */
  reveal(id: string): void {
    const gs = this.els.get(id);
    if (!gs || !this.svg) return;
    const gr = gs[0].getBoundingClientRect();
    const cr = this.canvas.getBoundingClientRect();
    if (!cr.width || (gr.left >= cr.left && gr.right <= cr.right && gr.top >= cr.top && gr.bottom <= cr.bottom)) return;
    const s = Math.max(this.view.w / cr.width, this.view.h / cr.height);
    this.view.x += (gr.left + gr.width / 2 - (cr.left + cr.width / 2)) * s;
    this.view.y += (gr.top + gr.height / 2 - (cr.top + cr.height / 2)) * s;
    // centred, but never past the drawing's edge (no blank band while boxes are out of view)
    const f = this.full, v = this.view;
    if (f.w > v.w) v.x = Math.min(Math.max(v.x, f.x), f.x + f.w - v.w);
    if (f.h > v.h) v.y = Math.min(Math.max(v.y, f.y), f.y + f.h - v.h);
    this.applyView();
  }

  private applyView(): void {
    if (!this.svg) return;
    const v = this.view;
    this.svg.setAttribute('viewBox', `${v.x} ${v.y} ${v.w} ${v.h}`);
  }

  /** Numbers for tests and the side panel. */
  info(): Record<string, unknown> {
    return {
      nodes: this.doc ? this.doc.nodes.length : 0,
      items: this.vis ? this.vis.items.size : 0,
      time_steps: this.doc ? stepsOf(this.doc) : null,
      drawn: this.drawn,
      first_draw_ms: this.firstDrawMs,
      rev: this.doc ? this.doc.rev : -1,
      timings: this.timings,
      phase: this.phase,
      selected: this.selected,
      status: this.doc ? this.doc.status : null
    };
  }
}

function aggregateState(it: Item, m: Map<string, GNode>): string {
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

export { fmt };

const PAINT = ['fill', 'stroke', 'stroke-width', 'stroke-dasharray', 'font-family', 'font-size', 'font-weight', 'opacity'];

/** The drawn SVG as a PNG (base64, no prefix) at twice its size: computed paint is inlined,
 *  since a standalone SVG image sees none of the page's CSS. */
export async function rasterise(svg: SVGSVGElement, full: { x: number; y: number; w: number; h: number }): Promise<string> {
  const clone = svg.cloneNode(true) as SVGSVGElement;
  const src = svg.querySelectorAll<SVGElement>('*');
  const dst = clone.querySelectorAll<SVGElement>('*');
  src.forEach((el, k) => {
    const cs = getComputedStyle(el);
    const d = dst[k];
    for (const p of PAINT) d.style.setProperty(p, cs.getPropertyValue(p));
  });
  const scale = 2;
  const w = Math.ceil(full.w), hgt = Math.ceil(full.h);
  clone.setAttribute('viewBox', `${full.x} ${full.y} ${full.w} ${full.h}`);
  clone.setAttribute('width', String(w));
  clone.setAttribute('height', String(hgt));
  clone.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  const text = new XMLSerializer().serializeToString(clone);
  const url = URL.createObjectURL(new Blob([text], { type: 'image/svg+xml' }));
  try {
    const img = new Image();
    await new Promise<void>((ok, fail) => { img.onload = () => ok(); img.onerror = () => fail(new Error('the drawing could not be rasterised')); img.src = url; });
    const c = document.createElement('canvas');
    c.width = w * scale;
    c.height = hgt * scale;
    const g = c.getContext('2d')!;
    g.fillStyle = '#ffffff';
    g.fillRect(0, 0, c.width, c.height);
    g.drawImage(img, 0, 0, c.width, c.height);
    return c.toDataURL('image/png').split(',')[1];
  } finally {
    URL.revokeObjectURL(url);
  }
}
