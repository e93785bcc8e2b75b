/**
 * A small overview of a large designer graph: every node as a dot-sized box, the visible part of the
 * canvas as a rectangle; pressing or dragging on it moves the view there.
 *
 * The nodes are drawn to an offscreen layer only when the graph changes; while the user pans, only
 * the viewport rectangle is drawn again, so a thousand-step graph pans at full frame rate.
 */
import cytoscape from 'cytoscape';

export const MINIMAP_NODES = 30; // more nodes than this: the overview is shown even if all fit

export interface IMinimapColors {
  background: string;
  step: string;
  data: string;
  edge: string;
  viewport: string;
}

export class Minimap {
  readonly node: HTMLDivElement;
  private canvas: HTMLCanvasElement;
  private layer: HTMLCanvasElement;
  private world = { x1: 0, y1: 0, w: 1, h: 1, scale: 1, ox: 0, oy: 0 };
  private layerDirty = true;
  private frame = 0;
  private dragging = false;

  constructor(
    private cy: cytoscape.Core,
    private colors: () => IMinimapColors,
    private onUserPan: () => void,
    private width = 180,
    private height = 110
  ) {
    this.node = document.createElement('div');
    this.node.className = 'mlpipe-minimap';
    this.node.title = 'Overview: click or drag to move the view';
    this.canvas = document.createElement('canvas');
    this.layer = document.createElement('canvas');
    this.node.appendChild(this.canvas);
    this.canvas.addEventListener('pointerdown', e => this.press(e));
    this.canvas.addEventListener('pointermove', e => this.dragging && this.panTo(e));
    const release = (e: PointerEvent) => {
      this.dragging = false;
      if (this.canvas.hasPointerCapture(e.pointerId)) {
        this.canvas.releasePointerCapture(e.pointerId);
      }
    };
    this.canvas.addEventListener('pointerup', release);
    this.canvas.addEventListener('pointercancel', release);
    cy.on('add remove position data style', () => this.invalidate());
    cy.on('viewport resize', () => this.schedule());
  }

  /** The graph changed: redraw its nodes at the next frame. */
  invalidate(): void {
    this.layerDirty = true;
    this.schedule();
  }

  schedule(): void {
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.draw();
      });
    }
  }

  get shown(): boolean {
    return this.node.classList.contains('mlpipe-minimap-shown');
  }

  private wanted(): boolean {
    const cy = this.cy;
    if (cy.nodes().length === 0 || cy.width() === 0) {
      return false;
    }
    if (cy.nodes().length > MINIMAP_NODES) {
      return true;
    }
    const bb = cy.elements().boundingBox({});
    const ext = cy.extent();
    const slack = 2;
    return bb.x1 < ext.x1 - slack || bb.y1 < ext.y1 - slack || bb.x2 > ext.x2 + slack || bb.y2 > ext.y2 + slack;
  }

  private draw(): void {
    const show = this.wanted();
    this.node.classList.toggle('mlpipe-minimap-shown', show);
    if (!show) {
      return;
    }
    const ratio = window.devicePixelRatio || 1;
    for (const c of [this.canvas, this.layer]) {
      if (c.width !== Math.round(this.width * ratio)) {
        c.width = Math.round(this.width * ratio);
        c.height = Math.round(this.height * ratio);
        this.layerDirty = true;
      }
    }
    this.canvas.style.width = `${this.width}px`;
    this.canvas.style.height = `${this.height}px`;
    const colors = this.colors();
    if (this.layerDirty) {
      this.drawLayer(colors, ratio);
      this.layerDirty = false;
    }
    const ctx = this.canvas.getContext('2d')!;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.drawImage(this.layer, 0, 0);
    const ext = this.cy.extent();
    const w = this.world;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.strokeStyle = colors.viewport;
    ctx.lineWidth = 1.5;
    ctx.fillStyle = colors.viewport;
    const x = w.ox + (ext.x1 - w.x1) * w.scale;
    const y = w.oy + (ext.y1 - w.y1) * w.scale;
    const rw = ext.w * w.scale;
    const rh = ext.h * w.scale;
    ctx.globalAlpha = 0.12;
    ctx.fillRect(x, y, rw, rh);
    ctx.globalAlpha = 1;
    ctx.strokeRect(x, y, rw, rh);
  }

  private drawLayer(colors: IMinimapColors, ratio: number): void {
    const cy = this.cy;
    const bb = cy.nodes().boundingBox({ includeLabels: false });
    const pad = 6;
    const scale = Math.min((this.width - 2 * pad) / Math.max(bb.w, 1), (this.height - 2 * pad) / Math.max(bb.h, 1));
    this.world = {
      x1: bb.x1,
      y1: bb.y1,
      w: bb.w,
      h: bb.h,
      scale,
      ox: (this.width - bb.w * scale) / 2,
      oy: (this.height - bb.h * scale) / 2
    };
    const w = this.world;
    const ctx = this.layer.getContext('2d')!;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.layer.width, this.layer.height);
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.fillStyle = colors.background;
    ctx.fillRect(0, 0, this.width, this.height);
    ctx.strokeStyle = colors.edge;
    ctx.lineWidth = 0.6;
    ctx.beginPath();
    cy.edges().forEach((e: any) => {
      const a = e.source().position();
      const b = e.target().position();
      ctx.moveTo(w.ox + (a.x - w.x1) * scale, w.oy + (a.y - w.y1) * scale);
      ctx.lineTo(w.ox + (b.x - w.x1) * scale, w.oy + (b.y - w.y1) * scale);
    });
    ctx.stroke();
    cy.nodes().forEach((n: any) => {
      const p = n.position();
      const nw = Math.max(n.width() * scale, 1.5);
      const nh = Math.max(n.height() * scale, 1.5);
      ctx.fillStyle = n.data('kind') === 'step' ? n.style('border-color') || colors.step : colors.data;
      ctx.fillRect(w.ox + (p.x - w.x1) * scale - nw / 2, w.oy + (p.y - w.y1) * scale - nh / 2, nw, nh);
    });
  }

  private press(e: PointerEvent): void {
    e.preventDefault();
    e.stopPropagation();
    this.dragging = true;
    this.canvas.setPointerCapture(e.pointerId);
    this.panTo(e);
  }

  /** Centre the view on the graph point under the pointer. */
  private panTo(e: PointerEvent): void {
    const r = this.canvas.getBoundingClientRect();
    const w = this.world;
    const mx = w.x1 + (e.clientX - r.left - w.ox) / w.scale;
    const my = w.y1 + (e.clientY - r.top - w.oy) / w.scale;
    const cy = this.cy;
    const zoom = cy.zoom();
    cy.pan({ x: cy.width() / 2 - mx * zoom, y: cy.height() / 2 - my * zoom });
    this.onUserPan();
  }

  dispose(): void {
    cancelAnimationFrame(this.frame);
    this.node.remove();
  }
}
