/**
 * The designer canvas: a cytoscape.js graph kept in step with the kernel's pipeline.
 *
 * The kernel owns the pipeline. This view draws the `graph` trait (steps, and data objects as small
 * nodes between them), lays new nodes out left to right with dagre, and reports what the user does
 * (a node moved, a link drawn, a deletion, a double-click, a file dropped from the file browser) as
 * custom messages; the kernel answers with a new `graph`. `status` colours the steps of the shown
 * run, `stale` marks the steps the next submit will run again.
 *
 * The view keeps the whole graph in sight: it fits the graph when its container first gets a size
 * and on every later size change, until the user zooms or pans by hand (the Fit button returns to
 * fitting). Colours come from JupyterLab's theme variables, read again when the theme changes.
 */
import { DOMWidgetModel, DOMWidgetView } from '@jupyter-widgets/base';
import cytoscape from 'cytoscape';
import dagre from 'cytoscape-dagre';
import edgehandles from 'cytoscape-edgehandles';

import { Minimap } from './minimap';

cytoscape.use(dagre);
cytoscape.use(edgehandles);

export const MODULE_NAME = 'mlpipe-jupyter';
export const MODULE_VERSION = '0.1.0';
const CONTENTS_MIME = 'application/x-jupyter-icontents';
const FIT_PADDING = 36; // px around a fitted graph: no border touches the canvas edge
const FIT_MAX_ZOOM = 1.25; // a small graph is not blown up past this when fitted
const ZOOM_STEP = 1.25;

interface INodeData {
  id: string;
  kind: 'step' | 'data';
  name: string;
  compute?: string;
  data_kind?: string;
  produced?: boolean;
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
// pastel fills with dark text: readable on the light and the dark theme alike
const STATUS_COLORS: { [key: string]: [string, string] } = {
  queued: ['#efebe9', '#6d4c41'],
  running: ['#bbdefb', '#1565c0'],
  completed: ['#c8e6c9', '#2e7d32'],
  reused: ['#dcedc8', '#558b2f'],
  failed: ['#ffcdd2', '#c62828'],
  canceled: ['#eeeeee', '#757575']
};
const STALE_COLOR = '#f59e0b';
const SELECTED_COLOR = '#ff9800';

function duration(seconds: number): string {
  if (seconds < 60) {
    return `${seconds.toFixed(1)}s`;
  }
  const s = Math.floor(seconds);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** The theme's colours, resolved to opaque rgb() strings that cytoscape understands. */
interface IPalette {
  background: string;
  fill: string;
  border: string;
  text: string;
  muted: string;
  edge: string;
  dataFill: string;
  dataBorder: string;
  error: string;
  font: string;
}

function rgba(probe: HTMLElement, css: string): number[] {
  probe.style.color = '';
  probe.style.color = css;
  const m = getComputedStyle(probe).color.match(/[\d.]+/g) || ['0', '0', '0'];
  const v = m.map(Number);
  return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1];
}

function readPalette(host: HTMLElement): IPalette {
  const probe = document.createElement('span');
  probe.style.display = 'none';
  host.appendChild(probe);
  try {
    const bg = rgba(probe, 'var(--jp-layout-color0, #fff)');
    const solid = (css: string) => {
      const [r, g, b, a] = rgba(probe, css);
      const mix = (c: number, i: number) => Math.round(c * a + bg[i] * (1 - a));
      return `rgb(${mix(r, 0)},${mix(g, 1)},${mix(b, 2)})`;
    };
    return {
      background: solid('var(--jp-layout-color0, #fff)'),
      fill: solid('var(--jp-layout-color1, #fff)'),
      border: solid('var(--jp-brand-color1, #1976d2)'),
      text: solid('var(--jp-ui-font-color1, rgba(0,0,0,0.87))'),
      muted: solid('var(--jp-ui-font-color2, rgba(0,0,0,0.54))'),
      edge: solid('var(--jp-ui-font-color3, rgba(0,0,0,0.38))'),
      dataFill: solid('var(--jp-layout-color2, #eee)'),
      dataBorder: solid('var(--jp-border-color1, #bdbdbd)'),
      error: solid('var(--jp-error-color1, #d32f2f)'),
      font: getComputedStyle(host).getPropertyValue('--jp-ui-font-family').trim() || 'sans-serif'
    };
  } finally {
    probe.remove();
  }
}

function styles(p: IPalette): any[] {
  const out: any[] = [
    {
      selector: 'node[kind="step"]',
      style: {
        shape: 'round-rectangle',
        width: 170,
        height: 58,
        'background-color': p.fill,
        'border-width': 2,
        'border-color': p.border,
        color: p.text,
        label: 'data(label)',
        'text-wrap': 'wrap',
        'text-max-width': '160px',
        'text-valign': 'center',
        'text-halign': 'center',
        'font-size': 12,
        'min-zoomed-font-size': 5, // labels too small to read are not drawn: large graphs pan faster
        'font-family': p.font
      }
    },
    {
      selector: 'node[kind="data"]',
      style: {
        shape: 'round-rectangle',
        width: 'data(w)',
        height: 24,
        'corner-radius': 12,
        'background-color': p.dataFill,
        'border-width': 1,
        'border-color': p.dataBorder,
        color: p.muted,
        label: 'data(name)',
        'font-size': 11,
        'min-zoomed-font-size': 5,
        'font-family': p.font,
        'text-valign': 'center',
        'text-halign': 'center',
        'text-max-width': '170px',
        'text-overflow-wrap': 'anywhere'
      }
    },
    {
      selector: 'node[kind="data"][!produced]',
      style: { shape: 'barrel', 'corner-radius': 'auto', 'border-width': 1.5, 'border-color': p.border }
    },
    {
      selector: 'node[data_kind="missing"]',
      style: { 'border-color': p.error, 'border-style': 'dashed', 'border-width': 1.5, color: p.error }
    },
    {
      selector: 'edge',
      style: {
        width: 1.5,
        'line-color': p.edge,
        'target-arrow-color': p.edge,
        'target-arrow-shape': 'triangle',
        'arrow-scale': 0.9,
        'curve-style': 'bezier',
        label: 'data(label)',
        'font-size': 10,
        color: p.muted,
        'text-background-color': p.background,
        'text-background-opacity': 1,
        'text-background-padding': '2px'
      }
    },
    {
      selector: 'edge[id ^= "out:"]',
      style: { 'target-arrow-shape': 'none' }
    }
  ];
  for (const [word, [fill, border]] of Object.entries(STATUS_COLORS)) {
    out.push({
      selector: `node.status-${word}`,
      style: { 'background-color': fill, 'border-color': border, color: '#212121' }
    });
  }
  out.push(
    {
      selector: 'node.stale',
      style: { 'border-color': STALE_COLOR, 'border-style': 'dashed', 'border-width': 3 }
    },
    {
      selector: ':selected',
      style: {
        'border-color': SELECTED_COLOR,
        'border-width': 4,
        'line-color': SELECTED_COLOR,
        'target-arrow-color': SELECTED_COLOR
      }
    },
    {
      selector: '.eh-hover',
      style: { 'background-color': '#fff3e0', color: '#212121' }
    },
    {
      selector: '.eh-source',
      style: { 'border-color': SELECTED_COLOR, 'border-width': 4 }
    },
    {
      selector: '.eh-preview, .eh-ghost-edge',
      style: {
        'line-color': SELECTED_COLOR,
        'target-arrow-color': SELECTED_COLOR,
        'target-arrow-shape': 'triangle',
        'line-style': 'dashed'
      }
    },
    {
      selector: '.eh-ghost-edge.eh-preview-active',
      style: { opacity: 0 }
    }
  );
  return out;
}

/** The drawn width of a data node: its name in 11 px type, within limits. */
function dataWidth(name: string): number {
  return Math.max(56, Math.min(180, name.length * 6.6 + 22));
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
      stale: {},
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
  private badges!: HTMLDivElement;
  private tooltip!: HTMLDivElement;
  private minimap: Minimap | null = null;
  private palette: IPalette | null = null;
  private ticker = 0;
  private resizer: ResizeObserver | null = null;
  private themeWatch: MutationObserver | null = null;
  private laidOut = false;
  private sized = false;
  private userViewport = false; // the user zoomed or panned: keep their view on resize
  private shiftLinking = false;
  private drawnStatus = new Map<string, string>(); // step node id -> the status it is drawn with

  render(): void {
    this.el.dataset.renderAt = String(Date.now()); // with data-painted-at: the view's own share of first paint
    this.el.classList.add('mlpipe-designer-canvas');
    this.el.tabIndex = 0;
    this.box = document.createElement('div');
    this.box.className = 'mlpipe-cy';
    this.box.style.height = this.model.get('height');
    this.badges = document.createElement('div');
    this.badges.className = 'mlpipe-badges';
    this.tooltip = document.createElement('div');
    this.tooltip.className = 'mlpipe-designer-tooltip';
    this.el.append(this.box, this.badges, this.zoomControls(), this.tooltip);
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

  private zoomControls(): HTMLDivElement {
    const bar = document.createElement('div');
    bar.className = 'mlpipe-zoom-controls';
    const button = (cls: string, title: string, svg: string, action: () => void) => {
      const b = document.createElement('button');
      b.className = `mlpipe-zoom-button ${cls}`;
      b.type = 'button';
      b.title = title;
      b.setAttribute('aria-label', title);
      b.innerHTML = `<svg viewBox="0 0 16 16" width="16" height="16" aria-hidden="true">${svg}</svg>`;
      b.addEventListener('click', e => {
        e.stopPropagation();
        action();
      });
      bar.appendChild(b);
    };
    const stroke = 'fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round"';
    button('mlpipe-zoom-in', 'Zoom in', `<path ${stroke} d="M8 3v10M3 8h10"/>`, () => this.zoomBy(ZOOM_STEP));
    button('mlpipe-zoom-out', 'Zoom out', `<path ${stroke} d="M3 8h10"/>`, () => this.zoomBy(1 / ZOOM_STEP));
    button(
      'mlpipe-zoom-fit',
      'Fit the graph in view',
      `<path ${stroke} d="M2 6V2h4M10 2h4v4M14 10v4h-4M6 14H2v-4"/>`,
      () => {
        this.userViewport = false;
        this.fit();
      }
    );
    return bar;
  }

  private start(): void {
    if (this.cy) {
      return;
    }
    this.el.dataset.startAt = String(Date.now()); // in the page: the benchmark splits first paint with these
    this.palette = readPalette(this.el);
    const cy = cytoscape({
      container: this.box,
      style: styles(this.palette),
      maxZoom: 3,
      minZoom: 0.001, // a thousand-step chain still fits
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
    // a zoom or pan by the user's own hand: later resizes keep their view
    cy.on('scrollzoom pinchzoom dragpan', () => (this.userViewport = true));
    cy.on('viewport', () => this.placeBadges());
    cy.on('position', 'node[kind="step"]', () => this.placeBadgesSoon());
    // every move, not mouseover: cytoscape sends no mouseover after the pointer left over a floating card
    cy.on('mousemove', (e: any) => (e.target === cy ? this.hideTooltip() : this.showTooltip(e.target)));
    cy.on('mouseout', 'node', () => this.hideTooltip());
    this.box.addEventListener('mouseleave', () => this.hideTooltip());
    cy.on('viewport grab', () => this.hideTooltip());
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
    this.minimap = new Minimap(
      cy,
      () => {
        const p = this.palette!;
        return { background: p.fill, step: p.border, data: p.dataBorder, edge: p.edge, viewport: p.border };
      },
      () => (this.userViewport = true)
    );
    this.el.appendChild(this.minimap.node);
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
    this.listenTo(this.model, 'change:stale', () => this.applyStale());
    this.listenTo(this.model, 'change:link_mode', () => this.applyLinkMode());
    this.listenTo(this.model, 'change:layout_request', () => {
      this.userViewport = false;
      this.layout(true);
    });
    this.listenTo(this.model, 'change:height', () => {
      this.box.style.height = this.model.get('height');
    });
    this.resizer = new ResizeObserver(() => this.resized());
    this.resizer.observe(this.box);
    // JupyterLab marks the body with the theme once its stylesheet is in: read the colours again
    this.themeWatch = new MutationObserver(() => this.themeChanged());
    this.themeWatch.observe(document.body, { attributes: true, attributeFilter: ['data-jp-theme-name', 'data-jp-theme-light'] });
    this.applyGraph();
    this.applyLinkMode();
    this.ticker = window.setInterval(() => this.tick(), 1000);
  }

  private themeChanged(): void {
    const apply = () => {
      if (this.cy) {
        this.palette = readPalette(this.el);
        this.cy.style(styles(this.palette) as any);
        this.minimap?.invalidate();
      }
    };
    apply();
    window.setTimeout(apply, 250); // the theme's variables may land a moment after the attribute
  }

  /**
   * The container's size changed, or it got one for the first time (a notebook output area has none
   * while the view is built): make cytoscape measure again and fit, unless the user moved the view.
   */
  private resized(): void {
    const cy = this.cy;
    if (!cy || this.box.clientWidth === 0 || this.box.clientHeight === 0) {
      return;
    }
    cy.resize();
    const first = !this.sized;
    this.sized = true;
    if (first) {
      this.el.dataset.sizedAt = String(Date.now());
    }
    if (this.laidOut && (first || !this.userViewport)) {
      this.fit();
      if (first) {
        this.stampPainted();
      }
    }
    this.minimap?.schedule();
  }

  /** Fit the graph with room around it, never zoomed in past FIT_MAX_ZOOM. */
  fit(): void {
    const cy = this.cy;
    if (!cy || !this.sized || cy.elements().length === 0) {
      return;
    }
    cy.fit(undefined, FIT_PADDING);
    if (cy.zoom() > FIT_MAX_ZOOM) {
      cy.zoom(FIT_MAX_ZOOM);
      cy.center();
    }
  }

  private zoomBy(factor: number): void {
    const cy = this.cy;
    if (!cy) {
      return;
    }
    this.userViewport = true;
    const level = Math.max(cy.minZoom(), Math.min(cy.maxZoom(), cy.zoom() * factor));
    cy.zoom({ level, renderedPosition: { x: cy.width() / 2, y: cy.height() / 2 } });
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
        if (n.kind === 'data') {
          data.w = dataWidth(n.name);
        }
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
    this.drawnStatus.clear(); // names and computes may have changed: every label is drawn again
    this.applyStatus();
    this.applyStale();
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
    // a data node without a place of its own goes next to its steps when they all keep theirs
    cy.nodes('[kind="data"]').forEach((n: any) => {
      if (!kept.has(n.id())) {
        const p = this.besideSteps(n, kept);
        if (p) {
          kept.set(n.id(), p);
        }
      }
    });
    const place = (node: any, pos: any) => kept.get(node.id()) || pos;
    try {
      cy.layout({ name: 'dagre', rankDir: 'LR', nodeSep: 24, rankSep: 56, fit: false, animate: false, transform: place } as any).run();
      this.el.dataset.layout = 'dagre';
    } catch (err) {
      // dagre recurses along the longest path: a chain of thousands of nodes can exhaust the stack.
      // cytoscape's own breadth-first layout, turned to run left to right, still gives a readable graph.
      console.warn('mlpipe designer: dagre layout failed, using breadth-first', err);
      cy.layout({
        name: 'breadthfirst',
        directed: true,
        spacingFactor: 0.8,
        fit: false,
        animate: false,
        transform: (node: any, pos: any) => kept.get(node.id()) || { x: pos.y * 2.2, y: pos.x / 2.2 }
      } as any).run();
      this.el.dataset.layout = 'breadthfirst';
    }
    this.laidOut = true;
    if (first) {
      this.el.dataset.laidOutAt = String(Date.now());
    }
    if (first || all || (!this.userViewport && fresh && fresh.size > 0)) {
      this.fit();
    }
    if (first && this.sized) {
      this.stampPainted();
    }
    this.minimap?.invalidate();
    this.placeBadges();
    this.el.dataset.ready = 'true';
  }

  /** Where a data node sits when all its steps keep their places: between writer and readers. */
  private besideSteps(node: any, kept: Map<string, any>): { x: number; y: number } | null {
    const writers = node.incomers('node').map((s: any) => kept.get(s.id()));
    const readers = node.outgoers('node').map((s: any) => kept.get(s.id()));
    const all = [...writers, ...readers];
    if (all.length === 0 || all.some((p: any) => !p)) {
      return null;
    }
    const mean = (ps: any[]) => ({
      x: ps.reduce((a, p) => a + p.x, 0) / ps.length,
      y: ps.reduce((a, p) => a + p.y, 0) / ps.length
    });
    if (writers.length && readers.length) {
      const a = mean(writers);
      const b = mean(readers);
      return { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
    }
    const side = writers.length ? 1 : -1;
    const anchor = mean(all);
    const siblings = writers.length ? node.incomers('node').outgoers('node') : node.outgoers('node').incomers('node');
    const index = siblings.map((s: any) => s.id()).indexOf(node.id());
    const offset = (index - (siblings.length - 1) / 2) * 34;
    return { x: anchor.x + side * 150, y: anchor.y + offset };
  }

  /** The first frame showing the fitted graph (read by the render benchmark). */
  private stampPainted(): void {
    if (!this.el.dataset.paintedAt) {
      requestAnimationFrame(() => (this.el.dataset.paintedAt = String(Date.now())));
    }
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

  /**
   * Colours from the `status` trait; a step missing from it (or an empty trait) is drawn neutral.
   * Only steps whose status changed are touched: a thousand-step run's updates cost what changed.
   */
  private applyStatus(): void {
    const cy = this.cy;
    if (!cy) {
      return;
    }
    const status = (this.model.get('status') || {}) as { [name: string]: IStatus };
    const classes = Object.keys(STATUS_COLORS)
      .map(w => `status-${w}`)
      .join(' ');
    cy.batch(() => {
      cy.nodes('[kind="step"]').forEach((node: any) => {
        const st = status[node.data('name')];
        const key = st ? `${st.status}|${st.started}|${st.ended}` : '';
        if (this.drawnStatus.get(node.id()) === key) {
          return;
        }
        this.drawnStatus.set(node.id(), key);
        node.removeClass(classes);
        if (st) {
          node.addClass(`status-${st.status}`);
        }
        node.data('status', st ? st.status : '');
        node.data('label', this.label(node, st));
      });
    });
  }

  /** Steps the next submit runs again (`stale`: name -> reason) get a dashed border and a badge. */
  private applyStale(): void {
    const cy = this.cy;
    if (!cy) {
      return;
    }
    const stale = (this.model.get('stale') || {}) as { [name: string]: string };
    cy.batch(() => {
      cy.nodes('[kind="step"]').forEach((node: any) => {
        const reason = stale[node.data('name')];
        node.toggleClass('stale', reason !== undefined);
        node.data('stale', reason === undefined ? null : String(reason));
      });
    });
    this.badges.replaceChildren();
    for (const name of Object.keys(stale)) {
      const node = cy.getElementById(`step:${name}`);
      if (node.empty()) {
        continue;
      }
      const badge = document.createElement('div');
      badge.className = 'mlpipe-stale-badge';
      badge.dataset.step = name;
      badge.textContent = '\u21BB will rerun';
      badge.title = String(stale[name] || 'will run again');
      this.badges.appendChild(badge);
    }
    this.placeBadges();
  }

  private badgeFrame = 0;
  private placeBadgesSoon(): void {
    if (!this.badgeFrame) {
      this.badgeFrame = requestAnimationFrame(() => {
        this.badgeFrame = 0;
        this.placeBadges();
      });
    }
  }

  /** Badges live in one layer moved with the viewport: a pan is one style write, whatever their number. */
  private placeBadges(): void {
    const cy = this.cy;
    if (!cy) {
      return;
    }
    const pan = cy.pan();
    this.badges.style.transform = `translate(${pan.x}px, ${pan.y}px) scale(${cy.zoom()})`;
    for (const badge of Array.from(this.badges.children) as HTMLElement[]) {
      const node = cy.getElementById(`step:${badge.dataset.step}`);
      if (node.nonempty()) {
        const p = node.position();
        badge.style.left = `${p.x + node.width() / 2 - 8}px`;
        badge.style.top = `${p.y - node.height() / 2}px`;
      }
    }
  }

  /** A hover text: why a stale step will run again, or what a data node is. */
  private tipFor: any = null;
  private showTooltip(node: any): void {
    const cy = this.cy;
    if (!cy || !node.isNode() || (this.tipFor === node && this.tooltip.classList.contains('mlpipe-tooltip-shown'))) {
      return;
    }
    this.tipFor = node;
    let text = '';
    if (node.data('kind') === 'step' && node.data('stale') !== null && node.data('stale') !== undefined) {
      text = `Will run again: ${node.data('stale') || 'changed since the last run'}`;
    } else if (node.data('kind') === 'data') {
      const names = (c: any) => c.map((s: any) => s.data('name')).join(', ');
      const writer = names(node.incomers('node'));
      const readers = names(node.outgoers('node'));
      const what =
        node.data('data_kind') === 'missing'
          ? 'missing: no step writes it and no dataset is registered under this name'
          : writer
            ? `written by ${writer}`
            : `${node.data('data_kind')}, from outside the pipeline`;
      text = `${node.data('name')}: ${what}${readers ? `; read by ${readers}` : ''}`;
    }
    if (!text) {
      this.hideTooltip();
      return;
    }
    this.tooltip.textContent = text;
    const p = node.renderedPosition();
    const h = node.renderedHeight();
    this.tooltip.style.left = `${Math.max(4, p.x)}px`;
    this.tooltip.style.top = `${Math.max(4, p.y + h / 2 + 6)}px`;
    this.tooltip.classList.add('mlpipe-tooltip-shown');
  }

  private hideTooltip(): void {
    this.tipFor = null;
    this.tooltip.classList.remove('mlpipe-tooltip-shown');
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
    if ((e.ctrlKey || e.metaKey) && ['z', 'Z', 'y', 'Y'].includes(e.key)) {
      // the designer's own history, not the notebook's: the key stops here
      e.preventDefault();
      e.stopPropagation();
      this.send({ event: e.shiftKey || e.key.toLowerCase() === 'y' ? 'redo' : 'undo' });
      return;
    }
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
    cancelAnimationFrame(this.badgeFrame);
    this.resizer?.disconnect();
    this.themeWatch?.disconnect();
    this.minimap?.dispose();
    if (this.cy) {
      this.cy.destroy();
      this.cy = null;
    }
    super.remove();
  }
}
