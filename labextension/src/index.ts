/**
 * JupyterLab side of mlpipe-jupyter: the designer canvas widget, the "Pipeline Designer" panel and the
 * runs sidebar.
 */
import { IJupyterWidgetRegistry, WidgetModel, unpack_models } from '@jupyter-widgets/base';
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { LabIcon } from '@jupyterlab/ui-components';
import { Panel, Widget } from '@lumino/widgets';

import designerSvg from '../style/icons/designer.svg';
import { DesignerCanvasModel, DesignerCanvasView, MODULE_NAME, MODULE_VERSION } from './canvas';
import { RunsSidebar, runsIcon } from './sidebar';
import { cellSyncPlugin } from './cellsync';

/** The designer's icon: on its Launcher tile, in the command palette and on the panel's tab. */
export const designerIcon = new LabIcon({ name: 'mlpipe:designer', svgstr: designerSvg });


const OPEN_COMMAND = 'mlpipe:open-designer';
const RUNS_COMMAND = 'mlpipe:open-runs';
let app: JupyterFrontEnd | null = null;

/**
 * Opens its `child` widget (the kernel's designer) in a main-area panel when `open_request` grows.
 * It has no view of its own: the kernel creates it and asks for the panel.
 */
export class DesignerPanelModel extends WidgetModel {
  static serializers = { ...WidgetModel.serializers, child: { deserialize: unpack_models } };
  private panel: Panel | null = null;

  defaults(): any {
    return {
      ...super.defaults(),
      _model_name: 'DesignerPanelModel',
      _model_module: MODULE_NAME,
      _model_module_version: MODULE_VERSION,
      _view_module: MODULE_NAME,
      _view_module_version: MODULE_VERSION,
      child: null,
      title: 'Pipeline Designer',
      open_request: 0
    };
  }

  initialize(attributes: any, options: any): void {
    super.initialize(attributes, options);
    this.on('change:open_request', () => this.open(), this);
    if (this.get('open_request') > 0) {
      window.setTimeout(() => this.open(), 0);
    }
  }

  private async open(): Promise<void> {
    if (!app) {
      return;
    }
    if (this.panel && !this.panel.isDisposed) {
      app.shell.activateById(this.panel.id);
      return;
    }
    const child = this.get('child');
    if (!child) {
      return;
    }
    const view = await this.widget_manager.create_view(child, {});
    const panel = new Panel();
    panel.id = `mlpipe-designer-${this.model_id}`;
    panel.title.label = this.get('title');
    panel.title.icon = designerIcon;
    panel.title.closable = true;
    panel.addClass('mlpipe-designer-panel');
    panel.addWidget((view as any).luminoWidget as Widget);
    panel.disposed.connect(() => {
      view.remove();
      this.panel = null;
    });
    this.panel = panel;
    app.shell.add(panel, 'main', { mode: 'split-right' });
    app.shell.activateById(panel.id);
  }
}

/** The last notebook (or console) the user worked in: the panel shows its kernel's designer. */
function kernelOwner(shell: JupyterFrontEnd.IShell, last: Widget | null): any {
  const current: any = shell.currentWidget;
  if (current && current.sessionContext) {
    return current;
  }
  return last;
}

const widgetsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'mlpipe-jupyter:widgets',
  requires: [IJupyterWidgetRegistry],
  autoStart: true,
  activate: (lab: JupyterFrontEnd, registry: IJupyterWidgetRegistry) => {
    app = lab;
    registry.registerWidget({
      name: MODULE_NAME,
      version: MODULE_VERSION,
      exports: { DesignerCanvasModel, DesignerCanvasView, DesignerPanelModel }
    });
  }
};

const panelPlugin: JupyterFrontEndPlugin<void> = {
  id: 'mlpipe-jupyter:designer-panel',
  optional: [ICommandPalette, ILauncher, ILabShell],
  autoStart: true,
  activate: (
    lab: JupyterFrontEnd,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    labShell: ILabShell | null
  ) => {
    let last: Widget | null = null;
    if (labShell) {
      labShell.currentChanged.connect((_s, change) => {
        const w: any = change.newValue;
        if (w && w.sessionContext) {
          last = w;
        }
      });
    }
    lab.commands.addCommand(OPEN_COMMAND, {
      label: 'Pipeline Designer',
      caption: "Open the designer of the notebook's pipeline in a panel",
      icon: designerIcon,
      execute: async () => {
        const owner = kernelOwner(lab.shell, last);
        const kernel = owner?.sessionContext?.session?.kernel;
        if (!kernel) {
          Notification.warning('Open a notebook first: the Pipeline Designer shows the pipeline of its kernel.', {
            autoClose: 5000
          });
          return;
        }
        const future = kernel.requestExecute({
          code:
            'from mlpipe_jupyter.notebook.designer import open_panel as _mlpipe_open_panel\n' +
            '_mlpipe_open_panel()\ndel _mlpipe_open_panel',
          silent: true,
          store_history: false
        });
        const reply: any = await future.done;
        if (reply?.content?.status === 'error') {
          Notification.error(`Pipeline Designer: ${reply.content.ename}: ${reply.content.evalue}`, {
            autoClose: 8000
          });
        }
      }
    });
    if (palette) {
      palette.addItem({ command: OPEN_COMMAND, category: 'Pipelines' });
    }
    if (launcher) {
      launcher.add({ command: OPEN_COMMAND, category: 'Other', rank: 1 });
    }
  }
};

/** The runs sidebar in the left area, and a command that shows it. */
const runsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'mlpipe-jupyter:runs-sidebar',
  optional: [ICommandPalette],
  autoStart: true,
  activate: (lab: JupyterFrontEnd, palette: ICommandPalette | null) => {
    const sidebar = new RunsSidebar(lab.serviceManager.serverSettings);
    sidebar.id = 'mlpipe-runs-sidebar';
    sidebar.title.icon = runsIcon;
    sidebar.title.caption = 'Pipeline runs';
    lab.shell.add(sidebar, 'left', { rank: 600 });
    lab.commands.addCommand(RUNS_COMMAND, {
      label: 'Pipeline Runs',
      caption: 'Show the experiments, runs and published pipelines of the workspace',
      execute: () => lab.shell.activateById(sidebar.id)
    });
    if (palette) {
      palette.addItem({ command: RUNS_COMMAND, category: 'Pipelines' });
    }
  }
};

export default [widgetsPlugin, panelPlugin, runsPlugin, cellSyncPlugin];
