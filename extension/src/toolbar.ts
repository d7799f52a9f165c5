// The toolbar above the drawing: debugger buttons (stepper views), search, overlay, Fit, Fold.
// It holds no state; each control calls the view through `ToolbarActions`.
import { h } from './inspector';

export interface ToolbarActions {
  command(cmd: string): void; // a debugger command for the kernel
  restyle(): void; // search text or overlay changed
  revealFirstMatch(): void;
  fit(): void;
  foldAll(): void;
  unfoldAll(): void;
  exportAs(format: 'html' | 'svg' | 'png'): void;
}

export interface Toolbar {
  bar: HTMLElement;
  search: HTMLInputElement;
  overlay: HTMLSelectElement;
}

const DEBUGGER: [string, string, string][] = [
  ['step', 'Step', 'Run the next node (Alt+.)'],
  ['step_out', 'Step out', 'Finish the current module scope and stop at the first node outside it (Alt+Shift+.)'],
  ['run', 'Continue', 'Run to the next breakpoint or the end (Alt+/)'],
  ['back', 'Back', 'Undo the last step (Alt+,)'],
  ['reset', 'Reset', 'Start backward again (Alt+Shift+,)'],
  ['break', 'Breakpoint', 'Toggle a breakpoint on the selected node']
];

export function toolbar(stepper: boolean, act: ToolbarActions): Toolbar {
  const bar = h('div', { class: 'dt-toolbar' });
  if (stepper) {
    for (const [cmd, label, title] of DEBUGGER) {
      const b = h('button', { class: 'dt-btn', 'data-cmd': cmd, title }, label);
      b.addEventListener('click', () => act.command(cmd));
      bar.append(b);
    }
    bar.append(h('span', { class: 'dt-sep' }));
  }
  const search = h('input', { class: 'dt-search', type: 'search', placeholder: 'search op or scope' }) as HTMLInputElement;
  search.addEventListener('input', () => act.restyle());
  search.addEventListener('keydown', ev => {
    if (ev.key === 'Enter') act.revealFirstMatch();
    ev.stopPropagation(); // keep notebook shortcuts out of the search box
  });
  const overlay = h('select', { class: 'dt-overlay', title: 'colour nodes by' }) as HTMLSelectElement;
  for (const [v, t] of [['state', 'colour: state'], ['grad', 'colour: gradient norm'], ['time', 'colour: time'],
    ['nonfinite', 'colour: NaN/Inf'], ['dead', 'colour: dead (output zeros)']]) {
    overlay.append(h('option', { value: v }, t));
  }
  overlay.addEventListener('change', () => act.restyle());
  const button = (cmd: string, label: string, title: string, fn: () => void) => {
    const b = h('button', { class: 'dt-btn', 'data-cmd': cmd, title }, label);
    b.addEventListener('click', fn);
    return b;
  };
  bar.append(search, overlay,
    button('fit', 'Fit', 'The whole graph in view while labels stay readable (wheel: zoom, drag: pan)', () => act.fit()),
    button('fold', 'Fold', 'Fold module scopes and runs of repeated blocks again', () => act.foldAll()),
    button('unfold', 'Unfold', 'Open every scope', () => act.unfoldAll()),
    h('span', { class: 'dt-sep' }),
    ...(['html', 'svg', 'png'] as const).map(f => button('export-' + f, f.toUpperCase(),
      `Save this graph as ${f === 'html' ? 'a standalone interactive page' : 'a picture'} (.${f}) beside the notebook`,
      () => act.exportAs(f))));
  return { bar, search, overlay };
}
