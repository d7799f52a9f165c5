// The graph view: composes the toolbar, the drawing, the inspector, the status line and, in the
// live view, the training charts, and draws what the kernel sends; it holds no model logic.
// Its parts: redraw.ts (when to draw), panzoom.ts (the transform), fit.ts (the first-paint
// window), paint.ts (colours), interact.ts (clicks, the inspector, search), search.ts,
// foldglue.ts (folding), scrub.ts (a Recorder's steps), status.ts, rasterise.ts (export).
import { getEngine, loadedEngine } from './engine';
import type { Folding, Visible } from './fold';
import { chartsPanel } from './charts';
import { fmt, h } from './inspector';
import type { GDiff, GDoc, History, Host, Metrics, RecorderInfo, Timing } from './types';
import { hub, type HubView } from './hub';
import { GraphModel } from './model';
import { contrastLabels } from './overlay';
import { toolbar } from './toolbar';
import { stepsOf } from './repeat';
import { PanZoom } from './panzoom';
import { fit, fitsReadable, refitOnResize } from './fit';
import { indexGroups, paintAll, renderLegend, restyleOnTheme } from './paint';
import { SearchCursor } from './search';
import { FoldGlue } from './foldglue';
import { Scrub } from './scrub';
import { StatusLine } from './status';
import { exportDrawing, rasterise } from './rasterise';
import { Redraw } from './redraw';
import { followCurrent, onClick, renderInspector, revealNextMatch } from './interact';

export type { Host, Timing } from './types';

let counter = 0;

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
  pinned = false; // the inspector shows a clicked node instead of following the current one
  search: HTMLInputElement;
  overlay: HTMLSelectElement;
  model = new GraphModel();
  metrics: Metrics = {};
  vis: Visible | null = null;
  els = new Map<string, SVGGElement[]>(); // drawn id -> its SVG groups (copies of a shared leaf)
  selected: string | null = null;
  lastActive = Date.now();
  shown = false; // drawn while on the page (a view later removed from the page leaves the hub)
  timings: Timing[] = [];
  drawn = 0; // completed drawings
  createdAt = performance.now();
  firstDrawMs: number | null = null; // from the view's creation to its first drawing
  phase: Record<string, number> = {}; // where the last drawing's time went
  private structDirty = true;
  private styleDirty = true;
  private disposed = false;
  private cleanups: (() => void)[] = [];
  private fitNext = true;
  // the parts (read by interact.ts; not for the kernel or tests)
  pz: PanZoom;
  fd = new FoldGlue();
  finder = new SearchCursor();
  steps: Scrub;
  followed: string | null = null; // the current node we last panned to
  private line: StatusLine;
  private redraw = new Redraw(() => this.draw(), () => !!this.doc, () => !this.disposed,
    e => { this.status.textContent = 'dyntorch view: ' + String(e); });

  /** The document drawn (held by the model). */
  get doc(): GDoc | null { return this.model.doc; }
  get breakpoints(): Set<string> { return this.model.breakpoints; }
  get folding(): Folding { return this.fd.folding; }
  get recorder(): RecorderInfo | null { return this.steps.info; }
  get scrubSent(): number { return this.steps.sent; } // steps asked for by the slider (tests read it)
  private get svg(): SVGSVGElement | null { return this.pz.svg; }

  constructor(public el: HTMLElement, public host: Host) {
    this.root = h('div', { class: `dt-root dt-mode-${host.mode}`, tabindex: '0', 'data-view': this.id });
    const tb = toolbar(host.mode === 'stepper', {
      command: cmd => this.command(cmd),
      restyle: () => this.restyle(),
      revealFirstMatch: () => revealNextMatch(this),
      fit: () => this.fit(true),
      foldAll: () => { if (this.fd.foldAll(this.doc)) this.relayout(); },
      exportAs: fmt => {
        this.touch();
        exportDrawing(fmt, this.svg, this.pz.full, msg => this.host.send(msg), text => this.flash(text));
      },
      unfoldAll: () => { this.fd.unfoldAll(); this.relayout(); }
    });
    this.search = tb.search;
    this.overlay = tb.overlay;
    this.canvas = h('div', { class: 'dt-canvas' }, h('div', { class: 'dt-empty' }, 'waiting for the graph\u2026'));
    this.legend = h('div', { class: 'dt-legend' });
    this.inspector = h('div', { class: 'dt-inspector' }, h('div', { class: 'dt-muted' },
      host.mode === 'stepper' ? 'Press Step: the inspector follows the current node (click a node to pin it).' : 'Click a node to inspect it.'));
    this.charts = h('div', { class: 'dt-charts' });
    this.line = new StatusLine(() => ({ doc: this.doc, vis: this.vis, mode: this.host.mode }));
    this.status = this.line.el;
    this.caption = h('div', { class: 'dt-caption' });
    this.steps = new Scrub(msg => this.host.send(msg));
    this.scrub = this.steps.el;
    this.root.append(tb.bar, this.caption, this.scrub, h('div', { class: 'dt-main' }, h('div', { class: 'dt-stage' }, this.canvas, this.legend), this.inspector), this.charts, this.status);
    el.append(this.root);
    restyleOnTheme(() => { if (this.svg) this.restyle(); }, this.cleanups);
    this.pz = new PanZoom(this.canvas, this.cleanups);
    refitOnResize(this.canvas, () => { if (this.svg && !this.pz.userMoved) this.fit(); }, this.cleanups);
    this.canvas.addEventListener('click', ev => onClick(this, ev));
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

  /** A short message in the status line (a control that cannot act says why). */
  flash(text: string): void {
    this.line.flash(text);
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
    if (first && this.overlay.value === 'state') this.overlay.value = 'grad';
    this.steps.set(info);
    this.root.setAttribute('data-rec-step', String(info.step));
    if (this.selected) this.renderInspector();
  }

  /** A node's history from the kernel: charted in the inspector. */
  setHistory(hist: History): void {
    this.steps.setHistory(hist);
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
      this.fd.newGraph(this.doc!, this.host.foldLimit ?? 300);
      this.fitNext = true;
    } else this.foldDoc();
    this.structDirty = this.structDirty || ch.struct;
    this.styleDirty = true;
    this.schedule(!ch.sameGraph);
    hub().changed(this);
  }

  /** The document as folding sees it (long repeated runs as time steps; ``repeat.ts``). */
  foldDoc(): GDoc | null {
    return this.fd.foldDoc(this.doc);
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
    this.redraw.schedule(now);
  }

  private async draw(): Promise<void> {
    if (this.structDirty) {
      this.structDirty = false;
      const t0 = performance.now();
      const fd = this.foldDoc()!;
      const { res, vis } = await this.fd.layout(fd,
        () => (this.host.mode === 'mirror' ? loadedEngine() : getEngine(() => this.host.fetchEngine())),
        svg => fitsReadable(svg, this.canvas), this.host.mode !== 'mirror');
      const t1 = performance.now();
      this.install(res.svg, vis); // classes and colours are set before the first page layout
      this.phase.worker_ms = res.ms;
      const done = (this.redraw.last = performance.now());
      this.timings.push({ layout_ms: t1 - t0, draw_ms: done - t0, items: vis.items.size, at: Date.now() });
      if (this.timings.length > 50) this.timings.shift();
      this.drawn++;
      if (this.firstDrawMs === null) this.firstDrawMs = done - this.createdAt;
    } else if (this.styleDirty) {
      this.restyle();
    }
  }

  private install(svgText: string, vis: Visible): void {
    // keep the user's pan/zoom across redraws; otherwise fit the new drawing
    const keep = this.svg !== null && this.pz.userMoved && !this.fitNext;
    const p0 = performance.now();
    this.canvas.innerHTML = svgText;
    this.phase.parse_ms = performance.now() - p0;
    const svg = (this.pz.svg = this.canvas.querySelector('svg'));
    this.vis = vis;
    if (this.root.isConnected) this.shown = true;
    if (!svg) return;
    svg.removeAttribute('width');
    svg.removeAttribute('height');
    const vb = svg.viewBox.baseVal;
    this.pz.full = { x: vb.x, y: vb.y, w: vb.width, h: vb.height };
    indexGroups(svg, this.els);
    svg.setAttribute('data-items', String(vis.items.size));
    svg.setAttribute('data-nodes', String(this.doc ? this.doc.nodes.length : 0));
    this.followed = this.doc && this.doc.status ? this.doc.status.current : null; // fit() shows it
    const p1 = performance.now();
    this.restyle();
    const p2 = performance.now();
    if (keep) this.pz.apply();
    else this.fit();
    this.phase.style_ms = p2 - p1;
    this.phase.fit_ms = performance.now() - p2;
    this.fitNext = false;
    const ra = this.fd.revealAfter;
    this.fd.revealAfter = null;
    if (ra && this.els.has(ra)) this.reveal(ra);
    else if (ra) this.pz.reveal(svg.querySelector<SVGGElement>(`g.cluster[id="${CSS.escape(ra)}"]`) || undefined);
  }

  /** Colours, classes and highlights; no layout. */
  restyle(): void {
    this.styleDirty = false;
    const doc = this.doc;
    const vis = this.vis;
    if (!doc || !vis) {
      this.line.render();
      return;
    }
    const mode = this.overlay.value;
    const { values, lo, hi, matches } = paintAll(this.els, vis, doc, mode, this.search.value.trim().toLowerCase(),
      this.selected, this.breakpoints);
    this.root.setAttribute('data-matches', String(matches));
    followCurrent(this, doc, vis);
    renderLegend(this.legend, mode, doc, values, lo, hi, this.host.mode === 'stepper' || this.host.mode === 'mirror');
    contrastLabels(this.els.values());
    this.line.render();
    if (this.selected) this.renderInspector();
  }

  select(id: string | null): void {
    this.selected = id;
    for (const [k, gs] of this.els) for (const g of gs) g.classList.toggle('dt-selected', k === id);
    this.renderInspector();
    if (id && !id.includes(':')) this.host.send({ type: 'select', node: id });
  }

  /** The inspector for the selected node or scope (``interact.ts``). */
  renderInspector(): void {
    renderInspector(this);
  }

  /** Layout again now (a fold opened or closed). */
  relayout(): void {
    this.structDirty = true;
    this.schedule(true);
  }

  /** The first-paint window (``fit.ts``); the toolbar's Fit. */
  fit(force = false): void {
    void force;
    const doc = this.doc;
    const cur = doc && doc.status ? doc.status.current : null;
    const curId = cur && this.vis ? this.vis.rep.get(cur) || null : null;
    fit(this.pz, this.canvas, this.els, curId);
  }

  /** Pan so that the drawn item ``id`` is in view (no-op when it already is). */
  reveal(id: string): void {
    const gs = this.els.get(id);
    if (gs) this.pz.reveal(gs[0]);
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

export { fmt };
export { rasterise };
