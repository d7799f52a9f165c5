// The toolbar's export: the kernel writes SVG and HTML; PNG is the drawing as shown (colours,
// open folds), rasterised here, so the kernel needs no plotting library.
import type { Rect } from './panzoom';

const PAINT = ['fill', 'stroke', 'stroke-width', 'stroke-dasharray', 'font-family', 'font-size', 'font-weight', 'opacity'];

/** The drawn SVG as a PNG (base64, no prefix) at twice its size: computed paint is inlined,
 *  since a standalone SVG image sees none of the page's CSS. */
export async function rasterise(svg: SVGSVGElement, full: Rect): Promise<string> {
  const clone = svg.cloneNode(true) as SVGSVGElement;
  const src = svg.querySelectorAll<SVGElement>('*');
  const dst = clone.querySelectorAll<SVGElement>('*');
  src.forEach((el, k) => {
    const cs = getComputedStyle(el);
    const d = dst[k];
    for (const p of PAINT) d.style.setProperty(p, cs.getPropertyValue(p));
  });
  const scale = 2;
  const w = Math.ceil(full.w), hgt = Math.ceil(full.h);
  clone.setAttribute('viewBox', `${full.x} ${full.y} ${full.w} ${full.h}`);
  clone.setAttribute('width', String(w));
  clone.setAttribute('height', String(hgt));
  clone.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
  const text = new XMLSerializer().serializeToString(clone);
  const url = URL.createObjectURL(new Blob([text], { type: 'image/svg+xml' }));
  try {
    const img = new Image();
    await new Promise<void>((ok, fail) => { img.onload = () => ok(); img.onerror = () => fail(new Error('the drawing could not be rasterised')); img.src = url; });
    const c = document.createElement('canvas');
    c.width = w * scale;
    c.height = hgt * scale;
    const g = c.getContext('2d')!;
    g.fillStyle = '#ffffff';
    g.fillRect(0, 0, c.width, c.height);
    g.drawImage(img, 0, 0, c.width, c.height);
    return c.toDataURL('image/png').split(',')[1];
  } finally {
    URL.revokeObjectURL(url);
  }
}

/** Ask the kernel to write the drawing as ``fmt`` beside the notebook (PNG: rasterised here). */
export function exportDrawing(fmt: string, svg: SVGSVGElement | null, full: Rect, send: (msg: Record<string, unknown>) => void,
  flash: (text: string) => void): void {
  flash(`Saving ${fmt.toUpperCase()}\u2026`);
  if (fmt === 'png' && svg) {
    rasterise(svg, full).then(png => send({ type: 'export', format: fmt, png }), e => flash('Export failed: ' + String(e)));
  } else send({ type: 'export', format: fmt });
}
