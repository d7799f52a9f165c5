// JupyterLab 4 plugin: palette commands and shortcuts that drive the focused debugger, a side
// panel mirroring the latest graph of the current notebook, and an explicit palette command that
// turns on saving widget state with notebooks (never switched on behind the user's back).
import { ILabShell, type JupyterFrontEnd, type JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { Widget } from '@lumino/widgets';
import { hub, type Mirror } from './hub';

const COMMANDS: [string, string, string, string][] = [
  ['step', 'dyntorch:step', 'Backward debugger: Step', 'Alt .'],
  ['step_out', 'dyntorch:step-out', 'Backward debugger: Step Out', 'Alt Shift .'],
  ['run', 'dyntorch:continue', 'Backward debugger: Continue', 'Alt /'],
  ['back', 'dyntorch:back', 'Backward debugger: Back', 'Alt ,'],
  ['reset', 'dyntorch:reset', 'Backward debugger: Reset', 'Alt Shift ,']
];

class GraphPanel extends Widget {
  private mirror: Mirror | null = null;
  private off: (() => void) | null = null;
  constructor(private within: () => ((el: HTMLElement) => boolean) | undefined) {
    super();
    this.id = 'dyntorch-graph-panel';
    this.addClass('dt-panel');
    this.title.caption = 'dyntorch graph';
    this.title.label = 'Graph';
    this.node.innerHTML = '<div class="dt-panel-empty">Run a cell that shows a dyntorch graph.</div>';
    this.off = hub().subscribe(() => this.refresh());
  }
  refresh(): void {
    const H = hub();
    if (!this.isVisible || !H.createMirror) return;
    const pick = () => H.latest(this.within());
    if (!pick()) return;
    if (!this.mirror) {
      this.node.innerHTML = '';
      this.mirror = H.createMirror(this.node, pick);
    } else this.mirror.update();
  }
  protected onAfterShow(): void {
    this.refresh();
  }
  dispose(): void {
    this.off?.();
    this.mirror?.dispose();
    super.dispose();
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'dyntorch-jupyter:plugin',
  description: 'dyntorch backward debugger commands, shortcuts and graph side panel',
  autoStart: true,
  requires: [],
  optional: [ICommandPalette, ILabShell, ISettingRegistry],
  activate(app: JupyterFrontEnd, palette: ICommandPalette | null, shell: ILabShell | null,
    settings: ISettingRegistry | null) {
    const current = () => {
      const w = shell ? shell.currentWidget : app.shell.currentWidget;
      return w && w.node ? (el: HTMLElement) => w.node.contains(el) : undefined;
    };
    for (const [cmd, id, label, keys] of COMMANDS) {
      app.commands.addCommand(id, {
        label,
        isEnabled: () => hub().target() !== null,
        execute: () => {
          if (!hub().command(cmd, current())) hub().command(cmd);
        }
      });
      app.commands.addKeyBinding({ command: id, keys: [keys], selector: 'body' });
      if (palette) palette.addItem({ command: id, category: 'dyntorch' });
    }
    const panel = new GraphPanel(current);
    app.shell.add(panel, 'right', { rank: 900 });
    if (shell) shell.currentChanged.connect(() => panel.refresh());
    app.commands.addCommand('dyntorch:show-graph-panel', {
      label: 'Show dyntorch graph panel',
      execute: () => app.shell.activateById(panel.id)
    });
    if (palette) palette.addItem({ command: 'dyntorch:show-graph-panel', category: 'dyntorch' });
    // Saved notebooks keep a static picture of every view (in its output), so no global
    // setting is changed here. Saving the widget state too is the user's choice: a command.
    if (settings) {
      app.commands.addCommand('dyntorch:save-widget-state', {
        label: 'Save widget state with notebooks (Jupyter Widgets setting)',
        execute: () =>
          settings.load('@jupyter-widgets/jupyterlab-manager:plugin').then(s => s.set('saveState', true))
      });
      if (palette) palette.addItem({ command: 'dyntorch:save-widget-state', category: 'dyntorch' });
    }
    (globalThis as unknown as { __dyntorchPlugin: unknown }).__dyntorchPlugin = { commands: COMMANDS.map(c => c[1]), panel: panel.id };
  }
};

export default plugin;
