"""Pipelines of 1,000 and 10,000 steps: build, validate and plan, through each way a pipeline is made.

Entries:
- **sdk**: ``PythonScriptStep`` objects linked by ``PipelineData`` into a ``Pipeline`` (a notebook's way);
  plan = the document the SDK objects make, planned with its backends, as ``Experiment.submit`` does.
- **document**: a pipeline file as ``mlpipe run`` reads it (JSON text -> document), validated and planned.
- **run-from**: the designer's "Run from" on the first step (the subset that runs it and everything
  after it), validated and planned; its cost includes finding what is downstream.

Shapes: **chain** (step i reads step i-1's output), **reversed** (the same chain listed last step
first, which once overflowed the stack of a recursive graph walk) and **fan** (one step feeds N-2
parallel steps, which all feed one join step with N-2 inputs).

Nothing runs; every step shares one source folder, so the snapshot is taken once. The baseline is the
same operation at 1,000 steps in the same run: at 10,000 steps a linear operation takes about 10 times
as long (11x to 15x in practice: the garbage collector and CPU caches work harder on a bigger heap,
and sorted messages cost n log n), a quadratic one about 100 times; the table prints that ratio and
the time per step.

    python benchmarks/scale.py [--sizes 1000 10000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mlpipe_jupyter import Pipeline, PipelineData, PythonScriptStep, Workspace  # noqa: E402
from mlpipe_jupyter.model import edits, validation  # noqa: E402
from mlpipe_jupyter.model.format import read_document  # noqa: E402
from mlpipe_jupyter.planning.planner import document_problems  # noqa: E402
from mlpipe_jupyter.sdk.experiment import plan_with_backends  # noqa: E402
from mlpipe_jupyter.sdk.pipeline import pipeline_to_document  # noqa: E402

SHAPES = ("chain", "reversed", "fan")
LINEAR_LIMIT = 20  # a 10x bigger pipeline may take up to this many times as long; quadratic is ~100x


def sdk_steps(shape: str, n: int, folder: str) -> list:
    if shape == "reversed":
        return sdk_steps("chain", n, folder)[::-1]
    if shape == "chain":
        steps, previous = [], None
        for i in range(n):
            out = PipelineData(f"d{i}")
            steps.append(PythonScriptStep("step.py", name=f"s{i}", source_directory=folder,
                                          arguments=["--out", out] + (["--in", previous] if previous else []),
                                          inputs=[previous] if previous else [], outputs=[out]))
            previous = out
        return steps
    source = PipelineData("d_source")
    steps = [PythonScriptStep("step.py", name="source", source_directory=folder, outputs=[source])]
    middle = [PipelineData(f"d{i}") for i in range(n - 2)]
    for i, out in enumerate(middle):
        steps.append(PythonScriptStep("step.py", name=f"s{i}", source_directory=folder, arguments=[source, out],
                                      inputs=[source], outputs=[out]))
    steps.append(PythonScriptStep("step.py", name="join", source_directory=folder, inputs=middle))
    return steps


def document_text(shape: str, n: int, folder: str) -> str:
    """A pipeline file as a user would write it (the format's JSON form)."""
    def step(name, inputs, outputs):
        return {"name": name, "script": "step.py", "source_directory": folder,
                "arguments": ["--in", {"data": inputs[0]}] if inputs else [],
                "inputs": [{"data": d} for d in inputs], "outputs": [{"data": d} for d in outputs]}

    if shape in ("chain", "reversed"):
        steps = [step(f"s{i}", [f"d{i - 1}"] if i else [], [f"d{i}"]) for i in range(n)]
        data = [f"d{i}" for i in range(n)]
        if shape == "reversed":
            steps.reverse()
    else:
        data = ["d_source"] + [f"d{i}" for i in range(n - 2)]
        steps = ([step("source", [], ["d_source"])] + [step(f"s{i}", ["d_source"], [f"d{i}"]) for i in range(n - 2)]
                 + [step("join", data[1:], [])])
    doc = {"version": 1, "parameters": {}, "steps": steps,
           "data": {d: {"kind": "pipeline_data", "is_directory": True} for d in data}}
    return json.dumps(doc)


def timed(fn):
    gc.collect()
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def measure(ws, folder: str, shape: str, n: int) -> dict[tuple[str, str], float]:
    """Seconds for each (entry, operation) at this shape and size."""
    out = {}
    t, steps = timed(lambda: sdk_steps(shape, n, folder))
    t2, pipeline = timed(lambda: Pipeline(ws, steps))
    out["sdk", "build"] = t + t2
    t, found = timed(pipeline.validate)
    assert not found, found[:3]
    out["sdk", "validate"] = t
    t, (plan, _) = timed(lambda: plan_with_backends(ws, pipeline_to_document(pipeline)))
    assert len(plan.steps) == n
    out["sdk", "plan"] = t

    text = document_text(shape, n, folder)
    path = Path(folder) / f"{shape}{n}.json"
    path.write_text(text)
    t, doc = timed(lambda: read_document(path))
    out["document", "build"] = t
    t, found = timed(lambda: validation.problems(doc) + document_problems(ws, doc))
    assert not found, found[:3]
    out["document", "validate"] = t
    t, (plan, _) = timed(lambda: plan_with_backends(ws, doc))
    assert len(plan.steps) == n
    out["document", "plan"] = t

    first = "source" if shape == "fan" else "s0"
    t, subset = timed(lambda: edits.subset(doc, first, onward=True))
    assert len(subset["steps"]) == n
    out["run-from", "build"] = t
    t, found = timed(lambda: validation.problems(subset) + document_problems(ws, subset))
    assert not found, found[:3]
    out["run-from", "validate"] = t
    t, (plan, _) = timed(lambda: plan_with_backends(ws, subset))
    assert len(plan.steps) == n and all(not s.allow_reuse for s in plan.steps.values())
    out["run-from", "plan"] = t
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[1000, 10000], metavar=("BASE", "BIG"))
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the median counts")
    args = parser.parse_args(argv)
    small, big = args.sizes
    folder = tempfile.mkdtemp(prefix="mlpipe-scale-")
    Path(folder, "step.py").write_text("print('never runs')\n")
    ws = Workspace.create("scale", path=folder, exist_ok=True)

    results: dict = {}
    for shape in SHAPES:
        for n in (small, big):
            runs = [measure(ws, folder, shape, n) for _ in range(args.repeat)]
            for key in runs[0]:
                results[(shape, n) + key] = statistics.median(r[key] for r in runs)
            print(f"measured {shape} of {n} steps", file=sys.stderr, flush=True)

    print(f"\n| entry | operation | shape | {small:,} steps | {big:,} steps | {big // small}x steps took "
          f"| µs per step at {big:,} |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    worst = 0.0
    for entry in ("sdk", "document", "run-from"):
        for op in ("build", "validate", "plan"):
            for shape in SHAPES:
                a, b = results[(shape, small, entry, op)], results[(shape, big, entry, op)]
                ratio = b / a if a > 0 else float("nan")
                worst = max(worst, ratio)
                print(f"| {entry} | {op} | {shape} | {a * 1000:.1f} ms | {b * 1000:.0f} ms | {ratio:.1f}x "
                      f"| {b / big * 1e6:.0f} |")
    verdict = "linear" if worst <= LINEAR_LIMIT * big / small / 10 else "NOT linear"
    print(f"\nworst growth {worst:.1f}x for {big // small}x the steps: {verdict} "
          f"(limit {LINEAR_LIMIT * big / small / 10:.0f}x)")
    return 0 if verdict == "linear" else 1


if __name__ == "__main__":
    raise SystemExit(main())
