/**
 * The designer canvas: a cytoscape.js graph kept in step with the kernel's pipeline.
 *
 * The kernel owns the pipeline. This view draws the `graph` trait, lays new nodes out left to right
 * with dagre, and reports what the user does (a node moved, a link drawn, a deletion, a double-click,
 * a file dropped from the file browser) as custom messages; the kernel answers with a new `graph`.
 */
import { DOMWidgetModel, DOMWidgetView } from '@jupyter-widgets/base';
import cytoscape from 'cytoscape';
import dagre from 'cytoscape-dagre';
import edgehandles from 'cytoscape-edgehandles';

cytoscape.use(dagre);
cytoscape.use(edgehandles);

export const MODULE_NAME = 'mlpipe-jupyter';
export const MODULE_VERSION = '0.1.0';
const CONTENTS_MIME = 'application/x-jupyter-icontents';

interface INodeData {
  id: string;
  kind: 'step' | 'data';
  name: string;
  compute?: string;
  data_kind?: string;
  position?: { x: number; y: number } | null;
}

interface IEdgeData {
  id: string;
  source: string;
  target: string;
  data: string;
  label: string;
}

interface IStatus {
  status: string;
  started?: number | null;
  ended?: number | null;
}

const ICONS: { [key: string]: string } = {
  queued: '\u23F3',
  running: '\u25B6',
  completed: '\u2714',
  reused: '\u267B',
  failed: '\u2716',
  canceled: '\u2298'
};
const STATUS_COLORS: { [key: string]: [string, string] } = {
  queued: ['#efebe9', '#6d4c41'],
  running: ['#bbdefb', '#1565c0'],
  completed: ['#c8e6c9', '#2e7d32'],
  reused: ['#dcedc8', '#558b2f'],
  failed: ['#ffcdd2', '#c62828'],
  canceled: ['#eeeeee', '#757575']
};

function duration(seconds: number): string {
  if (seconds < 60) {
    return `${seconds.toFixed(1)}s`;
  }
  const s = Math.floor(seconds);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

function styles(): any[] {
  const out: any[] = [
    {
      selector: 'node[kind="step"]',
      style: {
        shape: 'round-rectangle',
        width: 170,
        height: 58,
        'background-color': '#e3f2fd',
        'border-width': 2,
        'border-color': '#1565c0',
        label: 'data(label)',
        'text-wrap': 'wrap',
        'text-valign': 'center',
        'text-halign': 'center',
        'font-size': 12,
        'font-family': 'sans-serif'
      }
    },
    {
      selector: 'node[kind="data"]',
      style: {
        shape: 'ellipse',
        width: 100,
        height: 30,
        'background-color': '#f5f5f5',
        'border-width': 1,
        'border-color': '#9e9e9e',
        label: 'data(name)',
        'font-size': 10,
        'text-valign': 'center',
        'text-halign': 'center'
      }
    },
    {
      selector: 'node[data_kind="missing"]',
      style: { 'border-color': '#c62828', 'border-style': 'dashed' }
    },
    {
      selector: 'edge',
      style: {
        width: 2,
        'line-color': '#78909c',
        'target-arrow-color': '#78909c',
        'target-arrow-shape': 'triangle',
        'curve-style': 'bezier',
        label: 'data(label)',
        'font-size': 10,
        'text-background-color': '#ffffff',
        'text-background-opacity': 1,
        'text-background-padding': '2px'
      }
    },
    {
      selector: ':selected',
      style: {
        'border-color': '#ff9800',
        'border-width': 4,
        'line-color': '#ff9800',
        'target-arrow-color': '#ff9800'
      }
    },
    {
      selector: '.eh-hover',
      style: { 'background-color': '#fff3e0' }
    },
    {
      selector: '.eh-source',
      style: { 'border-color': '#ff9800', 'border-width': 4 }
    },
    {
      selector: '.eh-preview, .eh-ghost-edge',
      style: {
        'line-color': '#ff9800',
        'target-arrow-color': '#ff9800',
        'line-style': 'dashed'
      }
    },
    {
      selector: '.eh-ghost-edge.eh-preview-active',
      style: { opacity: 0 }
    }
  ];
  for (const [word, [fill, border]] of Object.entries(STATUS_COLORS)) {
    out.push({
      selector: `node.status-${word}`,
      style: { 'background-color': fill, 'border-color': border }
    });
  }
  return out;
}

export class DesignerCanvasModel extends DOMWidgetModel {
  defaults(): any {
    return {
      ...super.defaults(),
      _model_name: 'DesignerCanvasModel',
      _view_name: 'DesignerCanvasView',
      _model_module: MODULE_NAME,
      _view_module: MODULE_NAME,
      _model_module_version: MODULE_VERSION,
      _view_module_version: MODULE_VERSION,
      graph: { nodes: [], edges: [] },
      status: {},
      selected: [],
      link_mode: false,
      layout_request: 0,
      height: '460px'
    };
  }
}

export class DesignerCanvasView extends DOMWidgetView {
  private cy: cytoscape.Core | null = null;
  private eh: any = null;
  private box!: HTMLDivElement;
  private ticker = 0;
  private resizer: ResizeObserver | null = null;
  private laidOut = false;
  private shiftLinking = false;

  render(): void {
    this.el.classList.add('mlpipe-designer-canvas');
    this.el.tabIndex = 0;
    this.box = document.createElement('div');
    this.box.className = 'mlpipe-cy';
    this.box.style.height = this.model.get('height');
    this.el.appendChild(this.box);
    this.el.addEventListener('keydown', (e: KeyboardEvent) => this.onKey(e));
    for (const type of ['lm-dragenter', 'lm-dragover', 'lm-dragleave', 'lm-drop']) {
      this.el.addEventListener(type, (e: Event) => this.onLuminoDrag(e as any));
    }
    // cytoscape measures its container, so it starts once the view is in the page.
    this.displayed.then(() => this.start());
    if (this.el.isConnected) {
      this.start();
    }
  }

  private start(): void {
    if (this.cy) {
      return;
    }
    const cy = cytoscape({
      container: this.box,
      style: styles(),
      maxZoom: 1.5,
      minZoom: 0.1,
      wheelSensitivity: 0.3,
      boxSelectionEnabled: true
    });
    this.cy = cy;
    (this.el as any).mlpipeCy = cy; // for page tests and for debugging from the console
    this.eh = (cy as any).edgehandles({
      canConnect: (source: any, target: any) =>
        source.data('kind') === 'step' && target.data('kind') === 'step' && !source.same(target),
      edgeParams: () => ({ data: { temporary: true } }),
      hoverDelay: 100,
      snap: true
    });
    cy.on('ehcomplete', (_e: any, source: any, target: any, added: any) => {
      added.remove();
      this.send({ event: 'link', source: source.data('name'), target: target.data('name') });
    });
    cy.on('ehstop', () => {
      if (this.shiftLinking) {
        this.shiftLinking = false;
        cy.autoungrabify(false);
      }
    });
    cy.on('tapstart', 'node[kind="step"]', (e: any) => {
      if (e.originalEvent && e.originalEvent.shiftKey && !this.model.get('link_mode')) {
        this.shiftLinking = true;
        cy.autoungrabify(true);
        this.eh.start(e.target);
      }
    });
    cy.on('dragfree', 'node[kind="step"]', (e: any) => {
      const p = e.target.position();
      e.target.data('saved', { x: p.x, y: p.y });
      this.send({ event: 'move', node: e.target.data('name'), x: p.x, y: p.y });
    });
    cy.on('dbltap', 'node[kind="step"]', (e: any) => {
      this.send({ event: 'open', node: e.target.data('name') });
    });
    cy.on('tap', 'node', (e: any) => {
      this.el.focus();
      this.send({ event: 'tap', node: e.target.data('name'), kind: e.target.data('kind') });
    });
    cy.on('tap', (e: any) => {
      if (e.target === cy) {
        this.el.focus();
      }
    });
    let pending = 0;
    cy.on('select unselect', () => {
      window.clearTimeout(pending);
      pending = window.setTimeout(() => {
        const ids = cy
          .$(':selected')
          .filter((el: any) => !el.data('temporary'))
          .map((el: any) => el.id());
        this.model.set('selected', ids);
        this.touch();
      }, 0);
    });
    // listenTo, not model.on: remove() (stopListening) then drops these, so a closed view is not kept
    this.listenTo(this.model, 'change:graph', () => this.applyGraph());
    // many status changes in a burst are drawn once per frame
    let frame = 0;
    this.listenTo(this.model, 'change:status', () => {
      if (!frame) {
        frame = requestAnimationFrame(() => {
          frame = 0;
          this.applyStatus();
        });
      }
    });
    this.listenTo(this.model, 'change:link_mode', () => this.applyLinkMode());
    this.listenTo(this.model, 'change:layout_request', () => this.layout(true));
    this.listenTo(this.model, 'change:height', () => {
      this.box.style.height = this.model.get('height');
      cy.resize();
    });
    this.resizer = new ResizeObserver(() => this.resized());
    this.resizer.observe(this.box);
    this.applyGraph();
    this.applyLinkMode();
    this.ticker = window.setInterval(() => this.tick(), 1000);
  }

  /** A new size (a panel opened, a window resized): fit the graph again when part of it is out of view. */
  private resized(): void {
    const cy = this.cy;
    if (!cy || cy.width() === 0) {
      return;
    }
    cy.resize();
    const bb = cy.elements().renderedBoundingBox({});
    if (this.laidOut && (bb.x1 < 0 || bb.y1 < 0 || bb.x2 > cy.width() || bb.y2 > cy.height())) {
      cy.fit(undefined, 30);
    }
  }

  send(content: any): void {
    super.send(content, []);
  }

  private applyLinkMode(): void {
    if (!this.eh) {
      return;
    }
    if (this.model.get('link_mode')) {
      this.eh.enableDrawMode();
    } else {
      this.eh.disableDrawMode();
    }
    this.el.classList.toggle('mlpipe-link-mode', !!this.model.get('link_mode'));
  }

  /** Make the drawing match the `graph` trait: add, update and remove by id. */
  private applyGraph(): void {
    const cy = this.cy;
    if (!cy) {
      return;
    }
    const graph = this.model.get('graph') as { nodes: INodeData[]; edges: IEdgeData[] };
    const wanted = new Set<string>();
    const fresh: string[] = [];
    cy.batch(() => {
      for (const n of graph.nodes) {
        wanted.add(n.id);
        const existing = cy.getElementById(n.id);
        const data: any = { ...n, saved: n.position || null };
        delete data.position;
        if (existing.nonempty()) {
          existing.data(data);
          if (n.position && !existing.grabbed()) {
            const p = existing.position();
            if (Math.abs(p.x - n.position.x) > 0.5 || Math.abs(p.y - n.position.y) > 0.5) {
              existing.position({ ...n.position });
            }
          }
        } else {
          cy.add({
            group: 'nodes',
            data,
            position: n.position ? { ...n.position } : { x: 0, y: 0 }
          });
          if (!n.position) {
            fresh.push(n.id);
          }
        }
      }
      for (const e of graph.edges) {
        wanted.add(e.id);
        const existing = cy.getElementById(e.id);
        if (existing.nonempty()) {
          existing.data({ ...e } as any);
        } else {
          cy.add({ group: 'edges', data: { ...e } as any });
        }
      }
      cy.elements()
        .filter((el: any) => !wanted.has(el.id()) && !el.data('temporary') && !el.hasClass('eh-ghost'))
        .remove();
      // an edge whose ends were re-added keeps pointing at them by id; a refused drawn edge goes away
      cy.edges('[?temporary]').remove();
    });
    this.applyStatus();
    if (!this.laidOut || fresh.length > 0) {
      this.layout(false, new Set(fresh));
    }
  }

  /** dagre, left to right; nodes with a position (saved or already shown) keep it unless `all`. */
  private layout(all: boolean, fresh?: Set<string>): void {
    const cy = this.cy;
    if (!cy || cy.nodes().length === 0) {
      return;
    }
    const first = !this.laidOut;
    const keep = (node: any) => {
      if (all) {
        return null;
      }
      const saved = node.data('saved');
      if (saved) {
        return saved;
      }
      if (!first && !(fresh && fresh.has(node.id()))) {
        return node.position();
      }
      return null;
    };
    const kept = new Map<string, any>();
    cy.nodes().forEach((n: any) => {
      const p = keep(n);
      if (p) {
        kept.set(n.id(), { x: p.x, y: p.y });
      }
    });
    const layout = cy.layout({
      name: 'dagre',
      rankDir: 'LR',
      nodeSep: 30,
      rankSep: 90,
      fit: false,
      animate: false,
      transform: (node: any, pos: any) => kept.get(node.id()) || pos
    } as any);
    layout.run();
    if (first || all) {
      cy.fit(undefined, 30);
    }
    this.laidOut = true;
    if (first) {
      // when the first frame with the graph is on screen (read by the render benchmark)
      requestAnimationFrame(() => (this.el.dataset.paintedAt = String(Date.now())));
    }
    this.el.dataset.ready = 'true';
  }

  private label(node: any, st: IStatus | undefined): string {
    const name = node.data('name');
    const compute = node.data('compute') || 'local';
    if (!st) {
      return `${name}\n${compute}`;
    }
    const icon = ICONS[st.status] || '';
    let time = '';
    if (st.status === 'running' && st.started) {
      time = `\n${duration(Date.now() / 1000 - st.started)}`;
    } else if (st.started && st.ended) {
      time = `\n${duration(st.ended - st.started)}`;
    }
    return `${icon} ${name}\n${compute} \u00B7 ${st.status}${time}`;
  }

  private applyStatus(): void {
    const cy = this.cy;
    if (!cy) {
      return;
    }
    const status = (this.model.get('status') || {}) as { [name: string]: IStatus };
    const classes = Object.keys(STATUS_COLORS).map(w => `status-${w}`);
    cy.batch(() => {
      cy.nodes('[kind="step"]').forEach((node: any) => {
        const st = status[node.data('name')];
        node.removeClass(classes.join(' '));
        if (st) {
          node.addClass(`status-${st.status}`);
        }
        node.data('status', st ? st.status : '');
        node.data('label', this.label(node, st));
      });
    });
  }

  /** Running nodes show their elapsed time, counted here so the kernel sends nothing for it. */
  private tick(): void {
    const cy = this.cy;
    if (!cy) {
      return;
    }
    const status = (this.model.get('status') || {}) as { [name: string]: IStatus };
    cy.nodes('[status="running"]').forEach((node: any) => {
      node.data('label', this.label(node, status[node.data('name')]));
    });
  }

  private onKey(e: KeyboardEvent): void {
    if (e.key !== 'Delete' && e.key !== 'Backspace') {
      return;
    }
    const cy = this.cy;
    if (!cy) {
      return;
    }
    const ids = cy.$(':selected').map((el: any) => el.id());
    if (ids.length > 0) {
      e.preventDefault();
      e.stopPropagation();
      this.send({ event: 'delete', ids });
    }
  }

  /** Files dragged from JupyterLab's file browser (a Lumino drag carrying their paths). */
  private onLuminoDrag(e: any): void {
    if (!e.mimeData || !e.mimeData.hasData(CONTENTS_MIME)) {
      return;
    }
    e.preventDefault();
    e.stopPropagation();
    if (e.type === 'lm-dragleave') {
      this.el.classList.remove('mlpipe-drop-target');
      return;
    }
    e.dropAction = e.proposedAction === 'none' ? 'move' : e.proposedAction;
    if (e.type === 'lm-drop') {
      this.el.classList.remove('mlpipe-drop-target');
      const paths = (e.mimeData.getData(CONTENTS_MIME) as string[]).filter(
        p => p.endsWith('.py') || p.endsWith('.ipynb')
      );
      if (paths.length > 0) {
        this.send({ event: 'drop', paths });
      }
    } else {
      this.el.classList.add('mlpipe-drop-target');
    }
  }

  remove(): void {
    window.clearInterval(this.ticker);
    if (this.resizer) {
      this.resizer.disconnect();
    }
    if (this.cy) {
      this.cy.destroy();
      this.cy = null;
    }
    super.remove();
  }
}
