// Folding: which drawn item stands for each graph node, and the DOT text of what is drawn.
// Nodes fold into their nn.Module scope (a box), and folded repeats of one block fold into a
// single "Type x N" box. Open scopes are Graphviz clusters.
import type { GDoc, GNode, GScope } from './types';

export interface Item {
  id: string; // drawn id: a node id, "s:<scope>" or "r:<first scope>"
  type: 'node' | 'scope' | 'group';
  label: string;
  members: string[]; // node ids it stands for
  scope: string; // the open scope (cluster) it is drawn in
  scopes?: string[]; // group: the scopes it folds
}

export interface Visible {
  items: Map<string, Item>;
  rep: Map<string, string>; // node id -> drawn id
  dot: string;
}

export function ancestors(scope: string): string[] {
  // "a.b.c" -> ["a", "a.b", "a.b.c"]
  if (!scope) return [];
  const parts = scope.split('.');
  const out: string[] = [];
  for (let i = 1; i <= parts.length; i++) out.push(parts.slice(0, i).join('.'));
  return out;
}

function parentOf(s: string): string {
  const i = s.lastIndexOf('.');
  return i < 0 ? '' : s.slice(0, i);
}

export function scopeDepth(s: string): number {
  return s ? s.split('.').length : 0;
}

function q(s: string): string {
  return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') + '"';
}

function shapeText(n: GNode): string {
  const o = n.outputs && n.outputs[0];
  if (!o || !o.shape) return '';
  return o.shape.length ? o.shape.join('\u00d7') : 'scalar';
}

export class Folding {
  folded = new Set<string>(); // folded scopes
  openGroups = new Set<string>(); // repeat groups the user opened
  unsafe = new Set<string>(); // groups and scopes whose folding would draw a cycle
  // members taken out of a folded group (search revealed a node in them): the group is drawn
  // as the runs before and after them, so a 1,000-step group opens one step, not 1,000 boxes
  except = new Map<string, Set<string>>();
  private runKey = new Map<string, string>(); // drawn run head -> its group key
  scopeInfo = new Map<string, GScope>();

  /** Fold scopes deeper than the smallest depth that keeps the drawing under `limit` items. */
  autoFold(doc: GDoc, limit: number): void {
    this.folded.clear();
    this.openGroups.clear();
    this.except.clear();
    this.unsafe.clear();
    this.autoDepth = Infinity;
    this.index(doc);
    if (doc.nodes.length <= limit) return;
    const all = this.allScopes(doc);
    let maxDepth = 0;
    for (const s of all) maxDepth = Math.max(maxDepth, scopeDepth(s));
    for (let d = maxDepth; d >= 1; d--) {
      this.folded = new Set([...all].filter(s => scopeDepth(s) >= d));
      // overview first: the deepest folding that keeps a third of the limit (a 12-layer
      // transformer opens as embed -> "Block x 12" -> head)
      if (this.visible(doc).items.size <= limit / 3) return;
    }
  }

  autoDepth = Infinity; // scopes this deep or deeper were folded by foldDeeper

  /** Fold one scope level more than now (deepest first); false when nothing more folds.
   *  A graph that grew since (the live view) first gets its new scopes folded to the same
   *  depth. */
  foldDeeper(doc: GDoc): boolean {
    const all = this.allScopes(doc);
    if (!all.size) return false;
    const before = this.visible(doc).items.size;
    if (Number.isFinite(this.autoDepth)) {
      const same = [...all].filter(s => scopeDepth(s) >= this.autoDepth && !this.folded.has(s) && !this.unsafe.has('s:' + s));
      if (same.length) {
        for (const s of same) this.folded.add(s);
        if (this.visible(doc).items.size < before) return true;
      }
    }
    let depth = this.autoDepth;
    if (!Number.isFinite(depth)) {
      depth = 1;
      for (const s of all) depth = Math.max(depth, scopeDepth(s) + 1);
    }
    for (let d = depth - 1; d >= 1; d--) {
      this.autoDepth = d;
      for (const s of all) if (scopeDepth(s) >= d && !this.unsafe.has('s:' + s)) this.folded.add(s);
      if (this.visible(doc).items.size < before) return true;
    }
    return false;
  }

  index(doc: GDoc): void {
    this.scopeInfo.clear();
    for (const s of doc.scopes || []) this.scopeInfo.set(s.name, s);
  }

  allScopes(doc: GDoc): Set<string> {
    const all = new Set<string>();
    for (const n of doc.nodes) for (const a of ancestors(n.scope)) all.add(a);
    for (const s of doc.scopes || []) if (s.name) all.add(s.name);
    return all;
  }

  /** The repeat group key of a scope: the scope it repeats (or itself when others repeat it). */
  groupKey(s: string): string | null {
    const info = this.scopeInfo.get(s);
    if (info && info.repeat_of) return info.repeat_of;
    for (const o of this.scopeInfo.values()) if (o.repeat_of === s) return s;
    return null;
  }

  toggle(drawnId: string): void {
    if (drawnId.startsWith('s:')) this.folded.delete(drawnId.slice(2));
    else if (drawnId.startsWith('r:')) {
      const head = drawnId.slice(2);
      const key = this.runKey.get(head) || head;
      this.openGroups.add(key);
      this.except.delete(key);
    }
  }

  /** Open ``scope``, a member of a folded group, leaving the rest of the group folded. */
  openMember(scope: string): boolean {
    const g = this.groupKey(scope);
    if (!g || this.openGroups.has(g)) return false;
    let ex = this.except.get(g);
    if (!ex) this.except.set(g, (ex = new Set()));
    if (ex.has(scope)) return false;
    ex.add(scope);
    return true;
  }

  fold(scope: string): void {
    this.folded.add(scope);
    const g = this.groupKey(scope);
    if (g) {
      this.openGroups.delete(g);
      const ex = this.except.get(g);
      if (ex) ex.delete(scope);
    }
  }

  /** What is drawn; folds that would draw a cycle (edges back and forth between a fold and
   *  what lies between its parts) are left open, so the drawing stays a DAG. */
  visible(doc: GDoc): Visible {
    for (let guard = 0; guard < 50; guard++) {
      const v = this.visibleOnce(doc);
      const bad = cyclicItems(doc, v);
      if (!bad.length) return v;
      for (const it of bad) {
        if (it.type === 'group') this.unsafe.add(it.id);
        else if (it.type === 'scope') {
          this.folded.delete(it.id.slice(2));
          this.unsafe.add(it.id);
        }
      }
    }
    return this.visibleOnce(doc);
  }

  private visibleOnce(doc: GDoc): Visible {
    const items = new Map<string, Item>();
    const rep = new Map<string, string>();
    // groups: key -> folded member scopes, only when every member is folded and not opened
    const groupMembers = new Map<string, string[]>();
    for (const info of this.scopeInfo.values()) {
      const key = info.repeat_of ? info.repeat_of : null;
      if (!key) continue;
      if (!groupMembers.has(key)) groupMembers.set(key, [key]);
      groupMembers.get(key)!.push(info.name);
    }
    const groupOf = new Map<string, string>();
    const runs = new Map<string, string[]>(); // run head -> its members
    this.runKey.clear();
    for (const [key, members] of groupMembers) {
      if (this.openGroups.has(key) || members.length < 2 || this.unsafe.has('r:' + key)) continue;
      const ex = this.except.get(key);
      if (!members.every(m => this.folded.has(m) || (ex && ex.has(m)))) continue;
      // consecutive members not taken out form one drawn run each
      let run: string[] = [];
      const flush = () => {
        if (run.length >= 2 && !this.unsafe.has('r:' + run[0])) {
          for (const m of run) groupOf.set(m, run[0]);
          runs.set(run[0], run);
          this.runKey.set(run[0], key);
        }
        run = [];
      };
      for (const m of members) {
        if (ex && ex.has(m)) flush();
        else run.push(m);
      }
      flush();
    }
    for (const n of doc.nodes) {
      let id = n.id;
      let type: Item['type'] = 'node';
      let where = n.scope;
      let hit: string | null = null;
      for (const a of ancestors(n.scope)) {
        if (this.folded.has(a)) {
          hit = a;
          break;
        }
      }
      if (hit !== null) {
        const g = groupOf.get(hit);
        if (g) {
          id = 'r:' + g;
          type = 'group';
        } else {
          id = 's:' + hit;
          type = 'scope';
        }
        where = parentOf(hit);
        // a folded scope is drawn inside its nearest open ancestor
        while (where && this.isFoldedAbove(where)) where = parentOf(where);
      }
      let it = items.get(id);
      if (!it) {
        it = { id, type, label: '', members: [], scope: where };
        items.set(id, it);
      }
      it.members.push(n.id);
      rep.set(n.id, id);
    }
    for (const it of items.values()) it.label = this.label(it, doc, runs);
    return { items, rep, dot: this.dot(doc, items, rep) };
  }

  private isFoldedAbove(s: string): boolean {
    for (const a of ancestors(s)) if (this.folded.has(a)) return true;
    return false;
  }

  private label(it: Item, doc: GDoc, groups: Map<string, string[]>): string {
    if (it.type === 'node') {
      const n = byId(doc).get(it.members[0])!;
      const name = n.kind === 'leaf' && n.param ? n.param : n.label || n.op;
      const sh = shapeText(n);
      return sh ? name + '\n' + sh : name;
    }
    if (it.type === 'scope') {
      const s = it.id.slice(2);
      const t = this.scopeInfo.get(s)?.type;
      return (t ? t + '\n' : '') + s + ' (' + it.members.length + ')';
    }
    const key = it.id.slice(2);
    const members = groups.get(key) || [key];
    it.scopes = members;
    const t = this.scopeInfo.get(this.runKey.get(key) || key)?.type || key;
    return t + ' \u00d7 ' + members.length + '\n' + members[0] + '\u2026' + members[members.length - 1];
  }

  private dot(doc: GDoc, items: Map<string, Item>, rep: Map<string, string>): string {
    const lines: string[] = [
      'digraph G {',
      'graph [rankdir=TB, nodesep=0.2, ranksep=0.3, bgcolor="transparent", fontname="Helvetica", fontsize=10, labeljust=l' +
        // fewer crossing-minimisation passes on big drawings: about half the layout time
        (items.size > 300 ? ', mclimit=0.3];' : '];'),
      'node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, height=0.25, margin="0.06,0.02", fillcolor="#ffffff", color="#8a8a8a", penwidth=1];',
      'edge [arrowsize=0.5, color="#9a9a9a", penwidth=0.8];'
    ];
    // cluster tree of open scopes that hold something
    const children = new Map<string, string[]>();
    const placed = new Map<string, Item[]>();
    const need = new Set<string>();
    for (const it of items.values()) {
      if (!placed.has(it.scope)) placed.set(it.scope, []);
      placed.get(it.scope)!.push(it);
      for (const a of ancestors(it.scope)) need.add(a);
    }
    for (const s of need) {
      const p = parentOf(s);
      if (!children.has(p)) children.set(p, []);
      children.get(p)!.push(s);
    }
    // A leaf feeding many ops (a shared weight) would draw long edges across the whole graph,
    // which Graphviz lays out in time quadratic in their length: draw one copy per consumer.
    const out = new Map<string, string[]>();
    const seen = new Set<string>();
    for (const e of doc.edges) {
      const a = rep.get(e.src);
      const b = rep.get(e.dst);
      if (!a || !b || a === b) continue;
      const k = a + '\u0000' + b;
      if (seen.has(k)) continue;
      seen.add(k);
      if (!out.has(a)) out.set(a, []);
      out.get(a)!.push(b);
    }
    const nodes = byId(doc);
    const ghosted = new Set<string>();
    for (const [a, dsts] of out) {
      const it = items.get(a)!;
      if (dsts.length > 1 && it.type === 'node' && nodes.get(it.members[0])!.kind === 'leaf') ghosted.add(a);
    }
    const emit = (scope: string, indent: string) => {
      for (const it of placed.get(scope) || []) {
        const cls = 'dt-item dt-' + it.type;
        const shape = it.type === 'node' ? kindShape(nodes.get(it.members[0])!) : 'shape=box3d, style="filled"';
        const copies = ghosted.has(it.id) ? out.get(it.id)!.map((_, k) => it.id + '~' + k) : [it.id];
        for (const id of copies) {
          lines.push(`${indent}${q(id)} [id=${q(id)}, class=${q(cls)}, label=${q(it.label)}${shape ? ', ' + shape : ''}];`);
        }
      }
      for (const c of (children.get(scope) || []).sort(natural)) {
        const t = this.scopeInfo.get(c)?.type;
        lines.push(`${indent}subgraph ${q('cluster_' + c)} {`);
        lines.push(`${indent}  id=${q('c:' + c)}; class="dt-cluster"; label=${q(c + (t ? ' : ' + t : ''))}; style="rounded,dashed"; color="#b0b0b0"; fontcolor="#777777";`);
        emit(c, indent + '  ');
        lines.push(`${indent}}`);
      }
    };
    emit('', '');
    // Edges between ops weigh more than edges from leaves: the data path stays straight
    // instead of drifting sideways past every weight (a 250-step chain: 130 pt wide, not 8,600).
    for (const [a, dsts] of out) {
      const it = items.get(a)!;
      const leaf = it.type === 'node' && nodes.get(it.members[0])!.kind === 'leaf';
      const w = leaf ? '' : ' [weight=4]';
      dsts.forEach((b, k) => lines.push(`${q(ghosted.has(a) ? a + '~' + k : a)} -> ${q(b)}${w};`));
    }
    lines.push('}');
    return lines.join('\n');
  }
}

/** Drawn items that lie on a cycle of the drawn graph (empty for a DAG). */
export function cyclicItems(doc: GDoc, v: Visible): Item[] {
  const adj = new Map<string, Set<string>>();
  for (const e of doc.edges) {
    const a = v.rep.get(e.src), b = v.rep.get(e.dst);
    if (!a || !b || a === b) continue;
    if (!adj.has(a)) adj.set(a, new Set());
    adj.get(a)!.add(b);
  }
  // iterative DFS colouring; items reached again while on the stack are on a cycle
  const state = new Map<string, number>();
  const bad = new Set<string>();
  for (const start of v.items.keys()) {
    if (state.get(start)) continue;
    const stack: [string, Iterator<string>][] = [[start, (adj.get(start) || new Set<string>()).values()]];
    const path: string[] = [start];
    state.set(start, 1);
    while (stack.length) {
      const [, it] = stack[stack.length - 1];
      const nx = it.next();
      if (nx.done) {
        state.set(stack.pop()![0], 2);
        path.pop();
        continue;
      }
      const w = nx.value;
      const sw = state.get(w) || 0;
      if (sw === 1) {
        for (let i = path.lastIndexOf(w); i < path.length; i++) bad.add(path[i]);
      } else if (sw === 0) {
        state.set(w, 1);
        path.push(w);
        stack.push([w, (adj.get(w) || new Set<string>()).values()]);
      }
    }
  }
  return [...bad].map(id => v.items.get(id)!).filter(it => it && it.type !== 'node');
}

function kindShape(n: GNode): string {
  if (n.kind === 'leaf') return 'shape=box, style="filled", fillcolor="#eef3fb"';
  if (n.kind === 'output') return 'penwidth=2';
  return '';
}

function natural(a: string, b: string): number {
  return a.localeCompare(b, undefined, { numeric: true });
}

const cache = new WeakMap<GDoc, { n: number; m: Map<string, GNode> }>();

/** id -> node, cached per document and rebuilt when nodes were added. */
export function byId(doc: GDoc): Map<string, GNode> {
  let c = cache.get(doc);
  if (!c || c.n !== doc.nodes.length) {
    c = { n: doc.nodes.length, m: new Map(doc.nodes.map(n => [n.id, n])) };
    cache.set(doc, c);
  }
  return c.m;
}
