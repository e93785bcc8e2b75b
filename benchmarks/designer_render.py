"""The designer with 100 and 1,000-step pipelines in real JupyterLab (headless Debian chromium, Playwright).

Measures, in the browser:
- first paint: from the kernel starting to display the designer to the first frame that shows
  the laid-out, fitted graph (the canvas stamps ``data-painted-at`` in that frame), and the view's
  own share of it (from its ``render()`` to that frame);
- fit: from the Fit button's click (after a zoom) to the next frame;
- frame times while the user pans the canvas and drags a node with the real mouse, at zoom 1;
- status updates: from the kernel feeding one ``step_status`` event per step (through the same
  handler the runner's events reach) to every node showing "completed", and the longest gap between
  two animation frames meanwhile.
The baseline, measured in the same page and run: plain cytoscape.js (the same library build, taken
from the canvas's instance) drawing the same elements with the same style in a container of the same
size, without any of the designer's code (no widget, minimap, badges, listeners or edge handles): its
first paint is construction + the same dagre layout + fit + one frame.
Kernel and browser run on this machine, so their clocks (``time.time()`` and ``Date.now()``) agree.

    python benchmarks/designer_render.py [--steps 100,1000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "browser"), str(REPO / "tests")]  # the lab starter and its helpers

from conftest import CHROMIUM, LabPage, _ensure_python3_kernelspec, running_lab, write_notebook  # noqa: E402

BUILD = """
import tempfile, time
from mlpipe_jupyter import Workspace, Pipeline, PipelineData, PythonScriptStep
folder = tempfile.mkdtemp()
ws = Workspace.create('bench', path=folder, exist_ok=True)
open(folder + '/s.py', 'w').write('print(1)')
steps, previous = [], []
for i in range({steps}):
    out = PipelineData(f'd{{i}}')
    ins = previous[-2:] if i % 10 else previous[-1:]   # a chain with joins, as real pipelines have
    steps.append(PythonScriptStep('s.py', name=f'step{{i:03d}}', source_directory=folder,
                                  inputs=list(ins), outputs=[out]))
    previous.append(out)
pipeline = Pipeline(ws, steps)
designer = pipeline.designer()
print('built', len(pipeline.steps))
"""

SHOW = """
from IPython.display import display
shown_at = time.time()
display(designer.widget)
print('SHOWN', shown_at)
"""

UPDATE = """
from mlpipe_jupyter.running.events import Event
events = [Event('step_status', 'run_bench_{n}', step=s.name, data={{'status': 'Completed'}}) for s in pipeline.steps]
sent_at = time.time()
for event in events:
    designer.run_view._on_event(event)
print('SENT', sent_at, time.time())
"""

WATCH = """(el, count) => {
  const cy = el.mlpipeCy; let last = performance.now(); let worst = 0;
  const frame = () => {
    const now = performance.now(); worst = Math.max(worst, now - last); last = now;
    if (cy.nodes('[status="completed"]').length >= count) { el.mlpipeBench = {done: Date.now(), worst}; }
    else { requestAnimationFrame(frame); }
  };
  requestAnimationFrame(frame);
}"""


def printed(lab, index, marker):
    lab.page.locator(".jp-Cell").nth(index).locator(".jp-OutputArea").get_by_text(marker).first.wait_for(
        timeout=120_000)
    text = lab.output_text(index)
    return [float(v) for v in text[text.index(marker) + len(marker):].split()[:2]]


BASELINE_PAINT = """async (el) => {
  const cy = el.mlpipeCy; const r = cy.container().getBoundingClientRect();
  const box = document.createElement('div');
  box.style.cssText = `position:fixed;left:${r.left}px;top:${r.top}px;width:${r.width}px;height:${r.height}px;` +
    'z-index:10000;background:white';
  document.body.appendChild(box);
  const elements = cy.elements().map(e => ({group: e.group(), data: {...e.data()}}));
  const drawn = {}; cy.nodes().forEach(n => { drawn[n.id()] = {...n.position()}; });
  const algorithm = el.dataset.layout || 'dagre';
  const Core = cy.constructor;
  await new Promise(r => setTimeout(r, 0));  // a fresh call stack, as a widget message handler has
  const t0 = performance.now();
  const plain = new Core({container: box, elements, style: cy.style().json(), maxZoom: 3, minZoom: 0.001});
  window.mlpipeBaselineLayout = 'dagre';
  try {  // the layout the designer ended up with (dagre, or its fallback for chains too long for dagre)
    if (algorithm !== 'dagre') { throw new Error('fallback'); }
    plain.layout({name: 'dagre', rankDir: 'LR', nodeSep: 24, rankSep: 56, fit: false, animate: false}).run();
  } catch (err) {
    plain.layout({name: 'breadthfirst', directed: true, spacingFactor: 0.8, fit: false, animate: false,
                  transform: (n, p) => ({x: p.y * 2.2, y: p.x / 2.2})}).run();
    window.mlpipeBaselineLayout = 'breadthfirst';
  }
  plain.fit(undefined, 36);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const ms = performance.now() - t0;
  plain.nodes().positions(n => drawn[n.id()]);  // then the very same drawing as the designer's
  window.mlpipeBaseline = {cy: plain, box};
  return ms;
}"""

FIT = """async ([el, baseline]) => {
  const cy = baseline ? window.mlpipeBaseline.cy : el.mlpipeCy;
  cy.zoom({level: 1, renderedPosition: {x: cy.width() / 2, y: cy.height() / 2}});
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const t0 = performance.now();
  if (baseline) { cy.fit(undefined, 36); } else { el.querySelector('.mlpipe-zoom-fit').click(); }
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return performance.now() - t0;
}"""

ZOOM_TO_NODE = """async ([el, baseline]) => {
  const cy = baseline ? window.mlpipeBaseline.cy : el.mlpipeCy;
  const steps = cy.nodes('[kind="step"]'); const node = steps[Math.floor(steps.length / 2)];
  cy.zoom(1); cy.center(node);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const r = cy.container().getBoundingClientRect(); const p = node.renderedPosition();
  return {node: {x: r.left + p.x, y: r.top + p.y}, empty: {x: r.left + r.width * 0.6, y: r.top + 14},
          width: r.width};
}"""

RECORD = """() => { window.mlpipeFrames = []; window.mlpipeRecording = true; let last = performance.now();
  const f = () => { const now = performance.now(); window.mlpipeFrames.push(now - last); last = now;
                    if (window.mlpipeRecording) { requestAnimationFrame(f); } };
  requestAnimationFrame(f); }"""

STOP = "() => { window.mlpipeRecording = false; return window.mlpipeFrames.slice(1); }"


def frames_while(page, action):
    """Animation-frame intervals (ms) while ``action`` moves the mouse."""
    page.evaluate(RECORD)
    action()
    page.wait_for_timeout(50)
    return page.evaluate(STOP)


def gesture(page, start, dx, dy, moves=120):
    def act():
        for _ in range(2):  # there and back
            page.mouse.move(start["x"], start["y"])
            page.mouse.down()
            page.mouse.move(start["x"] + dx, start["y"] + dy, steps=moves)
            page.mouse.move(start["x"], start["y"], steps=moves)
            page.mouse.up()
    return act


def interaction(page, canvas, baseline):
    """Fit time, then frame times while panning and while dragging a node, at zoom 1."""
    fit_ms = page.evaluate(FIT, [canvas.element_handle(), baseline])
    spots = page.evaluate(ZOOM_TO_NODE, [canvas.element_handle(), baseline])
    pan = frames_while(page, gesture(page, spots["empty"], -spots["width"] * 0.4, 0))
    spots = page.evaluate(ZOOM_TO_NODE, [canvas.element_handle(), baseline])
    drag = frames_while(page, gesture(page, spots["node"], 150, 90))
    return fit_ms, pan, drag


def measure_once(browser, server, steps, n):
    from playwright.sync_api import expect

    name = f"bench{n}.ipynb"
    write_notebook(server.root, name, [BUILD.format(steps=steps), SHOW, UPDATE.format(n=n)])
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    lab = LabPage(context.new_page(), server)
    try:
        lab.open(name)
        lab.run_cell(0)
        expect(lab.output(0)).to_contain_text(f"built {steps}", timeout=120_000)
        lab.run_cell(1)
        (shown_at,) = printed(lab, 1, "SHOWN")[:1]
        canvas = lab.page.locator(".mlpipe-designer-canvas[data-painted-at]").first
        canvas.wait_for(timeout=120_000)
        painted_at = float(canvas.get_attribute("data-painted-at")) / 1000
        render_at = float(canvas.get_attribute("data-render-at")) / 1000
        nodes = canvas.evaluate("el => el.mlpipeCy.nodes('[kind=\"step\"]').length")
        assert nodes == steps, f"{nodes} nodes drawn for {steps} steps"
        canvas.scroll_into_view_if_needed()
        page = lab.page
        fit_ms, pan, drag = interaction(page, canvas, baseline=False)
        canvas.evaluate("el => el.querySelector('.mlpipe-zoom-fit').click()")
        base_paint_ms = canvas.evaluate(BASELINE_PAINT)
        base_fit_ms, base_pan, base_drag = interaction(page, canvas, baseline=True)
        layouts = [canvas.get_attribute("data-layout"), page.evaluate("() => window.mlpipeBaselineLayout")]
        page.evaluate("() => { window.mlpipeBaseline.cy.destroy(); window.mlpipeBaseline.box.remove(); }")
        canvas.evaluate(WATCH, steps)
        lab.run_cell(2)
        sent_at, sent_end = printed(lab, 2, "SENT")
        lab.page.wait_for_function("el => !!el.mlpipeBench", arg=canvas.element_handle(), timeout=120_000)
        result = canvas.evaluate("el => el.mlpipeBench")
        stamps = {k: float(canvas.get_attribute(f"data-{k}-at")) / 1000 - shown_at
                  for k in ("render", "start", "laid-out", "sized", "painted")}
        return {"stamps": stamps, "layouts": layouts, "first_paint_s": painted_at - shown_at, "view_paint_s": painted_at - render_at,
                "baseline_paint_s": base_paint_ms / 1000, "fit_ms": fit_ms, "baseline_fit_ms": base_fit_ms,
                "pan_frames": pan, "baseline_pan_frames": base_pan,
                "drag_frames": drag, "baseline_drag_frames": base_drag,
                "updates_s": result["done"] / 1000 - sent_at,
                "kernel_send_s": sent_end - sent_at, "worst_frame_gap_ms": result["worst"]}
    finally:
        context.close()


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


ROWS = [  # label, designer value, baseline value (None: no baseline for it)
    ("first paint, in the browser (s)", lambda r: r["view_paint_s"], lambda r: r["baseline_paint_s"]),
    ("fit after a zoom (ms)", lambda r: r["fit_ms"], lambda r: r["baseline_fit_ms"]),
    ("pan: median frame (ms)", lambda r: pct(r["pan_frames"], 0.5), lambda r: pct(r["baseline_pan_frames"], 0.5)),
    ("pan: 95th pct frame (ms)", lambda r: pct(r["pan_frames"], 0.95),
     lambda r: pct(r["baseline_pan_frames"], 0.95)),
    ("drag: median frame (ms)", lambda r: pct(r["drag_frames"], 0.5),
     lambda r: pct(r["baseline_drag_frames"], 0.5)),
    ("drag: 95th pct frame (ms)", lambda r: pct(r["drag_frames"], 0.95),
     lambda r: pct(r["baseline_drag_frames"], 0.95)),
    ("first paint from the kernel's display() (s)", lambda r: r["first_paint_s"], None),
    ("status of every step drawn (s)", lambda r: r["updates_s"], None),
    ("worst frame gap during status updates (ms)", lambda r: r["worst_frame_gap_ms"], None),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", default="100,1000", help="comma-separated pipeline sizes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="write the raw results here")
    args = parser.parse_args()
    sizes = [int(v) for v in args.steps.split(",")]
    _ensure_python3_kernelspec()
    from playwright.sync_api import sync_playwright

    results = {}
    with tempfile.TemporaryDirectory() as tmp, running_lab(Path(tmp)) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        for size in sizes:
            results[size] = [measure_once(browser, server, size, f"{size}_{n}") for n in range(args.repeat)]
        browser.close()
    print(f"designer in JupyterLab, median of {args.repeat} runs; baseline: plain cytoscape, same elements and style")
    print("| measure | steps | designer | baseline | ratio |\n| --- | --- | --- | --- | --- |")
    for label, ours, base in ROWS:
        for size in sizes:
            mine = statistics.median(ours(r) for r in results[size])
            if base is None:
                print(f"| {label} | {size} | {mine:.3f} | - | - |")
            else:
                theirs = statistics.median(base(r) for r in results[size])
                print(f"| {label} | {size} | {mine:.3f} | {theirs:.3f} | {mine / theirs:.2f}x |")
    for size in sizes:
        print(f"layout at {size} steps (designer, baseline): {sorted({tuple(r['layouts']) for r in results[size]})}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
