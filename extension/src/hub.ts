// A page-global registry of views. The JupyterLab plugin (a separate bundle) finds the focused
// debugger and the latest graph here; the widget works without the plugin.

export interface HubView {
  id: string;
  el: HTMLElement;
  host: { mode: string };
  lastActive: number;
  doc: unknown;
  command(cmd: string): void;
  info(): Record<string, unknown>;
}

export interface Mirror {
  dispose(): void;
  update(): void;
}

export interface Hub {
  views: Set<HubView>;
  focused: HubView | null;
  listeners: Set<(v: HubView | null) => void>;
  register(v: HubView): void;
  unregister(v: HubView): void;
  focus(v: HubView): void;
  changed(v: HubView): void;
  subscribe(fn: (v: HubView | null) => void): () => void;
  /** The debugger that keyboard commands act on: the focused one, else the latest stepper. */
  target(within?: (el: HTMLElement) => boolean): HubView | null;
  /** The most recently changed view (optionally only those inside some element). */
  latest(within?: (el: HTMLElement) => boolean): HubView | null;
  command(cmd: string, within?: (el: HTMLElement) => boolean): boolean;
  createMirror?: (el: HTMLElement, pick: () => HubView | null) => Mirror;
}

export function hub(): Hub {
  const G = globalThis as any;
  if (G.__dyntorchHub) return G.__dyntorchHub as Hub;
  const order = new Map<HubView, number>();
  let tick = 0;
  const live = (v: HubView) => v.el.isConnected;
  const H: Hub = {
    views: new Set(),
    focused: null,
    listeners: new Set(),
    register(v) {
      if (v.host.mode === 'mirror') return;
      H.views.add(v);
      order.set(v, ++tick);
      if (v.host.mode === 'stepper') H.focused = v;
      H.listeners.forEach(f => f(v));
    },
    unregister(v) {
      H.views.delete(v);
      order.delete(v);
      if (H.focused === v) H.focused = null;
      H.listeners.forEach(f => f(null));
    },
    focus(v) {
      if (!H.views.has(v)) return;
      if (v.host.mode === 'stepper') H.focused = v;
    },
    changed(v) {
      if (!H.views.has(v)) return;
      order.set(v, ++tick);
      H.listeners.forEach(f => f(v));
    },
    subscribe(fn) {
      H.listeners.add(fn);
      return () => H.listeners.delete(fn);
    },
    target(within) {
      const ok = (v: HubView) => live(v) && v.host.mode === 'stepper' && (!within || within(v.el));
      if (H.focused && ok(H.focused)) return H.focused;
      let best: HubView | null = null;
      for (const v of H.views) if (ok(v) && (!best || v.lastActive > best.lastActive)) best = v;
      return best;
    },
    latest(within) {
      let best: HubView | null = null;
      for (const v of H.views) {
        if (!live(v) || (within && !within(v.el)) || !v.doc) continue;
        if (!best || order.get(v)! > order.get(best)!) best = v;
      }
      return best;
    },
    command(cmd, within) {
      const v = H.target(within);
      if (!v) return false;
      v.command(cmd);
      return true;
    }
  };
  G.__dyntorchHub = H;
  return H;
}
