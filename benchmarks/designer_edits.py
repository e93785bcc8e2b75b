"""What an edit in the designer costs in the kernel, with and without the stale marks.

After each edit the designer asks the planner which steps a submit would rerun (planning/forecast.py):
it builds the pipeline, plans it (snapshots of each cell's folder, data fingerprints) and looks each
step's reuse key up in the store. This measures a parameter edit of the notebook's pipeline (a chain
of N recorded cells that has run once, so the lookups hit) in the kernel process:
- the edit without the forecast (the designer as it was), the forecast alone, the edit with it (until
  the edit answers: the forecast runs on a worker thread; and until the marks are set);
- undo of that edit (it forecasts again).

    python benchmarks/designer_edits.py [--steps 10 50 100] [--repeat 5]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from mlpipe_jupyter import Workspace
from mlpipe_jupyter.notebook.cell_steps import CellSpec
from mlpipe_jupyter.notebook.designer import Designer
from mlpipe_jupyter.notebook.designer.sources import NotebookSource
from mlpipe_jupyter.notebook.state import NotebookPipeline
from mlpipe_jupyter.model import edits as dm

BODY = "import os\nopen(os.path.join(outputs['d{i}'], 'x'), 'w').write(str(params))\n"


def designer_with(steps: int, folder: Path) -> Designer:
    ws = Workspace.create("bench", path=str(folder), exist_ok=True)
    state = NotebookPipeline(ws, folder)
    for i in range(steps):
        state.record(CellSpec(name=f"s{i}", body=BODY.format(i=i), inputs=[[f"d{i - 1}", None]] if i else [],
                              outputs=[f"d{i}"], params={f"p{i}": 1}))
    return Designer(source=NotebookSource(state), experiment="bench")


def ms(samples):
    return statistics.median(samples) * 1000


def measure(steps: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        d = designer_with(steps, Path(tmp))
        started = time.perf_counter()
        d.submit().wait_for_completion()
        run_s = time.perf_counter() - started
        last = f"s{steps - 1}"
        value = [1]

        def edit():
            value[0] += 1
            d.edit(lambda doc: dm.update_step(doc, last, {"params": {f"p{steps - 1}": value[0]}}), label="bench")

        forecast_on = d.mark_stale
        without, alone, with_, marked, undo = [], [], [], [], []
        for _ in range(repeat):
            d.mark_stale = lambda: None
            t = time.perf_counter()
            edit()
            without.append(time.perf_counter() - t)
            d.mark_stale = forecast_on
            t = time.perf_counter()
            d.mark_stale()
            d.wait_stale()
            alone.append(time.perf_counter() - t)
            t = time.perf_counter()
            edit()
            with_.append(time.perf_counter() - t)  # the answer to the edit; the marks follow
            d.wait_stale()
            marked.append(time.perf_counter() - t)
            t = time.perf_counter()
            d.undo()
            undo.append(time.perf_counter() - t)
            d.wait_stale()
        edit()
        d.wait_stale()
        assert set(d.canvas.stale) == {last}, d.canvas.stale  # only the edited step would rerun
        d.close()
        return {"steps": steps, "run": run_s, "without": ms(without), "alone": ms(alone), "with": ms(with_), "marked": ms(marked),
                "undo": ms(undo)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = [measure(n, args.repeat) for n in args.steps]
    print("| steps | edit, no stale marks | forecast alone | edit answered, with marks | edit to marks shown | "
          "undo | **answered with / without** |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['steps']} | {r['without']:.1f} ms | {r['alone']:.1f} ms | {r['with']:.1f} ms | "
              f"{r['marked']:.1f} ms | {r['undo']:.1f} ms | **{r['with'] / r['without']:.2f}x** |")
    print("(first run of each pipeline: " + ", ".join(f"{r['steps']} steps {r['run']:.1f} s" for r in rows) + ")")


if __name__ == "__main__":
    main()
