"""The designer with a 100-step pipeline in real JupyterLab (headless Debian chromium, Playwright).

Measures, in the browser:
- first paint: from the kernel starting to display the designer to the first frame that shows
  the laid-out graph (the canvas stamps ``data-painted-at`` in that frame);
- 100 status updates: from the kernel feeding 100 ``step_status`` events (one per step, through the
  same handler the runner's events reach) to every node showing "completed";
- responsiveness while they arrive: the longest gap between two animation frames.
Kernel and browser run on this machine, so their clocks (``time.time()`` and ``Date.now()``) agree.

    python benchmarks/designer_render.py [--steps 100] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "browser"))

from conftest import (CHROMIUM, LabPage, LabServer, _ensure_python3_kernelspec, _free_port,  # noqa: E402
                      _stop_server, _write_lab_settings, write_notebook)

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
import time
from IPython.display import display
shown_at = time.time()
display(designer.widget)
print('SHOWN', shown_at)
"""

UPDATE = """
import time
from mlpipe_jupyter.running.events import Event
events = [Event('step_status', 'run_bench_{n}', step=s.name, data={{'status': 'Completed'}}) for s in pipeline.steps]
sent_at = time.time()
for event in events:
    designer._on_event(event)
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


def start_lab(base: Path):
    root = base / "root"
    root.mkdir()
    _write_lab_settings(base / "settings")
    token, port = secrets.token_hex(16), _free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(base / "config"), "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(base / "ws"),
           "IPYTHONDIR": str(base / "ipython"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    log = base / "lab.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--ServerApp.token={token}",
             "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", f"--ServerApp.root_dir={root}",
             "--LabApp.news_url="], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = LabServer(f"http://127.0.0.1:{port}/", token, root, log)
    deadline = time.monotonic() + 90
    while True:
        try:
            server.api("api/status")
            return server, process
        except (urllib.error.URLError, OSError):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(server.log_tail())
            time.sleep(0.3)


def printed(lab, index, marker):
    lab.page.locator(".jp-Cell").nth(index).locator(".jp-OutputArea").get_by_text(marker).first.wait_for(
        timeout=120_000)
    text = lab.output_text(index)
    return [float(v) for v in text[text.index(marker) + len(marker):].split()[:2]]


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
        nodes = canvas.evaluate("el => el.mlpipeCy.nodes().length")
        assert nodes == steps, f"{nodes} nodes drawn for {steps} steps"
        canvas.evaluate(WATCH, steps)
        lab.run_cell(2)
        sent_at, sent_end = printed(lab, 2, "SENT")
        lab.page.wait_for_function("el => !!el.mlpipeBench", arg=canvas.element_handle(), timeout=120_000)
        result = canvas.evaluate("el => el.mlpipeBench")
        return {"first_paint_s": painted_at - shown_at, "updates_s": result["done"] / 1000 - sent_at,
                "kernel_send_s": sent_end - sent_at, "worst_frame_gap_ms": result["worst"]}
    finally:
        context.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="write the raw results here")
    args = parser.parse_args()
    _ensure_python3_kernelspec()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        server, process = start_lab(Path(tmp))
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
                results = [measure_once(browser, server, args.steps, n) for n in range(args.repeat)]
                browser.close()
        finally:
            _stop_server(server, process)
    print(f"designer with {args.steps} steps, {args.repeat} runs (median, max):")
    for key in ("first_paint_s", "updates_s", "kernel_send_s", "worst_frame_gap_ms"):
        values = [r[key] for r in results]
        print(f"  {key:<20} {statistics.median(values):8.3f} {max(values):8.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
