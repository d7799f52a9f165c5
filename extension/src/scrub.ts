// A Recorder's kept training steps: the slider that scrubs the colours across them, and each
// node's history charted in the inspector.
import { lossCurve } from './charts';
import { h } from './inspector';
import type { GNode, History, RecorderInfo } from './types';

export class Scrub {
  el = h('div', { class: 'dt-scrub' });
  info: RecorderInfo | null = null;
  sent = 0; // steps asked for by the slider (tests read it)
  private slider: HTMLInputElement | null = null;
  private timer: number | null = null;
  private histories = new Map<string, History>(); // recorder node key -> its history

  constructor(private send: (msg: Record<string, unknown>) => void) {}

  /** The Recorder's kept steps and the one shown; the histories asked for so far are dropped. */
  set(info: RecorderInfo): void {
    this.info = info;
    if (!this.slider) {
      const s = h('input', { type: 'range', class: 'dt-step-slider', min: '0', step: '1', title: 'training step (kept by the Recorder)' }) as HTMLInputElement;
      const label = h('span', { class: 'dt-step-label' });
      s.addEventListener('input', () => {
        const steps = this.info ? this.info.steps : [];
        const k = steps[Number(s.value)];
        label.textContent = `training step ${k}`;
        // one request per frame while dragging: the kernel answers with a diff of colours
        if (this.timer !== null) clearTimeout(this.timer);
        this.timer = window.setTimeout(() => {
          this.timer = null;
          this.sent++;
          this.send({ type: 'cmd', cmd: 'rec_step', step: k });
        }, 16);
      });
      s.addEventListener('keydown', ev => ev.stopPropagation());
      this.slider = s;
      this.el.append(h('span', { class: 'dt-muted' }, 'step '), s, label);
    }
    this.slider.max = String(Math.max(0, info.steps.length - 1));
    this.slider.value = String(Math.max(0, info.steps.indexOf(info.step)));
    (this.el.lastChild as HTMLElement).textContent = `training step ${info.step} (${info.steps.length} kept: ${info.steps[0]}\u2013${info.steps[info.steps.length - 1]})`;
    this.histories.clear();
  }

  /** A node's history from the kernel. */
  setHistory(hist: History): void {
    this.histories.set(hist.key, hist);
  }

  /** The inspector's "across training steps" section for node ``n`` (asks the kernel for its
   *  history the first time). */
  section(n: GNode & { key: string }): HTMLElement {
    const hist = this.histories.get(n.key);
    const sec = h('div', { class: 'dt-sec dt-history', 'data-key': n.key }, h('div', { class: 'dt-sec-title' }, 'across training steps'));
    if (!hist) {
      sec.append(h('div', { class: 'dt-muted' }, 'loading history\u2026'));
      this.send({ type: 'cmd', cmd: 'history', key: n.key });
    } else {
      for (const [stat, vals] of Object.entries(hist.series)) {
        const ys = vals.map(v => (v === null ? NaN : v));
        const c = lossCurve(ys, stat);
        c.setAttribute('data-stat', stat);
        sec.append(c);
      }
      sec.setAttribute('data-points', String(hist.steps.length));
    }
    return sec;
  }
}
