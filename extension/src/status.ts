// The status line under the drawing: the kernel's status text, how many boxes stand for how
// many nodes, and a short message that fades (a control that cannot act says why).
import type { Visible } from './fold';
import { h } from './inspector';
import type { GDoc } from './types';

export class StatusLine {
  el = h('div', { class: 'dt-status' });
  private flashText = '';
  private flashTimer: number | null = null;

  constructor(private read: () => { doc: GDoc | null; vis: Visible | null; mode: string }) {}

  /** Show ``text`` for six seconds. */
  flash(text: string): void {
    this.flashText = text;
    if (this.flashTimer !== null) clearTimeout(this.flashTimer);
    this.flashTimer = window.setTimeout(() => { this.flashText = ''; this.flashTimer = null; this.render(); }, 6000);
    this.render();
  }

  render(): void {
    const { doc, vis, mode } = this.read();
    const st = doc && doc.status;
    const n = doc ? doc.nodes.length : 0;
    const shown = vis ? vis.items.size : 0;
    let text = st && st.text ? st.text : doc ? `${n} nodes` : '';
    if (mode === 'stepper' && st && st.step === 0 && !st.done) text += ' \u2014 press Step to run the first node';
    this.el.replaceChildren(h('span', { class: 'dt-status-text', 'data-step': String(st ? st.step : 0), 'data-current': st && st.current ? st.current : '' }, text),
      h('span', { class: 'dt-muted' }, shown && shown !== n ? `  \u00b7 ${shown} drawn items for ${n} nodes (click a box to open it)` : ''),
      this.flashText ? h('span', { class: 'dt-flash' }, '  ' + this.flashText) : '');
  }
}
