// What the user does on the drawing: a click selects a node or scope, or opens or folds a
// box; the inspector shows the selection; Enter in the search box selects the next match,
// opening what hides it.
import { byId, type Visible } from './fold';
import { h, nodeInspector, pinBar, scopeInspector } from './inspector';
import type { GDoc } from './types';
import type { GraphView } from './view';

/** A click on the canvas (a drag's end is not a click). */
export function onClick(v: GraphView, ev: MouseEvent): void {
  if (v.pz.dragged) return;
  const g = (ev.target as Element).closest('g.node') as SVGGElement | null;
  if (!g) {
    const c = (ev.target as Element).closest('g.cluster') as SVGGElement | null;
    if (c && c.id.startsWith('c:')) {
      v.touch();
      v.pinned = true;
      v.select(c.id);
    }
    return;
  }
  v.touch();
  v.pinned = true;
  const id = g.id.split('~')[0];
  if (id.startsWith('s:') || id.startsWith('r:')) {
    v.fd.toggle(id);
    v.select(id);
    v.relayout();
    return;
  }
  v.select(id);
}

/** The inspector for the selected node or scope. */
export function renderInspector(v: GraphView): void {
  const doc = v.doc;
  const id = v.selected;
  if (!doc || !id) return;
  const fold = (scope: string) => { v.fd.fold(scope); v.relayout(); };
  if (id.includes(':')) {
    const scope = id.slice(2);
    const it = (v.vis && v.vis.items.get(id)) || null;
    v.inspector.replaceChildren(scopeInspector(id, v.folding.scopeInfo.get(scope), it, v.foldDoc() || doc, fold));
    return;
  }
  const n = byId(doc).get(id);
  if (!n) return;
  const insp = nodeInspector(n, v.breakpoints);
  if (v.host.mode === 'stepper') {
    insp.prepend(pinBar(v.pinned, () => { v.pinned = false; v.selected = null; v.restyle(); }));
  }
  if (v.recorder && n.key) insp.prepend(v.steps.section({ ...n, key: n.key }));
  if (n.scope) {
    const b = h('button', { class: 'dt-btn', title: 'Fold this node\u2019s module scope' }, 'Fold ' + n.scope);
    b.addEventListener('click', () => fold(n.scope));
    insp.append(b);
  }
  v.inspector.replaceChildren(insp);
}

/** Enter in the search box: select the next matching node, opening what hides it. */
export function revealNextMatch(v: GraphView): void {
  const doc = v.foldDoc();
  if (!doc) return;
  v.fd.autoFolding = false;
  const q = v.search.value.trim().toLowerCase();
  if (!q) return;
  const found = v.finder.next(doc, q);
  if (!found) {
    v.flash(`No node matches \u201c${q}\u201d (op, scope or label).`);
    return;
  }
  const n = found.node;
  v.flash(`match ${found.at + 1} of ${found.count} (Enter: next)`);
  const changed = v.fd.openTo(n);
  v.selected = n.id;
  v.pinned = true; // the stepper's inspector keeps the found node
  v.root.setAttribute('data-found', n.id);
  if (changed) {
    v.fd.revealAfter = n.id; // pan to it once the opened drawing is laid out
    v.relayout();
  } else {
    v.select(n.id);
    const rid = v.vis ? v.vis.rep.get(n.id) : null;
    if (rid) v.reveal(rid);
  }
}

/** A step moved the current node: pan to it, and the stepper's inspector follows it unless
 *  the user pinned a node. */
export function followCurrent(v: GraphView, doc: GDoc, vis: Visible): void {
  const cur = doc.status && doc.status.current;
  if (cur && cur !== v.followed) {
    v.followed = cur;
    const rid = vis.rep.get(cur);
    if (rid) v.reveal(rid);
  }
  // the inspector follows the step unless the user pinned a node
  if (!v.pinned && v.host.mode === 'stepper' && v.selected !== (cur || null)) {
    v.selected = cur || null;
    for (const gs of v.els.values()) for (const g of gs) g.classList.toggle('dt-selected', false);
    if (!cur) v.inspector.replaceChildren(h('div', { class: 'dt-muted' }, 'Press Step: the inspector follows the current node (click a node to pin it).'));
  }
}
