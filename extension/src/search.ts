// The toolbar's search: which nodes a query matches (op, scope or label), and Enter stepping
// through the matches in forward order.
import type { GDoc, GNode } from './types';

/** Whether node ``n`` matches ``q`` (lower case, trimmed). */
export function nodeMatches(n: GNode, q: string): boolean {
  return n.op.toLowerCase().includes(q) || (n.scope || '').toLowerCase().includes(q) ||
    (n.label || '').toLowerCase().includes(q);
}

/** The scope and each scope it sits in, outermost first ("a", "a.b", "a.b.c"). */
export function scopePath(scope: string | undefined): string[] {
  return scope ? scope.split('.').map((_, i, p) => p.slice(0, i + 1).join('.')) : [];
}

export interface Found {
  node: GNode;
  at: number; // its place among the matches (0-based)
  count: number;
}

/** Enter on the same query goes to the next match, a new query to its first. */
export class SearchCursor {
  private query = '';
  private at = 0;

  /** The next match of ``q`` in ``doc``; null (the cursor unmoved) when nothing matches. */
  next(doc: GDoc, q: string): Found | null {
    const hits = doc.nodes.filter(x => nodeMatches(x, q)).sort((a, b) => a.seq - b.seq);
    if (!hits.length) return null;
    this.at = q === this.query ? (this.at + 1) % hits.length : 0;
    this.query = q;
    return { node: hits[this.at], at: this.at, count: hits.length };
  }
}
