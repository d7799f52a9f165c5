// What the view asks of folding: the document folding sees (long repeated runs as time steps,
// ``repeat.ts``), the automatic folding of a new graph, and the user's folds and opens, each of
// which ends the automatic folding.
import type { LayoutResult } from './engine';
import { Folding, type Visible } from './fold';
import { withSteps } from './repeat';
import { scopePath } from './search';
import type { GDoc, GNode } from './types';

export class FoldGlue {
  folding = new Folding();
  // fold deeper until the drawing fits at a readable size: on the first paint, and while a live
  // graph grows, until the user folds or opens something by hand
  autoFolding = true;
  revealAfter: string | null = null; // a drawn item or cluster to bring into view after the next layout
  private lastFold: GDoc | null = null;

  /** The document as folding sees it; the folding's scope index follows it. */
  foldDoc(doc: GDoc | null): GDoc | null {
    if (!doc) return null;
    const fd = withSteps(doc);
    if (fd !== this.lastFold) {
      this.lastFold = fd;
      this.folding.index(fd);
    }
    return fd;
  }

  /** A new graph: fold it to about ``limit`` drawn items and fold automatically again. */
  newGraph(doc: GDoc, limit: number): void {
    this.folding.autoFold(this.foldDoc(doc)!, limit);
    this.autoFolding = true;
  }

  /** Fold everything (the toolbar); false when there is nothing to fold. */
  foldAll(doc: GDoc | null): boolean {
    const fd = this.foldDoc(doc);
    if (!fd) return false;
    this.autoFolding = false;
    this.folding.autoFold(fd, 0);
    return true;
  }

  /** Open every scope and repeat group (the toolbar). */
  unfoldAll(): void {
    this.autoFolding = false;
    this.folding.folded.clear();
    for (const sc of this.folding.scopeInfo.keys()) this.folding.openGroups.add(sc);
  }

  /** Fold ``scope`` (the inspector's Fold button). */
  fold(scope: string): void {
    this.autoFolding = false;
    this.folding.fold(scope);
  }

  /** Open what hides node ``n`` (search found it); true when the drawing changes. */
  openTo(n: GNode): boolean {
    let changed = false;
    for (const a of scopePath(n.scope)) {
      if (this.folding.folded.delete(a)) changed = true;
      if (this.folding.openMember(a)) changed = true;
    }
    return changed;
  }

  /** A click on a folded box ("s:" scope, "r:" repeat) opens it, on an open one folds it. */
  toggle(id: string): void {
    this.folding.toggle(id);
    this.autoFolding = false;
    // after the layout, show what opened: a group's first block, or the scope's cluster
    this.revealAfter = id.startsWith('r:') ? 's:' + id.slice(2) : 'c:' + id.slice(2);
  }

  /** Lay out the folded document ``fd``. While folding automatically (``auto``: not the side
   *  panel's mirror), fold repeated blocks and module scopes deeper, up to six times, while
   *  the drawing does not ``fit`` at a readable size (never shrinking labels below 9 px). */
  async layout(fd: GDoc, engine: () => Promise<{ layout(dot: string): Promise<LayoutResult> }> | null,
    fits: (svg: string) => boolean, auto: boolean): Promise<{ res: LayoutResult; vis: Visible }> {
    let vis = this.folding.visible(fd);
    const eng = engine();
    if (!eng) throw new Error('no layout engine loaded on this page yet');
    let res = await (await eng).layout(vis.dot);
    let tries = 0;
    while (this.autoFolding && auto && !fits(res.svg) && tries++ < 6 && this.folding.foldDeeper(fd)) {
      vis = this.folding.visible(fd);
      res = await (await eng).layout(vis.dot);
    }
    return { res, vis };
  }
}
