// The first-paint rule: which window on a new drawing the view opens on, and whether a layout
// is small enough to show whole at a readable size (the automatic folding asks).
import type { PanZoom } from './panzoom';

// screen pixels per layout point below which labels (10 pt) would be under 9 px: Fit never
// shrinks further; bigger drawings are panned (drag) instead
export const READABLE = 1.0;

type Extent = { x0: number; y0: number; x1: number; y1: number };

/** Whether a laid-out drawing fits the canvas at the readable scale (1 px per point). */
export function fitsReadable(svgText: string, canvas: HTMLElement): boolean {
  const m = /viewBox="([-\d.]+) ([-\d.]+) ([\d.]+) ([\d.]+)"/.exec(svgText);
  const r = canvas.getBoundingClientRect();
  if (!m || !r.width || !r.height) return true;
  return Number(m[3]) * READABLE <= r.width && Number(m[4]) * READABLE <= r.height;
}

/** Every first paint: the whole graph, centred, when it fits with labels at least 9 px;
 *  else a readable window that fills the canvas from the top of the drawing (its inputs and
 *  the folded repeated part), scrolled just enough to show the first "× N" box, or on the
 *  current node ``curId`` (stepper). Never blank canvas while boxes are out of view, and no
 *  box cut by the top edge. */
export function fit(pz: PanZoom, canvas: HTMLElement, els: Map<string, SVGGElement[]>, curId: string | null): void {
  pz.userMoved = false;
  const r = canvas.getBoundingClientRect();
  const f = pz.full;
  const s = r.width && r.height ? Math.min(r.width / f.w, r.height / f.h) : 1;
  if (s > 1.2 && r.width && r.height) {
    // small graphs: natural size (about 12 px text), centred, rather than blown up
    const w = r.width / 1.2, h = r.height / 1.2;
    pz.view = { x: f.x + (f.w - w) / 2, y: f.y + (f.h - h) / 2, w, h };
    pz.apply();
    return;
  }
  if (s >= READABLE) {
    pz.view = { ...f };
    pz.apply();
    return;
  }
  const k = READABLE; // too big to fit readably: a readable window on the drawing
  const w = r.width / k, h = r.height / k;
  pz.view = { x: f.x, y: f.y, w, h };
  pz.apply();
  const boxes = boxesInView(pz, els); // drawn boxes in layout units
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
  pz.view = { x, y, w, h };
  pz.apply();
}

/** The drawn boxes' extents in layout units for the current view (one layout read). */
export function boxesInView(pz: PanZoom, els: Map<string, SVGGElement[]>): Map<string, Extent> {
  const out = new Map<string, Extent>();
  if (!pz.svg) return out;
  const sr = pz.svg.getBoundingClientRect();
  const v = pz.view;
  if (!sr.width || !sr.height) return out;
  // preserveAspectRatio "xMidYMid meet": one scale, the viewBox centred in the element
  const sc = Math.min(sr.width / v.w, sr.height / v.h);
  const ox = sr.left + (sr.width - v.w * sc) / 2, oy = sr.top + (sr.height - v.h * sc) / 2;
  for (const [id, gs] of els) {
    const b = gs[0].getBoundingClientRect();
    out.set(id, { x0: v.x + (b.left - ox) / sc, y0: v.y + (b.top - oy) / sc,
      x1: v.x + (b.right - ox) / sc, y1: v.y + (b.bottom - oy) / sc });
  }
  return out;
}

/** Output areas may be laid out (or resized) after the first drawing: ``refit`` then (it
 *  leaves alone a view the user has moved). */
export function refitOnResize(canvas: HTMLElement, refit: () => void, cleanups: (() => void)[]): void {
  if (typeof ResizeObserver === 'undefined') return;
  let last = '';
  const ro = new ResizeObserver(() => {
    const r = canvas.getBoundingClientRect();
    const k = `${Math.round(r.width)}x${Math.round(r.height)}`;
    if (k === last || !r.width || !r.height) return;
    last = k;
    refit();
  });
  ro.observe(canvas);
  cleanups.push(() => ro.disconnect());
}
