// The drawing's transform: the SVG viewBox that the wheel zooms and a drag pans, and bringing
// one drawn item into view. Layout units throughout (Graphviz points).

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export class PanZoom {
  view: Rect = { x: 0, y: 0, w: 100, h: 100 }; // the window on the drawing
  full: Rect = { x: 0, y: 0, w: 100, h: 100 }; // the whole drawing
  svg: SVGSVGElement | null = null;
  dragged = false; // the pointer moved since it went down (its click is not a click)
  userMoved = false; // the user panned or zoomed since the last fit

  constructor(private canvas: HTMLElement, cleanups: (() => void)[]) {
    let start: { x: number; y: number; vx: number; vy: number } | null = null;
    canvas.addEventListener('wheel', ev => {
      if (!this.svg) return;
      ev.preventDefault();
      const r = canvas.getBoundingClientRect();
      const fx = (ev.clientX - r.left) / r.width, fy = (ev.clientY - r.top) / r.height;
      const k = Math.exp(ev.deltaY * 0.0015);
      const v = this.view;
      const nw = v.w * k, nh = v.h * k;
      this.view = { x: v.x + (v.w - nw) * fx, y: v.y + (v.h - nh) * fy, w: nw, h: nh };
      this.userMoved = true;
      this.apply();
    }, { passive: false });
    canvas.addEventListener('pointerdown', ev => {
      start = { x: ev.clientX, y: ev.clientY, vx: this.view.x, vy: this.view.y };
      this.dragged = false;
    });
    const move = (ev: PointerEvent) => {
      if (!start || !this.svg) return;
      const dx = ev.clientX - start.x, dy = ev.clientY - start.y;
      if (!this.dragged && Math.hypot(dx, dy) < 4) return;
      this.dragged = true;
      this.userMoved = true;
      const r = canvas.getBoundingClientRect();
      const s = Math.max(this.view.w / r.width, this.view.h / r.height);
      this.view.x = start.vx - dx * s;
      this.view.y = start.vy - dy * s;
      this.apply();
    };
    const up = () => {
      start = null;
      setTimeout(() => (this.dragged = false), 0);
    };
    window.addEventListener('pointermove', move);
    window.addEventListener('pointerup', up);
    cleanups.push(() => {
      window.removeEventListener('pointermove', move);
      window.removeEventListener('pointerup', up);
    });
  }

  /** Show ``view`` in the drawing. */
  apply(): void {
    if (!this.svg) return;
    const v = this.view;
    this.svg.setAttribute('viewBox', `${v.x} ${v.y} ${v.w} ${v.h}`);
  }

  /** Pan so that the drawn group ``g`` is in view (no-op when it already is). */
  reveal(g: SVGGElement | undefined): void {
    if (!g || !this.svg) return;
    const gr = g.getBoundingClientRect();
    const cr = this.canvas.getBoundingClientRect();
    if (!cr.width || (gr.left >= cr.left && gr.right <= cr.right && gr.top >= cr.top && gr.bottom <= cr.bottom)) return;
    const s = Math.max(this.view.w / cr.width, this.view.h / cr.height);
    this.view.x += (gr.left + gr.width / 2 - (cr.left + cr.width / 2)) * s;
    this.view.y += (gr.top + gr.height / 2 - (cr.top + cr.height / 2)) * s;
    // centred, but never past the drawing's edge (no blank band while boxes are out of view)
    const f = this.full, v = this.view;
    if (f.w > v.w) v.x = Math.min(Math.max(v.x, f.x), f.x + f.w - v.w);
    if (f.h > v.h) v.y = Math.min(Math.max(v.y, f.y), f.y + f.h - v.h);
    this.apply();
  }
}
