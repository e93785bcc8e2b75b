/**
 * Cell sync: the kernel's designer edited a step recorded from a `%%step` cell, and asks for that
 * cell's first line to say the same. This model has no view; the kernel creates it with the notebook's
 * designer and sends `{event: 'rewrite', id, cells: [{match, line}]}`. Each code cell whose first line
 * is `%%step <match> ...`, in the notebook that owns the kernel, gets `line` as its first line (the rest
 * of the cell is left as it is, and the notebook becomes dirty as after a user's edit); the answer
 * `{event: 'rewritten', id, done, missing}` tells the kernel which names were found.
 */
import { IJupyterWidgetRegistry, WidgetModel } from '@jupyter-widgets/base';
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';

import { MODULE_VERSION } from './canvas';

export const CELLSYNC_MODULE = 'mlpipe-jupyter-cellsync';
let app: JupyterFrontEnd | null = null;

/** The step name a `%%step` first line records, or null: the first word after `%%step`, quotes removed. */
export function stepNameOf(firstLine: string): string | null {
  const m = /^%%step[ \t]+(.*)$/.exec(firstLine);
  if (!m) {
    return null;
  }
  const rest = m[1];
  const quote = rest[0];
  if (quote === "'" || quote === '"') {
    const end = rest.indexOf(quote, 1);
    return end > 0 ? rest.slice(1, end) : null;
  }
  const word = /^\S+/.exec(rest);
  return word ? word[0] : null;
}

/** Put `line` in as the first line of every code cell of `model` recording step `match`; how many. */
function rewriteCells(model: any, match: string, line: string): number {
  let count = 0;
  const cells: any = model.cells;
  for (let i = 0; i < cells.length; i++) {
    const cell: any = cells.get(i);
    if (cell.type !== 'code') {
      continue;
    }
    const source: string = cell.sharedModel.getSource();
    const end = source.indexOf('\n') < 0 ? source.length : source.indexOf('\n');
    if (stepNameOf(source.slice(0, end)) !== match) {
      continue;
    }
    const runFlag = /(^|\s)--run(\s|$)/;
    const wanted = runFlag.test(source.slice(0, end)) && !runFlag.test(line) ? `${line} --run` : line;
    if (source.slice(0, end) !== wanted) {
      cell.sharedModel.updateSource(0, end, wanted); // the kernel does not know --run: the cell keeps it
    }
    count++;
  }
  if (count) {
    model.dirty = true;
  }
  return count;
}

export class CellSyncModel extends WidgetModel {
  defaults(): any {
    return {
      ...super.defaults(),
      _model_name: 'CellSyncModel',
      _model_module: CELLSYNC_MODULE,
      _model_module_version: MODULE_VERSION,
      _view_module: CELLSYNC_MODULE,
      _view_module_version: MODULE_VERSION
    };
  }

  initialize(attributes: any, options: any): void {
    super.initialize(attributes, options);
    this.on('msg:custom', (content: any) => this.onMessage(content), this);
    this.send({ event: 'hello' }, {});
  }

  /** The models of the notebooks whose session runs this model's kernel (one per open document). */
  private notebookModels(): any[] {
    const manager: any = this.widget_manager;
    const kernelId = manager.kernel?.id;
    const found: any[] = [];
    if (app && kernelId) {
      for (const widget of Array.from(app.shell.widgets('main'))) {
        const panel: any = widget;
        const model = panel?.content?.model;
        if (panel?.sessionContext?.session?.kernel?.id === kernelId && model?.cells && !found.includes(model)) {
          found.push(model);
        }
      }
    }
    if (!found.length && manager.context?.model?.cells) {
      found.push(manager.context.model);
    }
    return found;
  }

  private onMessage(content: any): void {
    if (!content || content.event !== 'rewrite') {
      return;
    }
    const models = this.notebookModels();
    const done: string[] = [];
    const missing: string[] = [];
    for (const item of content.cells || []) {
      let count = 0;
      for (const model of models) {
        count += rewriteCells(model, item.match, item.line);
      }
      (count ? done : missing).push(item.match);
    }
    this.send({ event: 'rewritten', id: content.id, done, missing }, {});
  }
}

export const cellSyncPlugin: JupyterFrontEndPlugin<void> = {
  id: 'mlpipe-jupyter:cell-sync',
  requires: [IJupyterWidgetRegistry],
  autoStart: true,
  activate: (lab: JupyterFrontEnd, registry: IJupyterWidgetRegistry) => {
    app = lab;
    registry.registerWidget({ name: CELLSYNC_MODULE, version: MODULE_VERSION, exports: { CellSyncModel } });
  }
};
