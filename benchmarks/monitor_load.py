"""The run monitor under load in real JupyterLab (headless Debian chromium, Playwright): 50 steps, each
logging 20 metrics 10 times a second, shown live in one notebook.

Four displays of the same load, one after the other in the same JupyterLab:
- ``closed``: the run goes without a monitor (what the load itself costs the kernel and the page);
- ``no-metrics``: the monitor with no metrics shown (its table, graph and logs only);
- ``sparklines``: the monitor as it was before the charts (an HTML row of SVG sparklines per step);
- ``charts``: the monitor with its bqplot charts (paced, see ``metric_charts.Pacer``).
The ratio table compares latency with ``sparklines`` and frames and CPU with ``no-metrics``.

Measured while the steps log (they start together, once every step's process is ready):
- update latency: from a step logging its metric ``seq`` (the time the step's ``Run.log`` stamped on the
  record) to the first animation frame whose page shows that value (or a later one) for that step;
- frame times: the intervals between ``requestAnimationFrame`` callbacks (median, p95, longest);
- CPU seconds per second of the kernel, the browser (all chromium processes) and the lab server.
Kernel, browser and steps run on this machine, so their clocks (``time.time()``, ``Date.now()``) agree.

    python benchmarks/monitor_load.py [--steps 50] [--metrics 20] [--hz 10] [--seconds 15]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "browser"), str(REPO / "tests")]  # the lab starter and its helpers

from conftest import CHROMIUM, LabPage, _descendants, running_lab, write_notebook  # noqa: E402

STEP = '''
import math, os, sys, time
from mlpipe_jupyter import Run
run = Run.get_context()
folder, name, seconds, hz, metrics = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
open(os.path.join(folder, name + ".ready"), "w").close()
while not os.path.exists(os.path.join(folder, "go")):
    time.sleep(0.02)
names = metrics.split(",")
tick, i = time.time(), 0
end = tick + seconds
while time.time() < end:
    i += 1
    run.log("seq", i)
    for k, metric in enumerate(names):
        run.log(metric, math.sin(i / 10 + k) + k)
    tick += 1 / hz
    time.sleep(max(0.0, tick - time.time()))
'''

# the monitor's metrics before the charts: the HTML row of SVG sparklines it drew, for the comparison
SPARKLINES = '''
import html
import ipywidgets as widgets
from mlpipe_jupyter.notebook import monitor

class SparklinePanel:
    def __init__(self, files=None, paced=False):
        self.files, self.series = files, {}
        self.widget = widgets.HTML("")

    def add(self, name, kind, value):
        if kind == "list" and isinstance(value, list):
            self.series[name] = list(value)
        elif kind in ("row", "table", "image"):
            self.series[name] = [value]
        else:
            self.series.setdefault(name, []).append(value)

    def render(self):
        parts = []
        for name, values in self.series.items():
            nums = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
            plot = ""
            if len(nums) >= 2:
                lo, hi = min(nums), max(nums)
                span, step = (hi - lo) or 1.0, 136 / (len(nums) - 1)
                points = " ".join(f"{2 + i * step:.1f},{30 - (v - lo) / span * 28:.1f}" for i, v in enumerate(nums))
                plot = (f' <svg class="mlpipe-plot" width="140" height="32" viewBox="0 0 140 32"><polyline '
                        f'fill="none" stroke="#1565c0" stroke-width="1.5" points="{points}"/></svg>')
            last = values[-1] if values else ""
            last = f"{last:.4g}" if isinstance(last, float) else str(last)
            parts.append(f"<span style='display:inline-block;margin-right:1.5em'><b>{html.escape(name)}</b> "
                         f"{html.escape(last)}{plot}</span>")
        self.widget.value = "".join(parts)

monitor.MetricsPanel = SparklinePanel
print("DISPLAY ready")
'''

RATE = '''
from mlpipe_jupyter.notebook.metric_charts import PACER
PACER.rate = {rate} or PACER.rate
print("DISPLAY ready", PACER.rate, "charts a second,", PACER.open_charts, "open")
'''

# the monitor without any metrics display: what the metric panels add is measured against this
NO_METRICS = '''
import ipywidgets as widgets
from mlpipe_jupyter.notebook import monitor

class NoPanel:
    def __init__(self, files=None, paced=False):
        self.files, self.widget = files, widgets.HTML("")

    def add(self, name, kind, value):
        pass

    def render(self):
        pass

monitor.MetricsPanel = NoPanel
print("DISPLAY ready")
'''

SETUP = '''
from mlpipe_jupyter import Experiment, Pipeline, PythonScriptStep, Workspace
from mlpipe_jupyter.notebook.monitor import RunMonitor
ws = Workspace.create("bench", path={workspace!r}, exist_ok=True)
steps = [PythonScriptStep("load.py", name=f"s{{i:02d}}", source_directory={source!r}, allow_reuse=False,
                          arguments=[{folder!r}, f"s{{i:02d}}", {seconds}, {hz}, {names!r}])
         for i in range({steps})]
print("ready to submit")
'''

SUBMIT = '''
run = Experiment(ws, {label!r}).submit(Pipeline(ws, steps), max_concurrency={steps})
if {show}:
    display(RunMonitor(run))
print("SUBMITTED", run.id)
'''

# Every frame: its interval, and which ``seq`` value each step's row shows (the panel's values as text,
# or the sparkline row); a newly shown value is stamped with the frame's time.
WATCH = """(monitor) => {
  const bench = {frames: [], seen: {}, stop: false};
  const shown = {};
  let last = performance.now();
  const read = (row) => {  // the values shown as text: the panel's line, or the sparkline row
    const el = row.el.querySelector('.mlpipe-metric-values') || row.el.querySelector('.mlpipe-metrics');
    const m = el && /(?:^|\\s)seq\\s+(\\d+)/.exec(el.textContent);
    return m ? +m[1] : 0;
  };
  const rows = () => [...monitor.querySelectorAll('.mlpipe-step-row')].map(el => ({
    el, name: [...el.classList].find(c => c.startsWith('mlpipe-step-') && c !== 'mlpipe-step-row').slice(12)}));
  let all = rows();
  const frame = (now) => {
    bench.frames.push(now - last); last = now;
    const stamp = Date.now();
    if (all.length === 0) all = rows();
    for (const row of all) {
      const n = read(row); const before = shown[row.name] || 0;
      if (n > before) {
        const seen = bench.seen[row.name] || (bench.seen[row.name] = {});
        for (let k = before + 1; k <= n; k++) seen[k] = stamp;
        shown[row.name] = n;
      }
    }
    if (!bench.stop) requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
  window.mlpipeBench = bench;
}"""

IDLE_WATCH = """() => {
  const bench = {frames: [], seen: {}, stop: false}; let last = performance.now();
  const frame = (now) => { bench.frames.push(now - last); last = now; if (!bench.stop) requestAnimationFrame(frame); };
  requestAnimationFrame(frame); window.mlpipeBench = bench;
}"""


DISPLAYS = ("closed", "no-metrics", "sparklines", "charts")


def cpu_seconds(pids) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def process_groups() -> dict[str, list[int]]:
    """This benchmark's processes by role: the kernel, the browser, the lab server (steps left out)."""
    groups = {"kernel": [], "browser": [], "server": []}
    for pid in _descendants(os.getpid()):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "ipykernel" in cmd:
            groups["kernel"].append(pid)
        elif "chrom" in cmd:
            groups["browser"].append(pid)
        elif "jupyterlab" in cmd:
            groups["server"].append(pid)
    return groups


def pct(values, q):
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def measure(browser, server, args, label: str, show: str, names: str) -> dict:
    from playwright.sync_api import expect

    from mlpipe_jupyter import Run, Workspace

    folder = Path(tempfile.mkdtemp(prefix=f"load-{label}-", dir=server.root))
    source = folder / "src"
    source.mkdir()
    (source / "load.py").write_text(textwrap.dedent(STEP))
    cells = [SETUP.format(workspace=str(folder / "ws"), source=str(source), folder=str(folder), seconds=args.seconds,
                          hz=args.hz, names=names, steps=args.steps),
             {"sparklines": SPARKLINES, "no-metrics": NO_METRICS}.get(show) or RATE.format(rate=args.rate),
             SUBMIT.format(label=label, steps=args.steps, show=show != "closed")]
    name = f"{label}.ipynb"
    write_notebook(server.root, name, cells)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    lab = LabPage(context.new_page(), server)
    try:
        lab.open(name)
        for index in range(2):
            lab.run_cell(index)
        expect(lab.output(0)).to_contain_text("ready to submit", timeout=120_000)
        expect(lab.output(1)).to_contain_text("DISPLAY ready", timeout=120_000)
        lab.run_cell(2)
        expect(lab.output(2)).to_contain_text("SUBMITTED", timeout=120_000)
        run_id = lab.output_text(2).split("SUBMITTED", 1)[1].split()[0]
        deadline = time.monotonic() + 180
        while len(list(folder.glob("*.ready"))) < args.steps:  # every step's process is up
            assert time.monotonic() < deadline, "the steps did not all start"
            time.sleep(0.1)
        if show == "closed":
            lab.page.evaluate(IDLE_WATCH)
        else:
            monitor = lab.output(2).locator(".mlpipe-monitor")
            expect(monitor.locator(".mlpipe-step-row")).to_have_count(args.steps, timeout=120_000)
            monitor.evaluate(WATCH)
        groups = process_groups()
        cpu0, t0 = {k: cpu_seconds(v) for k, v in groups.items()}, time.monotonic()
        (folder / "go").touch()
        if args.profile and show != "closed":  # the second half: charts made, points coming
            lab.page.wait_for_timeout(args.seconds * 400)
            profile(lab.page, context, args.seconds * 0.4)
        ws = Workspace(str(folder / "ws"))
        run = Run.get(ws, run_id)
        run.wait_for_completion(timeout_seconds=args.seconds + 120)
        elapsed = time.monotonic() - t0
        cpu = {k: (cpu_seconds(v) - cpu0[k]) / elapsed for k, v in groups.items()}
        if show != "closed":  # the last values reach the page
            lab.page.wait_for_timeout(1500)
        bench = lab.page.evaluate("() => { window.mlpipeBench.stop = true; return window.mlpipeBench; }")
        latencies = []
        for step in run.get_steps():
            seen = bench["seen"].get(step.name, {})
            for rec in ws._store.get_metric_records(step.id):
                if rec["name"] == "seq":
                    at = seen.get(str(rec["value"]))
                    latencies.append((at / 1000 - rec["ts"]) * 1000 if at else None)
        missing = sum(1 for x in latencies if x is None)
        shown = [x for x in latencies if x is not None]
        frames = bench["frames"][1:]
        return {"label": label, "logged": len(latencies), "missing": missing, "latency_ms": shown,
                "frames_ms": frames, "cpu": cpu, "seconds": elapsed}
    finally:
        context.close()
        server.stop_all_kernels()


def profile(page, context, seconds: float):
    """Where the page's main thread spends its time while the steps log: self time by function."""
    cdp = context.new_cdp_session(page)
    cdp.send("Profiler.enable")
    cdp.send("Profiler.start")
    page.wait_for_timeout(seconds * 1000)
    nodes = cdp.send("Profiler.stop")["profile"]["nodes"]
    spent: dict[str, int] = {}
    for node in nodes:
        frame = node["callFrame"]
        where = f"{frame['functionName'] or '(anonymous)'} {frame['url'].rsplit('/', 1)[-1]}:{frame['lineNumber']}"
        spent[where] = spent.get(where, 0) + node.get("hitCount", 0)
    total = sum(spent.values()) or 1
    for where, hits in sorted(spent.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {100 * hits / total:5.1f}%  {where[:110]}")
    if os.environ.get("BENCH_CALLERS"):  # who calls a function: its callers' chains, by hits
        by_id = {n["id"]: n for n in nodes}
        parent = {c: n["id"] for n in nodes for c in n.get("children", [])}
        chains: dict[str, int] = {}
        for node in nodes:
            if node["callFrame"]["functionName"] == os.environ["BENCH_CALLERS"] and node.get("hitCount"):
                chain, at = [], parent.get(node["id"])
                while at is not None and len(chain) < 8:
                    f = by_id[at]["callFrame"]
                    chain.append(f"{f['functionName'] or '?'}@{f['url'].rsplit('/', 1)[-1][:12]}:{f['lineNumber']}:{f['columnNumber']}")
                    at = parent.get(at)
                key = " < ".join(chain)
                chains[key] = chains.get(key, 0) + node["hitCount"]
        for key, hits in sorted(chains.items(), key=lambda kv: -kv[1])[:6]:
            print(f"  {hits:5d}  {key}")


def summary(result) -> dict:
    lat, frames = result["latency_ms"], result["frames_ms"]
    return {"latency_median": statistics.median(lat) if lat else float("nan"),
            "latency_p95": pct(lat, 95) if lat else float("nan"), "latency_max": max(lat) if lat else float("nan"),
            "frame_median": statistics.median(frames), "frame_p95": pct(frames, 95), "frame_max": max(frames),
            "kernel_cpu": result["cpu"]["kernel"], "browser_cpu": result["cpu"]["browser"],
            "server_cpu": result["cpu"]["server"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--metrics", type=int, default=20, help="metrics per step, 'seq' included")
    parser.add_argument("--hz", type=float, default=10)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--families", choices=("grouped", "distinct"), default="grouped",
                        help="grouped: metric names in families (loss/val_loss, grad_0..), as training logs "
                             "them; distinct: every metric its own chart")
    parser.add_argument("--rate", type=float, help="chart redraws a second over all steps (default: the pacer's)")
    parser.add_argument("--only", nargs="*", choices=DISPLAYS)
    parser.add_argument("--profile", action="store_true", help="print where the page spends its time")
    parser.add_argument("--json", help="write the raw results here")
    args = parser.parse_args()
    if args.families == "grouped":
        pool = ["loss", "val_loss", "acc", "val_acc", "lr"] + [f"grad_{i}" for i in range(8)] + \
               [f"act_{i}" for i in range(8)]
    else:
        pool = [f"metric{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(args.metrics)]
    names = ",".join(pool[:args.metrics - 1])
    from playwright.sync_api import sync_playwright

    results = []
    with tempfile.TemporaryDirectory() as tmp, running_lab(Path(tmp)) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        for label in args.only or DISPLAYS:
            results.append(measure(browser, server, args, label, label, names))
            print(f"{label}: done ({results[-1]['logged']} values of seq, {results[-1]['missing']} never shown)",
                  flush=True)
        browser.close()
    rows = {r["label"]: summary(r) for r in results}
    first = next(iter(rows.values()))
    bases = {k: rows.get("sparklines" if k.startswith("latency") else "no-metrics", first) for k in first}
    print(f"\n{args.steps} steps x {args.metrics} metrics at {args.hz:g} Hz for {args.seconds:g} s ({args.families})")
    keys = ["latency_median", "latency_p95", "latency_max", "frame_median", "frame_p95", "frame_max",
            "kernel_cpu", "browser_cpu", "server_cpu"]
    print(f"{'display':<11}" + "".join(f"{k:>15}" for k in keys))
    for label, row in rows.items():
        print(f"{label:<11}" + "".join(f"{row[k]:>15.3f}" for k in keys))
    print("ratios (latency to 'sparklines', frames and CPU to 'no-metrics'):")
    for label, row in rows.items():
        print(f"{label:<11}" + "".join(
            f"{(row[k] / bases[k][k] if bases[k][k] else float('nan')):>14.2f}x"
            for k in keys))
    if args.json:
        Path(args.json).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
