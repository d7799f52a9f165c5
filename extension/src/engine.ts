// One Graphviz worker per page, shared by every view (widget instances, the side panel).
// The worker's source (with the WebAssembly inlined) is fetched once from whoever can give it
// (the kernel, through a widget) and kept in a page-global singleton.

export interface LayoutResult {
  svg: string;
  ms: number;
}

interface Engine {
  layout(dot: string): Promise<LayoutResult>;
}

interface Slot {
  engine: Promise<Engine> | null;
  loads: number; // workers started on this page (tests check it stays 1)
}

const G = globalThis as any;
const slot: Slot = G.__dyntorchLayout || (G.__dyntorchLayout = { engine: null, loads: 0 });

function start(src: string): Engine {
  slot.loads++;
  const url = URL.createObjectURL(new Blob([src], { type: 'text/javascript' }));
  const worker = new Worker(url);
  let next = 0;
  const waiting = new Map<number, { ok: (r: LayoutResult) => void; fail: (e: Error) => void }>();
  worker.onmessage = (ev: MessageEvent) => {
    const { id, svg, error, ms } = ev.data;
    const w = waiting.get(id);
    if (!w) return;
    waiting.delete(id);
    if (error) w.fail(new Error(error));
    else w.ok({ svg, ms });
  };
  return {
    layout(dot: string) {
      const id = next++;
      return new Promise<LayoutResult>((ok, fail) => {
        waiting.set(id, { ok, fail });
        worker.postMessage({ id, dot });
      });
    }
  };
}

/** The page's layout engine, loading it with `fetchSource` the first time only. */
export function getEngine(fetchSource: () => Promise<string>): Promise<Engine> {
  if (!slot.engine) {
    slot.engine = fetchSource().then(start);
    slot.engine.catch(() => {
      slot.engine = null; // let a later view try again (e.g. once a kernel is back)
    });
  }
  return slot.engine;
}

/** The engine if some view already loaded it (the side panel cannot load it itself). */
export function loadedEngine(): Promise<Engine> | null {
  return slot.engine;
}
