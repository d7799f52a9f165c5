// The graph state the view draws: the document the kernel sent and the diffs that update it.
// No drawing here; the view asks what changed (structure, or only styles).
import { byId } from './fold';
import type { GDiff, GDoc } from './types';

export interface Change {
  /** nodes, edges or scopes changed: the drawing must be laid out again */
  struct: boolean;
  /** the document belongs to the graph drawn before (a grown or restyled one) */
  sameGraph: boolean;
}

export class GraphModel {
  doc: GDoc | null = null;
  breakpoints = new Set<string>();

  /** Take a whole document. */
  setDoc(doc: GDoc): Change {
    const sameGraph = !!this.doc && this.doc.graph_id === doc.graph_id;
    const nodesBefore = this.doc ? this.doc.nodes.length : -1;
    this.doc = doc;
    this.breakpoints = new Set(doc.breakpoints || []);
    return { struct: !sameGraph || nodesBefore !== doc.nodes.length, sameGraph };
  }

  /** Apply a diff; null when it does not follow the document (ask for the full one). */
  applyDiff(d: GDiff): Change | null {
    const doc = this.doc;
    if (!doc || d.graph_id !== doc.graph_id || d.rev !== doc.rev + 1) return null;
    let struct = false;
    doc.rev = d.rev;
    if (d.add_nodes && d.add_nodes.length) {
      doc.nodes.push(...d.add_nodes);
      struct = true;
    }
    if (d.add_edges && d.add_edges.length) {
      doc.edges.push(...d.add_edges);
      struct = true;
    }
    if (d.remove_nodes && d.remove_nodes.length) {
      const gone = new Set(d.remove_nodes);
      doc.nodes = doc.nodes.filter(n => !gone.has(n.id));
      doc.edges = doc.edges.filter(e => !gone.has(e.src) && !gone.has(e.dst));
      struct = true;
    }
    if (d.remove_edges && d.remove_edges.length) {
      const key = (e: { src: string; dst: string; slot: number }) => e.src + '|' + e.dst + '|' + e.slot;
      const gone = new Set(d.remove_edges.map(key));
      doc.edges = doc.edges.filter(e => !gone.has(key(e)));
      struct = true;
    }
    if (d.scopes) {
      doc.scopes = d.scopes;
      struct = true;
    }
    if (d.update) {
      const m = byId(doc);
      for (const u of d.update) {
        const n = m.get(u.id);
        if (n) Object.assign(n, u);
      }
    }
    if (d.status !== undefined) doc.status = d.status;
    if (d.breakpoints) {
      doc.breakpoints = d.breakpoints;
      this.breakpoints = new Set(d.breakpoints);
    }
    return { struct, sameGraph: true };
  }
}
