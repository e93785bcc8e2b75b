"""Warm starts against cold ones, Ploomber, DVC and bare launches, in one run.

Why: a step that imports pandas and scikit-learn spends most of its time importing them in a fresh
interpreter. Warm starts (MLPIPE_WARM_START=1) fork steps from a process that has imported them already;
this measures what that buys against every step starting cold (MLPIPE_WARM_START=0), on the same work.

Workloads, each in a fresh workspace (nothing is reused), each setting in its own process so the setting
is read fresh:
- ml3: 3 chained steps; each imports pandas and sklearn, reads the previous step's CSV, fits a tiny
  scikit-learn model on iris-like numbers and writes a CSV. Every step prints time.time() as its first
  line (before its imports) and again once the imports are done; with the run history's start of each
  step (get_details()["startTimeUtc"]) that gives each step's start.
- chain30: the 30-step chain of trivial steps (pipeline_overhead.py's), against 30 bare launches of the
  same scripts, which run in the same rounds (each interpreter's own: ours, and the competitors' venv).
Ploomber and DVC run both on the same step bodies (competitors.py), in turns with ours.

The first run in a process also starts the warm-start helper, so it is shown apart from the reruns that
follow it in the same process (a notebook session's edit-run loop).

    python benchmarks/warm_start.py [--repeats 2] [--no-competitors] [--json FILE]
"""
from __future__ import annotations

import argparse
import compileall
import contextlib
import datetime as dt
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
import competitors as comp  # noqa: E402
import pipeline_overhead as po  # noqa: E402

SETTING = "MLPIPE_WARM_START"
FIRST, READY = "bench-first-line", "bench-imports-done"
RESULT = "bench-result "  # a child's line of figures
COLD_IMPORT = "import time; t=time.perf_counter(); import pandas, sklearn; print(time.perf_counter()-t)"


def ml_body(src: str, dst: str) -> str:
    """The pandas/scikit-learn step for every tool; `src` and `dst` are Python expressions for the
    previous step's CSV (None for the first step) and this step's, the only text that differs."""
    return (
        f"import time; print({FIRST!r}, repr(time.time()), flush=True)\n"
        "import pandas, sklearn\n"
        f"print({READY!r}, repr(time.time()), flush=True)\n"
        "import os, sys\n"
        "from sklearn.linear_model import LogisticRegression\n"
        f"src, dst = {src}, {dst}\n"
        "if src is None:  # iris-like: 3 species of 50, 4 measurements around each species' means\n"
        "    import numpy as np\n"
        "    rng = np.random.default_rng(0)\n"
        "    means = np.array([[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])\n"
        "    X = np.vstack([m + 0.3 * rng.standard_normal((50, 4)) for m in means])\n"
        "    df = pandas.DataFrame(X, columns=['sl', 'sw', 'pl', 'pw'])\n"
        "    df['species'] = np.repeat([0, 1, 2], 50)\n"
        "else:\n"
        "    df = pandas.read_csv(src)\n"
        "features = df[['sl', 'sw', 'pl', 'pw']]\n"
        "df['pred'] = LogisticRegression(max_iter=500).fit(features, df['species']).predict(features)\n"
        "df.to_csv(dst, index=False)\n"
    )


def ml_steps() -> list[tuple[str, str | None, str]]:
    """(name, upstream, body) for the competitors: files in the project folder, as their chains use."""
    return [(name, up, ml_body(repr(comp.out_of(up)) if up else "None", repr(comp.out_of(name))))
            for name, up in comp.chain(3)]


# ---------------------------------------------------------------- our pipeline (in a child process)

def build_ml(d: Path):
    from mlpipe_jupyter import Pipeline, PipelineData, PythonScriptStep, Workspace

    ws = Workspace.create("bench", path=d, exist_ok=True)
    (d / "src").mkdir()
    (d / "src" / "step.py").write_text(ml_body(
        "os.path.join(sys.argv[1], 'data.csv') if sys.argv[1] != '-' else None",
        "os.path.join(sys.argv[2], 'data.csv')"))
    steps, prev = [], None
    for name, _ in comp.chain(3):
        out = PipelineData(f"{name}_out")
        steps.append(PythonScriptStep("step.py", name=name, source_directory=str(d / "src"),
                                      arguments=[prev or "-", out], inputs=[prev] if prev else [],
                                      outputs=[out], allow_reuse=False))
        prev = out
    return ws, Pipeline(ws, steps)


def epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def marks(details: dict) -> dict:
    """The step's printed first-line and imports-done times, from its log."""
    log = next(p for name, p in details["logFiles"].items() if name.endswith("std_log.txt"))
    text = Path(log).read_text(errors="replace")
    return {k: float(m.group(1)) for k in (FIRST, READY) if (m := re.search(re.escape(k) + r" '?([\d.]+)", text))}


def timed_run(ws, pipeline, names: list[str], per_step: bool) -> dict:
    """Submit and wait in this process, as a notebook does; with per_step, each step's start figures."""
    from mlpipe_jupyter import Experiment

    submitted = time.time()
    t0 = time.perf_counter()
    run = Experiment(ws, "bench").submit(pipeline)
    run.wait_for_completion()
    out = {"wall": time.perf_counter() - t0, "steps": []}
    if run.get_status() != "Completed":
        raise RuntimeError(f"the pipeline failed: {run.get_details().get('error')}")
    by_name = {s.name: s for s in run.get_steps()}
    if any(by_name[n].reused for n in names):
        raise RuntimeError("a step was reused; every step must run")
    prev_end = submitted
    for name in names:
        d = by_name[name].get_details()
        start, end = epoch(d["startTimeUtc"]), epoch(d["endTimeUtc"])
        step = {"warm": (d.get("start") or {}).get("warm"),  # None: this version does not say
                "took": end - start, "gap": start - prev_end}  # in the history; the first gap is from submit
        if per_step:
            m = marks(d)
            step.update(first_since_start=m[FIRST] - start, ready_since_start=m[READY] - start,
                        first_since_prev_end=m[FIRST] - prev_end)
        out["steps"].append(step)
        prev_end = end
    return out


def child(workload: str, workdir: Path) -> None:
    """One run of the workload per line read, its figures written back: one process per setting lives
    through all its runs (as a notebook kernel does), while the parent alternates the two settings."""
    names = [n for n, _ in comp.chain(3 if workload == "ml3" else 30)]
    for i, _ in enumerate(sys.stdin):
        d = comp.fresh_dir(workdir, f"{workload}-{i}")
        ws, pipeline = build_ml(d) if workload == "ml3" else po.build_chain(d, 30)
        print(RESULT + json.dumps(timed_run(ws, pipeline, names, per_step=workload == "ml3")), flush=True)


def measure(workload: str, repeats: int, workdir: Path, tools: tuple[str, ...]) -> dict:
    """In rounds: each round runs cold, warm and each competitor once, in turns that rotate, so load
    from elsewhere on the machine falls on all alike. Ours: a first round, then `repeats` reruns in the
    same process per setting; the competitors run in the rerun rounds, each time in a fresh folder."""
    procs = {s: subprocess.Popen([sys.executable, __file__, "--child", workload, "--workdir",
                                  str(workdir / f"{workload}-{s}")], cwd=REPO, text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, SETTING: s})
             for s in ("0", "1")}
    # chain30's floor, 30 bare launches, runs in the rounds too, of each interpreter measured against it
    floors = {"bare": sys.executable, **({"bare-venv": comp.venv_python()} if tools else {})} \
        if workload == "chain30" else {}
    out = {**{s: {"runs": []} for s in procs}, **{t: [] for t in [*tools, *floors]}}
    try:
        for i in range(repeats + 1):
            turns = [*procs, *(tools if i else ()), *(floors if i else ())]
            for who in turns[i % len(turns):] + turns[:i % len(turns)]:
                if who in tools:
                    out[who].append(competitor_run(who, workload, comp.fresh_dir(workdir, f"{who}-{workload}-{i}")))
                    continue
                if who in floors:
                    out[who].append(comp.bare_chain30(workdir, floors[who], f"{who}-{i}"))
                    continue
                procs[who].stdin.write("run\n")
                procs[who].stdin.flush()
                line = next((x for x in procs[who].stdout if x.startswith(RESULT)), None)
                if line is None:
                    raise RuntimeError(f"the {SETTING}={who} process ended early (its errors are above)")
                out[who]["runs"].append(json.loads(line[len(RESULT):]))
    finally:
        for proc in procs.values():
            with contextlib.suppress(BrokenPipeError):  # one that failed has gone already
                proc.stdin.close()
            proc.wait()
    return out


# ---------------------------------------------------------------- competitors, baselines

def competitor_run(tool: str, workload: str, d: Path) -> float:
    """Wall seconds of one full run of the workload under Ploomber or DVC in the empty folder d."""
    bin_dir = comp.ensure_competitor_venv()
    steps = ml_steps() if workload == "ml3" else comp.chain_steps(30)
    if tool == "ploomber":
        comp._ploomber_project(d, steps, False)
        cmd, env = [bin_dir / "ploomber", "build"], comp.tool_env()
    else:
        comp._dvc_project(d, steps, False, python=bin_dir / "python")
        cmd = [bin_dir / "dvc", "repro", "-q"]
        env = {**comp.tool_env(), "DVC_SITE_CACHE_DIR": str(d.parent / "dvc-site-cache")}
    took = comp.run(cmd, d, env)
    comp.check_outputs(d, [n for n, _, _ in steps])
    return took


def cold_import(python, n: int = 5) -> float:
    """Median seconds of `import pandas, sklearn` in a fresh interpreter."""
    return statistics.median(float(subprocess.run([str(python), "-c", COLD_IMPORT], capture_output=True,
                                                  text=True, check=True).stdout) for _ in range(n))


# ---------------------------------------------------------------- report

def med(xs):
    return statistics.median(xs) if xs else float("nan")


def summarize(r: dict) -> dict:
    """First run and the median of the reruns, per setting."""
    first, reruns = r["runs"][0], r["runs"][1:] or r["runs"][:1]
    s = {"first": first["wall"], "rerun": med([x["wall"] for x in reruns]),
         "warm": [st["warm"] for x in reruns for st in x["steps"]],
         "took": med([st["took"] for x in reruns for st in x["steps"]]),
         "gap": med([st["gap"] for x in reruns for st in x["steps"][1:]])}
    if "first_since_start" in first["steps"][0]:
        for key in ("first_since_start", "ready_since_start", "first_since_prev_end"):
            s[key] = [med([x["steps"][i][key] for x in reruns]) for i in range(len(first["steps"]))]
            s[key + "_first_run"] = [st[key] for st in first["steps"]]
    return s


def cell(v, unit: str = "") -> str:
    if isinstance(v, str):
        return f"{v:>12s}"
    return f"{v:>11.2f}x" if unit == "x" else f"{v:>12.3f}"


def started_warm(s: dict) -> str:
    """How many steps get_details() says started warm; n/a when it does not say (before warm starts)."""
    if all(w is None for w in s["warm"]):
        return "n/a"
    return f"{sum(bool(w) for w in s['warm'])}/{len(s['warm'])}"


def cold_note(s: dict) -> str:
    return "" if any(s["warm"]) else "\n      no step started warm: the warm column measured cold starts"


def report(r: dict, repeats: int) -> None:
    cold_imp, base = r["cold_import"], r["baseline"]
    other = r["foreign_cpu_s"]
    print(f"MLPIPE_WARM_START=0 (cold) against =1 (warm); a first run then {repeats} reruns per process; "
          f"CPU used by other processes: {'n/a' if other is None else f'{other:.1f} s'}"
          + ("  WARNING: machine was shared, rerun when idle" if other and other > 5 else ""))
    print(f"cold `import pandas, sklearn` in a bare interpreter (median of 5): {cold_imp:.3f} s; "
          f"bare launch {base['bare_launch'] * 1000:.1f} ms, 30 bare launches {base['bare30']:.3f} s")
    tools = [t for t in comp.COMPETITORS if t in r["ml3"]]
    if tools:
        print(f"competitors' venv: 30 bare launches {r['baseline_venv']['bare30']:.3f} s (their chain30 "
              f"ratio uses it); versions {r['versions']}")
    for wl, title in (("ml3", "3-step pandas/scikit-learn chain"), ("chain30", "30-step trivial chain")):
        c, w = summarize(r[wl]["0"]), summarize(r[wl]["1"])
        runs = {t: med(r[wl][t]) for t in tools}
        print(f"\n{title:46s}" + "".join(cell(x) for x in ["cold (=0)", "warm (=1)", *tools]))
        print(f"{'first run in a process (s)':46s}" + cell(c["first"]) + cell(w["first"]) + cell("-") * len(tools))
        print(f"{'reruns, median (s) [competitors: runs]':46s}" + cell(c["rerun"]) + cell(w["rerun"])
              + "".join(cell(runs[t]) for t in tools))
        print(f"{'steps started warm, reruns (get_details)':46s}" + cell(started_warm(c)) + cell(started_warm(w)))
        if wl == "chain30":  # against the floor measured in the same rounds (median)
            ours, floor = med(r[wl]["bare"]), {t: med(r[wl]["bare-venv"]) for t in tools}
            print(f"{'30 bare launches in the same rounds (s)':46s}" + cell(ours) + cell(ours)
                  + "".join(cell(floor[t]) for t in tools))
            print(f"{'/ 30 bare launches of its interpreter':46s}" + cell(c["rerun"] / ours, "x")
                  + cell(w["rerun"] / ours, "x") + "".join(cell(runs[t] / floor[t], "x") for t in tools))
            print(f"{'step start to end in the history, median (ms)':46s}" + cell(c["took"] * 1000)
                  + cell(w["took"] * 1000))
            print(f"{'a step end to the next start, median (ms)':46s}" + cell(c["gap"] * 1000) + cell(w["gap"] * 1000))
            ratio = w["rerun"] / ours
            print(f"goal: warm chain30 <= 1.0x 30 bare launches: {ratio:.2f}x ({'met' if ratio <= 1.0 else 'not met'})"
                  + cold_note(w))
            continue
        print(f"{'/ cold rerun':46s}" + cell(1.0, "x") + cell(w["rerun"] / c["rerun"], "x")
              + "".join(cell(runs[t] / c["rerun"], "x") for t in tools))
        print("per step, reruns' median in ms (first run's in brackets):")
        for key, label in (("first_since_start", "first line - history start"),
                           ("ready_since_start", "imports done - history start"),
                           ("first_since_prev_end", "first line - previous step's end")):
            for s, name in ((c, "cold"), (w, "warm")):
                print(f"  {label + ', ' + name:44s}" + "".join(f"{v * 1000:>8.0f}" for v in s[key])
                      + "   [" + " ".join(f"{v * 1000:.0f}" for v in s[key + "_first_run"]) + "]")
        first, ready = max(w["first_since_start"]) / cold_imp, max(w["ready_since_start"]) / cold_imp
        print(f"goal: each warm step's start < 0.1x the cold import, worst step of the reruns: first line "
              f"{first:.3f}x, imports done {ready:.3f}x ({'met' if ready < 0.1 else 'not met'}; judged on "
              f"imports done, since a cold step prints its first line before importing)" + cold_note(w))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2, help="reruns after the first run (competitors: runs)")
    ap.add_argument("--no-competitors", action="store_true", help="without Ploomber and DVC")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--child", choices=["ml3", "chain30"], help=argparse.SUPPRESS)
    ap.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.workdir)
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="mlpipe-bench-"))
    package = Path(importlib.util.find_spec("mlpipe_jupyter").origin).parent  # the one the children import
    compileall.compile_dir(str(package), quiet=1)  # as pipeline_overhead.py, for the same reason
    try:
        cpu = comp.cpu_marks()
        r = {"cold_import": cold_import(sys.executable), "baseline": comp.measure_baselines(workdir)}
        tools = () if args.no_competitors else comp.COMPETITORS
        if tools:
            comp.ensure_competitor_venv()
            r["versions"] = comp.competitor_versions()
            r["baseline_venv"] = comp.measure_baselines(workdir, comp.venv_python(), label="bare-venv")
        for wl in ("ml3", "chain30"):
            r[wl] = measure(wl, max(1, args.repeats), workdir, tools)
        r["foreign_cpu_s"] = comp.foreign_cpu_since(cpu)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report(r, max(1, args.repeats))
    if args.json:
        args.json.write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
