// Web Worker: Graphviz (WebAssembly) lays graphs out off the page's main thread.
import { Graphviz } from '@hpcc-js/wasm-graphviz';

let gv: Promise<Graphviz> | null = null;

self.onmessage = async (ev: MessageEvent) => {
  const { id, dot } = ev.data as { id: number; dot: string };
  try {
    if (!gv) gv = Graphviz.load();
    const g = await gv;
    const t0 = performance.now();
    const svg = g.dot(dot, 'svg');
    (self as any).postMessage({ id, svg, ms: performance.now() - t0 });
  } catch (e) {
    (self as any).postMessage({ id, error: String(e) });
  }
};
