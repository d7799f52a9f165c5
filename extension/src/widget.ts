// anywidget entry: one GraphView per displayed widget, fed by the kernel's messages.
// Only the API anywidget documents as portable (model get/on/off/send, el): it runs in
// JupyterLab, Notebook 7, VS Code and Colab alike. JupyterLab-only features live in plugin.ts.
import type { AnyWidget, Render } from '@anywidget/types';
import css from './style.css';
import { GraphView, type Host } from './view';
import { hub } from './hub';
import type { GDiff, GDoc, History, Metrics } from './types';

/** The synced traits of dyntorch.viz.widget.GraphWidget. */
interface WidgetState {
  doc: GDoc | Record<string, never>;
  metrics: Metrics;
  mode: Host['mode'];
  height: string;
  fold_limit: number;
}

/** Custom messages from the kernel. */
type KernelMsg =
  | { type: 'engine'; src: string }
  | { type: 'doc'; doc: GDoc }
  | { type: 'diff'; diff: GDiff }
  | { type: 'select'; node: string }
  | { type: 'metrics'; metrics: Metrics }
  | { type: 'exported'; path?: string; name?: string; error?: string; format?: string }
  | { type: 'recorder'; steps: number[]; step: number }
  | ({ type: 'history' } & History);

function isDoc(d: unknown): d is GDoc {
  return !!d && typeof d === 'object' && Array.isArray((d as GDoc).nodes);
}

export function injectCss(): void {
  if (document.getElementById('dyntorch-css')) return;
  const s = document.createElement('style');
  s.id = 'dyntorch-css';
  s.textContent = css;
  document.head.append(s);
}

function clone(doc: GDoc): GDoc {
  return JSON.parse(JSON.stringify(doc));
}

// The side panel of the JupyterLab plugin mirrors the latest view through the hub.
hub().createMirror = (el, pick) => {
  injectCss();
  const view = new GraphView(el, { mode: 'mirror', send: () => undefined, fetchEngine: () => Promise.reject(new Error('mirror')) });
  const update = () => {
    const v = pick() as GraphView | null;
    if (!v || !v.doc) return;
    const d = v.doc;
    view.setDoc({ ...d, nodes: d.nodes.slice(), edges: d.edges.slice(), scopes: d.scopes.slice() });
  };
  update();
  return { dispose: () => view.dispose(), update };
};

// When a display is updated (live() leaves its final picture with update_display), the front
// end renders a new view and removes the old one's element without always disposing it. Views
// that were on the page and are no longer leave the hub, so tests and commands act on the view
// the user sees (a view joins again when its element comes back and is used).
function retire(fresh: GraphView, tries = 30): void {
  for (const v of [...hub().views] as GraphView[]) {
    if (v !== fresh && (v.shown || v.drawn > 0) && !v.root.isConnected) hub().unregister(v);
  }
  if (tries > 0) setTimeout(() => retire(fresh, tries - 1), 100);
}

const render: Render<WidgetState> = ({ model, el }) => {
  injectCss();
  let engineWait: ((s: string) => void)[] = [];
  const host: Host = {
    mode: model.get('mode') || 'graph',
    send: msg => model.send(msg),
    fetchEngine: () => new Promise<string>((ok, fail) => {
      engineWait.push(ok);
      model.send({ type: 'need_engine' });
      setTimeout(() => fail(new Error('no kernel answered with the layout engine')), 30000);
    }),
    foldLimit: model.get('fold_limit') || 300
  };
  const view = new GraphView(el, host);
  retire(view);
  // one fixed height (the user may drag the corner handle); the inspector scrolls inside it,
  // so stepping never makes the output jump
  view.root.style.height = model.get('height') || '560px';
  const doc = model.get('doc');
  if (isDoc(doc)) view.setDoc(clone(doc));
  view.setMetrics(model.get('metrics') || {});
  const onMsg = (msg: KernelMsg) => {
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'engine') {
      const w = engineWait;
      engineWait = [];
      w.forEach(f => f(msg.src));
    } else if (msg.type === 'doc') view.setDoc(msg.doc);
    else if (msg.type === 'diff') {
      if (!view.applyDiff(msg.diff)) model.send({ type: 'need_full', rev: view.doc ? view.doc.rev : -1 });
    } else if (msg.type === 'select') view.select(msg.node);
    else if (msg.type === 'metrics') view.setMetrics(msg.metrics);
    else if (msg.type === 'exported') view.exported(msg);
    else if (msg.type === 'recorder') view.setRecorder({ steps: msg.steps, step: msg.step });
    else if (msg.type === 'history') view.setHistory(msg);
  };
  const onDoc = () => {
    const d = model.get('doc');
    if (isDoc(d)) view.setDoc(clone(d));
  };
  const onMetrics = () => view.setMetrics(model.get('metrics') || {});
  model.on('msg:custom', onMsg);
  model.on('change:doc', onDoc);
  model.on('change:metrics', onMetrics);
  model.send({ type: 'hello', rev: isDoc(doc) ? doc.rev : -1, graph_id: isDoc(doc) ? doc.graph_id : null });
  return () => {
    model.off('msg:custom', onMsg);
    model.off('change:doc', onDoc);
    model.off('change:metrics', onMetrics);
    view.dispose();
  };
}

const widget: AnyWidget<WidgetState> = { render };
export default widget;
