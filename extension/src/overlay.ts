// Colours of the drawing: the overlay ramp, its legend, and label text that stays readable on
// whatever fill a node has (state colours, overlays, light and dark theme).
import { fmt, h } from './inspector';

/** Viridis-like ramp for the overlays (t in 0..1, low = dark blue, high = yellow). */
export function ramp(t: number): string {
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const x = Math.max(0, Math.min(1, t)) * (stops.length - 1);
  const i = Math.min(Math.floor(x), stops.length - 2);
  const f = x - i;
  const c = stops[i].map((a, k) => Math.round(a + (stops[i + 1][k] - a) * f));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/** Relative luminance (WCAG) of an sRGB colour. */
export function luminance(r: number, g: number, b: number): number {
  const lin = (c: number) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

/** Label text dark on light fills and light on dark ones, in either theme. */
export function contrastLabels(groups: Iterable<SVGGElement[]>): void {
  const darkPage = document.body && document.body.dataset.jpThemeLight === 'false';
  for (const gs of groups) {
    for (const g of gs) {
      const shape = g.querySelector<SVGElement>('path, polygon, ellipse');
      if (!shape) continue;
      const fill = getComputedStyle(shape).fill;
      const c = /rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?/.exec(fill || '');
      let lum = darkPage ? 0.1 : 0.9; // no fill: the page shows through
      if (c && (c[4] === undefined || Number(c[4]) > 0.3)) lum = luminance(+c[1], +c[2], +c[3]);
      const col = lum > 0.4 ? '#111111' : '#f4f4f4';
      for (const t of Array.from(g.querySelectorAll<SVGTextElement>('text'))) t.style.fill = col;
      g.setAttribute('data-text', lum > 0.4 ? 'dark' : 'light');
    }
  }
}

/** The legend of an overlay: state swatches, a colour bar with its scale, or how to get data. */
export function legend(mode: string, values: Map<string, number> | null, lo: number, hi: number,
  states: boolean): (HTMLElement | string)[] {
  if (mode === 'state') {
    if (!states) return [];
    return (['pending', 'ready', 'current', 'done'] as const).map(s =>
      h('span', { class: 'dt-key' }, h('i', { class: 'dt-sw dt-sw-' + s }), s));
  }
  if (!values || !values.size) {
    return [h('span', { class: 'dt-legend-note' }, mode === 'time'
      ? 'colour: time needs timings. Run forward inside "with dyntorch.viz.profile():" (the live view records them), then show the graph again.'
      : 'colour: gradient norm shows once backward has reached nodes (press Step).')];
  }
  const unit = mode === 'time' ? ' \u00b5s' : '';
  const title = mode === 'time' ? 'forward time (log scale)' : 'gradient norm (log scale)';
  const bar = h('span', { class: 'dt-colorbar' });
  bar.style.background = `linear-gradient(to right, ${[0, 0.25, 0.5, 0.75, 1].map(ramp).join(', ')})`;
  const lo10 = Number.isFinite(lo) ? lo : 0, hi10 = Number.isFinite(hi) ? hi : 0;
  return [h('span', { class: 'dt-legend-title' }, title),
    h('span', { class: 'dt-tick', 'data-value': String(10 ** lo10) }, fmt(10 ** lo10) + unit), bar,
    h('span', { class: 'dt-tick', 'data-value': String(10 ** hi10) }, fmt(10 ** hi10) + unit)];
}
