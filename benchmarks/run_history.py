"""The run history table with 1,000 runs in real JupyterLab (headless Debian chromium, Playwright),
against a plain HTML table of the same rows (``DataFrame.to_html``) measured the same way in the same
notebook.

Seeds 1,000 pipeline runs (each with one step run, three parameters and three metrics of five values)
straight into a workspace's store, then measures:
- build: the kernel reading the runs and making the table (``RunHistory`` and its widget; for the
  baseline the same rows as HTML);
- render: from the kernel starting to build to the first row painted in the page (the grid paints on
  a canvas: an init script stamps when a run id is first drawn; the HTML table: when its rows are in
  the page, checked every animation frame);
- sort (by run id, ascending) and filter (a text that leaves one run): from the kernel changing the
  table to the expected first row painted.
Kernel and browser run on this machine, so their clocks (``time.time()`` and ``Date.now()``) agree.

    python benchmarks/run_history.py [--runs 1000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from designer_render import CHROMIUM, LabPage, _ensure_python3_kernelspec, printed, running_lab, write_notebook

SEED = """
import random, tempfile, time
from mlpipe_jupyter import Workspace, Experiment
from mlpipe_jupyter.notebook.run_history import RunHistory
folder = tempfile.mkdtemp()
ws = Workspace.create('bench', path=folder, exist_ok=True)
store = ws._store
store.ensure_experiment('hist')
rng = random.Random(7)
now = time.time() - {runs} * 60
rows, metrics = [], []
for i in range({runs}):
    rid, sid = f'run_bench_{{i:05d}}', f'step_bench_{{i:05d}}'
    start = now + i * 60
    status = 'Failed' if i % 17 == 0 else 'Completed'
    rows.append(dict(id=rid, experiment='hist', kind='pipeline', parent_id=None, name='bench', status=status,
                     created=start, started=start, ended=start + rng.uniform(5, 300),
                     details={{'parameters': {{'C': rng.choice([0.01, 0.1, 1.0, 10.0]), 'depth': rng.randint(2, 12),
                                             'seed': i}}}}))
    rows.append(dict(id=sid, experiment='hist', kind='step', parent_id=rid, name='train', status=status,
                     created=start, started=start, ended=start + 5, details={{}}))
    metrics.append((sid, [{{'name': n, 'kind': 'scalar', 'value': rng.random()}}
                          for _ in range(5) for n in ('loss', 'accuracy', 'auc')]))
store.insert_runs(rows)
for sid, records in metrics:
    store.add_metrics(sid, records)
experiment = Experiment(ws, 'hist')
print('seeded', len(rows) // 2)
"""

GRID = """
import time
from IPython.display import display
t0 = time.time()
history = RunHistory(experiment, limit={runs})
t1 = time.time()
bundle = history.mimebundle()
t2 = time.time()
display(bundle, raw=True)
print('GRID', t0, t2 - t0, 'data', t1 - t0)
"""

HTML = """
import time
from IPython.display import HTML, display
t0 = time.time()
frame = RunHistory(experiment, limit={runs}).frame()
page = frame.to_html(index=False, classes='bench-html')
t1 = time.time()
handle = display(HTML(page), display_id=True)
print('HTML', t0, t1 - t0)
"""

GRID_SORT = """
column = list(history.view.grid.data.columns).index('run id')
t0 = time.time()
history.view.grid.transform([{'type': 'sort', 'columnIndex': column + 1, 'desc': False}])
print('GRIDSORT', t0, 0)
"""

HTML_SORT = """
t0 = time.time()
handle.update(HTML(frame.sort_values('run id').to_html(index=False, classes='bench-html')))
print('HTMLSORT', t0, 0)
"""

GRID_FILTER = """
t0 = time.time()
history.view.grid.revert()
history.view.filter.value = 'run_bench_00005'
print('GRIDFILTER', t0, 0)
"""

HTML_FILTER = """
t0 = time.time()
handle.update(HTML(RunHistory(experiment, limit={runs}).frame('run_bench_00005').to_html(index=False, classes='bench-html')))
print('HTMLFILTER', t0, 0)
"""

RECORD = """
(() => {
  window.__paintedAt = {};
  const fill = CanvasRenderingContext2D.prototype.fillText;
  CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
    const key = String(text);
    if (!(key in window.__paintedAt)) { window.__paintedAt[key] = Date.now(); }
    return fill.call(this, text, ...rest);
  };
})();
"""

# stamps window.__htmlAt when the HTML table's first body row shows ``id``, checked every frame
WATCH_HTML = """id => {
  window.__htmlAt = null;
  const look = () => {
    const cell = document.querySelector('table.bench-html tbody tr td:nth-child(2)');
    if (cell && cell.textContent === id) { window.__htmlAt = Date.now(); } else { requestAnimationFrame(look); }
  };
  look();
}"""


def kernel_times(lab, index, marker) -> tuple[float, float]:
    """(when the kernel started, seconds it spent building) as the cell printed them."""
    try:
        t0, build = printed(lab, index, marker)
    except ValueError:
        raise RuntimeError(f"cell {index} printed: {lab.output_text(index)[-2000:]}") from None
    return t0, build


def step(lab, index, marker, expected, html: bool) -> tuple[float, float]:
    """Run a cell; (kernel build seconds, seconds from the kernel's start until ``expected`` is the
    first row painted)."""
    page = lab.page
    if html:
        page.evaluate(WATCH_HTML, expected)
    else:
        page.evaluate("window.__paintedAt = {}")
    lab.run_cell(index)
    t0, build = kernel_times(lab, index, marker)
    if html:
        page.wait_for_function("() => window.__htmlAt !== null", timeout=120_000)
        return build, page.evaluate("window.__htmlAt") / 1000 - t0
    page.wait_for_function("t => t in window.__paintedAt", arg=expected, timeout=120_000)
    return build, page.evaluate("t => window.__paintedAt[t]", expected) / 1000 - t0


def measure_once(browser, server, runs, n):
    name = f"history{n}.ipynb"
    cells = [SEED.format(runs=runs), GRID.format(runs=runs), HTML.format(runs=runs), GRID_SORT, HTML_SORT,
             GRID_FILTER, HTML_FILTER.format(runs=runs)]
    write_notebook(server.root, name, cells)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.add_init_script(RECORD)
    lab = LabPage(page, server)
    try:
        lab.open(name)
        lab.run_cell(0)
        lab.output(0).get_by_text(f"seeded {runs}").wait_for(timeout=300_000)
        out = {}
        newest, oldest, one = f"run_bench_{runs - 1:05d}", "run_bench_00000", "run_bench_00005"
        out["grid build"], out["grid render"] = step(lab, 1, "GRID", newest, html=False)
        out["html build"], out["html render"] = step(lab, 2, "HTML", newest, html=True)
        _, out["grid sort"] = step(lab, 3, "GRIDSORT", oldest, html=False)
        _, out["html sort"] = step(lab, 4, "HTMLSORT", oldest, html=True)
        _, out["grid filter"] = step(lab, 5, "GRIDFILTER", one, html=False)
        _, out["html filter"] = step(lab, 6, "HTMLFILTER", one, html=True)
        return out
    finally:
        context.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="write the raw results here")
    args = parser.parse_args()
    _ensure_python3_kernelspec()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, running_lab(Path(tmp)) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        results = [measure_once(browser, server, args.runs, n) for n in range(args.repeat)]
        browser.close()
    print(f"run history with {args.runs} runs, {args.repeat} repeats (median seconds; ratio grid / HTML table):")
    print(f"  {'':<8} {'grid':>8} {'html':>8} {'ratio':>7}")
    for what in ("build", "render", "sort", "filter"):
        grid = statistics.median(r[f"grid {what}"] for r in results)
        base = statistics.median(r[f"html {what}"] for r in results)
        print(f"  {what:<8} {grid:8.3f} {base:8.3f} {grid / base if base else float('nan'):7.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
