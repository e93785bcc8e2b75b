"""Pipeline overhead of mlpipe-jupyter against bare launches, Ploomber and DVC, in one run.

Workloads (see benchmarks/README.md): chain30 (a full first run of 30 trivial steps), unchanged200
(a second run of a 200-step chain where nothing changed) and branches (two CPU-bound steps as
parallel branches vs. forced into a chain). Our pipeline runs through the ``mlpipe run`` command,
as the competitors run through theirs, and also through the Python API in one process (as a
notebook would). Ratios are against bare launches of the same interpreter measured in the same run.

    python benchmarks/pipeline_overhead.py [--cpu-seconds 1.0] [--no-competitors]
"""
from __future__ import annotations

import argparse
import compileall
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import competitors as comp  # noqa: E402

# A step reads its input file (if any) and writes one small file, as the competitors' steps do;
# only the paths come from the command line, because our data links are paths.
TRIVIAL = """import os, sys
src, dst = sys.argv[1], sys.argv[2]
prev = open(os.path.join(src, 'out')).read() if src != '-' else ''
open(os.path.join(dst, 'out'), 'w').write(prev[-16:] + dst)
"""


def cpu_script(work: int) -> str:
    body = comp.cpu_body("__DST__", work).replace("'__DST__'", "os.path.join(sys.argv[1], 'out')")
    return "import os, sys\n" + body


def build_chain(d: Path, n: int):
    """A saved n-step chain pipeline in d/pipeline.yaml (workspace in d)."""
    from mlpipe_jupyter import Pipeline, PipelineData, PythonScriptStep, Workspace

    ws = Workspace.create("bench", path=d, exist_ok=True)
    (d / "src").mkdir()
    (d / "src" / "step.py").write_text(TRIVIAL)
    steps, prev = [], None
    for name, _ in comp.chain(n):
        out = PipelineData(f"{name}_out")
        steps.append(PythonScriptStep("step.py", name=name, source_directory=str(d / "src"),
                                      arguments=[prev if prev else "-", out], inputs=[prev] if prev else [],
                                      outputs=[out]))
        prev = out
    pipeline = Pipeline(ws, steps)
    pipeline.save(d / "pipeline.yaml")
    return ws, pipeline


def build_branches(d: Path, work: int, chained: bool):
    from mlpipe_jupyter import Pipeline, PipelineData, PythonScriptStep, Workspace

    ws = Workspace.create("bench", path=d, exist_ok=True)
    (d / "src").mkdir()
    (d / "src" / "cpu.py").write_text(cpu_script(work))
    (d / "src" / "wait.py").write_text("")
    a_out, b_out = PipelineData("a_out"), PipelineData("b_out")
    a = PythonScriptStep("cpu.py", name="cpu_a", source_directory=str(d / "src"), arguments=[a_out], outputs=[a_out])
    extra = [a_out] if chained else []  # b waits for a only in the chained layout
    b = PythonScriptStep("cpu.py", name="cpu_b", source_directory=str(d / "src"), arguments=[b_out, *extra],
                         inputs=extra, outputs=[b_out])
    pipeline = Pipeline(ws, [a, b])
    pipeline.save(d / "pipeline.yaml")
    return ws, pipeline


def cli(d: Path) -> list:
    return [sys.executable, "-m", "mlpipe_jupyter.cli", "run", "pipeline.yaml", "--experiment", "bench"]


def check_all_reused(ws, n_expected):
    from mlpipe_jupyter import Experiment

    latest = next(iter(Experiment(ws, "bench").get_runs()))
    steps = latest.get_steps()
    if len(steps) != n_expected or not all(s.reused for s in steps):
        raise RuntimeError("the unchanged rerun did not reuse every step")


def measure_mlpipe_cli(workdir: Path, cpu_work: int) -> dict:
    res = {}
    d = comp.fresh_dir(workdir, "mlpipe-chain30")
    build_chain(d, 30)
    res["chain30"] = comp.run(cli(d), d)

    d = comp.fresh_dir(workdir, "mlpipe-unchanged200")
    ws, _ = build_chain(d, 200)
    comp.run(cli(d), d)
    res["unchanged200"] = comp.run(cli(d), d)
    check_all_reused(ws, 200)

    for layout, chained in (("branches_parallel", False), ("branches_chain", True)):
        d = comp.fresh_dir(workdir, f"mlpipe-{layout}")
        build_branches(d, cpu_work, chained)
        res[layout] = comp.run(cli(d), d)
    return res


def measure_mlpipe_api(workdir: Path) -> dict:
    """In one process, as from a notebook: submit and wait, no interpreter start or YAML load."""
    from mlpipe_jupyter import Experiment

    def timed(ws, pipeline):
        t0 = time.perf_counter()
        Experiment(ws, "bench").submit(pipeline).wait_for_completion()
        return time.perf_counter() - t0

    res = {}
    ws, p = build_chain(comp.fresh_dir(workdir, "api-chain30"), 30)
    res["chain30"] = timed(ws, p)
    ws, p = build_chain(comp.fresh_dir(workdir, "api-unchanged200"), 200)
    timed(ws, p)
    res["unchanged200"] = timed(ws, p)
    check_all_reused(ws, 200)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-seconds", type=float, default=1.0)
    ap.add_argument("--no-competitors", action="store_true", help="only mlpipe and the bare baseline")
    args = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="mlpipe-bench-"))
    # Bytecode for the package, as an installed one has (an editable install has none, and with
    # PYTHONDONTWRITEBYTECODE set every `mlpipe run` would compile its modules again); the
    # competitors are pip-installed, which compiles theirs.
    compileall.compile_dir(str(REPO / "mlpipe_jupyter"), quiet=1)
    try:
        marks = comp.cpu_marks()
        cpu_work = comp.calibrate_cpu_work(args.cpu_seconds)
        base = comp.measure_baselines(workdir)
        tools = {"mlpipe (CLI)": measure_mlpipe_cli(workdir, cpu_work)}
        api = measure_mlpipe_api(workdir)
        if not args.no_competitors:
            comp.ensure_competitor_venv()
            venv_base = comp.measure_baselines(workdir, comp.venv_python(), label="bare-venv")
            tools["ploomber"] = comp.measure_ploomber(workdir, cpu_work)
            tools["dvc"] = comp.measure_dvc(workdir, cpu_work)
        foreign = comp.foreign_cpu_since(marks)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"bare launch {base['bare_launch'] * 1000:.1f} ms, 30 bare launches {base['bare30']:.3f} s; "
          f"CPU step ~{args.cpu_seconds} s; CPU used by other processes: "
          f"{'n/a' if foreign is None else f'{foreign:.1f} s'}")
    if not args.no_competitors:
        print(f"competitors' venv: bare launch {venv_base['bare_launch'] * 1000:.1f} ms, "
              f"30 launches {venv_base['bare30']:.3f} s (their ratios use these); versions {comp.competitor_versions()}")
    names = list(tools)
    print(f"\n{'':36s}" + "".join(f"{n:>14s}" for n in names))
    for key in ("chain30", "unchanged200", "branches_parallel", "branches_chain"):
        print(f"{key + ' (s)':36s}" + "".join(f"{tools[n][key]:>14.3f}" for n in names))
    for n in names:
        b = base if n.startswith("mlpipe") else venv_base
        tools[n]["ratios"] = comp.ratios(tools[n], b)
    for key in tools[names[0]]["ratios"]:
        print(f"{key:36s}" + "".join(f"{tools[n]['ratios'][key]:>13.2f}x" for n in names))
    print(f"\nmlpipe (Python API, one process): chain30 {api['chain30']:.3f} s = "
          f"{api['chain30'] / base['bare30']:.2f}x bare30; unchanged200 {api['unchanged200'] * 1000:.0f} ms = "
          f"{api['unchanged200'] / base['bare_launch']:.2f} bare launches")
    print("goals: chain30/bare30 <= 1.3x; unchanged200 < 10 bare launches; branches speedup >= 1.8x on 2 cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
