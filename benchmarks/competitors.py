"""Time the same small pipelines under Ploomber, DVC and a bare interpreter.

Why: our claims about launch overhead, reuse and parallel branches only mean
something next to the tools people would otherwise use, measured on the same
machine, in the same run, against the cost of merely starting Python.

Competitors live in a throwaway venv (never the project's environment) and are
driven through their own CLIs, one fresh directory per workload.  Every step
script is written by the shared helpers below, so the step bodies are
byte-identical across tools; only each tool's wiring differs.

Run alone:  python3 benchmarks/competitors.py [--cpu-seconds 1.5] [--json out.json]
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CACHE = Path.home() / ".cache" / "mlpipe-bench"
VENV = CACHE / "venv-competitors"
COMPETITORS = ("ploomber", "dvc")
# What the venv holds, pinned so that runs compare: the tools, and pandas and scikit-learn for step bodies
# that import them (warm_start.py), at the versions of the project's own environment.
PINNED = ("ploomber==0.23.3", "dvc==3.67.1", "pandas==3.1.1", "scikit-learn==1.9.1")

# The tools phone home unless told not to; a benchmark must never wait on the
# network (none is reachable here, so a probe would only add timeouts).
QUIET_ENV = {
    "DVC_NO_ANALYTICS": "1",  # analytics report sent by a daemon after each command
    "DVC_STUDIO_OFFLINE": "true",  # no Studio live-metrics calls
    "PLOOMBER_STATS_ENABLED": "false",  # telemetry
    "PLOOMBER_VERSION_CHECK_DISABLED": "1",  # else a pypi.org probe runs even with stats off
    "PLOOMBER_HOME_DIR": str(CACHE / "ploomber-home"),  # keep its uid/config out of ~
}


# ---------------------------------------------------------------- step scripts
# Shared by every tool (and reusable for our own tool): the text of a step is
# fixed here so that no tool gets a cheaper body than another.

def trivial_body(src: str | None, dst: str) -> str:
    """Body of a chain step: read the previous step's file (if any), write one small file."""
    read = f"prev = open({src!r}).read()\n" if src else "prev = ''\n"
    return read + f"open({dst!r}, 'w').write(prev[-16:] + {dst!r})\n"


def cpu_body(dst: str, work: int) -> str:
    """Body of a CPU-bound step: a pure-Python loop (holds the GIL, so only processes help)."""
    return (
        "def spin(n):\n"
        "    total = 0\n"
        "    for i in range(n):\n"
        "        total += i * i % 7\n"
        "    return total\n"
        f"open({dst!r}, 'w').write(str(spin({work})))\n"
    )


def make_trivial_script(path: Path, src: str | None, dst: str, header: str = "") -> Path:
    """Write a trivial chain step to `path`; `header` is a tool's own preamble."""
    path.write_text(header + trivial_body(src, dst))
    return path


def make_cpu_script(path: Path, dst: str, work: int, header: str = "") -> Path:
    """Write a CPU-bound step to `path`; `header` is a tool's own preamble."""
    path.write_text(header + cpu_body(dst, work))
    return path


def calibrate_cpu_work(seconds: float) -> int:
    """Loop count that makes cpu_body take about `seconds` here, so results are
    comparable across machines in wall time rather than in iterations."""
    probe = 2_000_000
    with tempfile.TemporaryDirectory() as tmp:
        code = compile(cpu_body(os.path.join(tmp, "x"), probe), "cpu_step", "exec")
        t0 = time.perf_counter()
        exec(code, {})
        took = time.perf_counter() - t0
    return max(1, int(probe * seconds / took))


# ---------------------------------------------------------------- plumbing

def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_competitor_venv() -> Path:
    """Create (or reuse) the venv holding Ploomber and DVC; return its bin dir.

    Reused as is when everything imports, so repeated runs cost no install time."""
    py = venv_python()
    if py.exists() and subprocess.run([py, "-c", "import ploomber, dvc, pandas, sklearn"],
                                      capture_output=True).returncode == 0:
        return py.parent
    print(f"installing {', '.join(PINNED)} into {VENV} ...", file=sys.stderr)
    CACHE.mkdir(parents=True, exist_ok=True)
    if not py.exists():  # an existing venv only gets what it lacks
        subprocess.run([sys.executable, "-m", "venv", "--clear", VENV], check=True)
    subprocess.run([py, "-m", "pip", "install", "-qq", "--disable-pip-version-check",
                    *PINNED], check=True)
    return py.parent


def competitor_versions() -> dict:
    out = subprocess.run(
        [venv_python(), "-c", "import importlib.metadata as m, json;"
         f"print(json.dumps({{p: m.version(p) for p in {list(COMPETITORS)!r}}}))"],
        capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def cpu_marks() -> tuple[float, float] | None:
    """(CPU seconds used by the whole machine, by this process and its children).

    On 2 cores anything else running skews the timings, the branch speedup most;
    the difference of the two deltas is what others used.  Linux only."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:9]]
    except OSError:
        return None
    busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
    ours = sum(ru.ru_utime + ru.ru_stime for ru in (resource.getrusage(resource.RUSAGE_SELF),
                                                    resource.getrusage(resource.RUSAGE_CHILDREN)))
    return busy, ours


def foreign_cpu_since(marks: tuple[float, float] | None) -> float | None:
    now = cpu_marks()
    if marks is None or now is None:
        return None
    return max(0.0, (now[0] - marks[0]) - (now[1] - marks[1]))


def tool_env() -> dict:
    return {**os.environ, **QUIET_ENV}


def run(cmd: list, cwd: Path, env: dict | None = None) -> float:
    """Run a command, fail loudly with its output, return wall seconds."""
    t0 = time.perf_counter()
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if res.returncode:
        raise RuntimeError(f"{cmd} failed in {cwd}:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return took


def fresh_dir(workdir: Path, name: str) -> Path:
    d = Path(workdir) / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


def chain(n: int) -> list[tuple[str, str | None]]:
    """(step name, upstream name) for an n-step linear chain."""
    names = [f"s{i:03d}" for i in range(n)]
    return list(zip(names, [None] + names[:-1]))


def chain_steps(n: int) -> list[tuple[str, str | None, str]]:
    """(name, upstream, script body) for an n-step chain of trivial steps."""
    return [(name, up, trivial_body(up and out_of(up), out_of(name))) for name, up in chain(n)]


def branch_steps(cpu_work: int, chained: bool) -> list[tuple[str, str | None, str]]:
    """Two identical CPU steps, independent or with b forced to wait for a."""
    return [("cpu_a", None, cpu_body(out_of("cpu_a"), cpu_work)),
            ("cpu_b", "cpu_a" if chained else None, cpu_body(out_of("cpu_b"), cpu_work))]


def out_of(name: str) -> str:
    return name + ".out"


def check_outputs(d: Path, names) -> None:
    """A tool that exits 0 without running its steps must not pass as fast."""
    missing = [n for n in names if not (d / out_of(n)).exists()]
    if missing:
        raise RuntimeError(f"steps produced no output in {d}: {missing}")


def snapshot(d: Path, names) -> dict:
    """mtimes of the outputs: a second run that really reused everything leaves them alone."""
    return {n: (d / out_of(n)).stat().st_mtime_ns for n in names}


def timed_unchanged(d: Path, cmd: list, env: dict, names) -> float:
    """Warm run, then the timed no-op run; checks that nothing was rewritten."""
    run(cmd, d, env)
    check_outputs(d, names)
    before = snapshot(d, names)
    took = run(cmd, d, env)
    if snapshot(d, names) != before:
        raise RuntimeError(f"{cmd[0]} re-ran steps although nothing changed ({d})")
    return took


# ---------------------------------------------------------------- baselines

def measure_baselines(workdir: Path, python: str | os.PathLike = sys.executable,
                      launches: int = 15, label: str = "bare") -> dict:
    """bare_launch: median start+exit of a trivial script; bare30: 30 such launches
    in a row, i.e. the floor for chain30 that no process-per-step tool can beat."""
    d = fresh_dir(workdir, label)
    script = make_trivial_script(d / "step.py", None, "x.out")
    launch = [run([python, script], d) for _ in range(launches)]
    return {"bare_launch": statistics.median(launch), "bare30": bare_chain30(workdir, python, label + "-chain")}


def bare_chain30(workdir: Path, python: str | os.PathLike = sys.executable, label: str = "bare-chain") -> float:
    """Seconds of the chain30 scripts launched one after the other, each in a fresh interpreter."""
    d = fresh_dir(workdir, label)
    for name, up in chain(30):
        make_trivial_script(d / f"{name}.py", up and out_of(up), out_of(name))
    return sum(run([python, d / f"{name}.py"], d) for name, _ in chain(30))


# ---------------------------------------------------------------- any tool

def measure_tool(workdir: Path, tool: str, build, cmd: list, env: dict, cpu_work: int) -> dict:
    """The same four workloads for any tool; `build(dir, steps, parallel)` lays out
    its project and `cmd` runs the whole pipeline in that directory."""
    res = {}
    d = fresh_dir(workdir, f"{tool}-chain30")
    build(d, chain_steps(30), False)
    res["chain30"] = run(cmd, d, env)
    check_outputs(d, [n for n, _ in chain(30)])

    d = fresh_dir(workdir, f"{tool}-unchanged200")
    build(d, chain_steps(200), False)
    res["unchanged200"] = timed_unchanged(d, cmd, env, [n for n, _ in chain(200)])

    for layout, chained in (("branches_parallel", False), ("branches_chain", True)):
        d = fresh_dir(workdir, f"{tool}-{layout}")
        build(d, branch_steps(cpu_work, chained), True)
        res[layout] = run(cmd, d, env)
        check_outputs(d, ["cpu_a", "cpu_b"])
    return res


# ---------------------------------------------------------------- Ploomber

def _ploomber_header(up: str | None) -> str:
    """Ploomber learns dependencies from the script's parameters cell."""
    upstream = repr([up]) if up else "None"
    return f'# + tags=["parameters"]\nupstream = {upstream}\nproduct = None\n# -\n\n'


def _ploomber_project(d: Path, steps: list[tuple[str, str | None, str]], parallel: bool):
    """steps: (name, upstream, body).  ScriptRunner runs each .py as a plain
    `python` subprocess, the like-for-like choice (the default NotebookRunner
    would start a Jupyter kernel per step)."""
    tasks = []
    for name, up, body in steps:
        (d / f"{name}.py").write_text(_ploomber_header(up) + body)
        tasks.append({"source": f"{name}.py", "name": name, "class": "ScriptRunner",
                      "product": out_of(name)})
    spec = {"tasks": tasks}
    if parallel:
        spec["executor"] = {"dotted_path": "ploomber.executors.Parallel", "processes": 2}
    (d / "pipeline.yaml").write_text(json.dumps(spec, indent=1))  # JSON is valid YAML


def measure_ploomber(workdir: Path, cpu_work: int) -> dict:
    """Ploomber through `ploomber build`; serial executor for chains (its default),
    Parallel(processes=2) for both branch layouts so only the dependency differs.
    Its Parallel executor polls for ready tasks without sleeping, so on 2 cores
    the parent eats one and the branch speedup stays well under 2x."""
    cmd = [ensure_competitor_venv() / "ploomber", "build"]
    return measure_tool(workdir, "ploomber", _ploomber_project, cmd, tool_env(), cpu_work)


# ---------------------------------------------------------------- DVC

def _dvc_project(d: Path, steps: list[tuple[str, str | None, str]], parallel: bool,
                 python: Path):
    """A git+DVC repo (the usual setup) with one stage per script; deps name the
    script and the upstream output, outs the step's file (cached by DVC, its default).
    `parallel` is ignored: `dvc repro` runs stages one at a time whatever the graph."""
    env = tool_env()
    run(["git", "init", "-q"], d)
    run([python.parent / "dvc", "init", "-q"], d, env)
    stages = {}
    for name, up, body in steps:
        (d / f"{name}.py").write_text(body)
        stages[name] = {"cmd": f"{shlex.quote(str(python))} {name}.py",
                        "deps": [f"{name}.py"] + ([out_of(up)] if up else []),
                        "outs": [out_of(name)]}
    (d / "dvc.yaml").write_text(json.dumps({"stages": stages}, indent=1))


def measure_dvc(workdir: Path, cpu_work: int) -> dict:
    """DVC through `dvc repro`.  Steps run with the venv's interpreter, the same one
    Ploomber uses, so both tools pay the same per-launch price.  `dvc repro` has no
    parallel mode, so branches_parallel is expected to cost as much as the chain."""
    python = ensure_competitor_venv() / "python"
    cmd = [python.parent / "dvc", "repro", "-q"]
    env = {**tool_env(), "DVC_SITE_CACHE_DIR": str(Path(workdir) / "dvc-site-cache")}
    build = functools.partial(_dvc_project, python=python)
    return measure_tool(workdir, "dvc", build, cmd, env, cpu_work)


# ---------------------------------------------------------------- report

def ratios(tool: dict, base: dict) -> dict:
    return {"chain30/bare30": tool["chain30"] / base["bare30"],
            "unchanged200/bare_launch": tool["unchanged200"] / base["bare_launch"],
            "branches_chain/branches_parallel": tool["branches_chain"] / tool["branches_parallel"]}


def measure_all(workdir: Path, cpu_seconds: float = 1.5) -> dict:
    """Everything in one run.  Two baselines: the project's interpreter (what
    `subprocess.run([sys.executable, ...])` costs for us) and the competitors'
    venv interpreter (what their steps launch); competitor ratios use the latter."""
    ensure_competitor_venv()
    marks = cpu_marks()
    cpu_work = calibrate_cpu_work(cpu_seconds)
    out = {"cpu_work": cpu_work, "versions": competitor_versions(),
           "baseline": measure_baselines(workdir),
           "baseline_venv": measure_baselines(workdir, venv_python(), label="bare-venv")}
    for name, fn in (("ploomber", measure_ploomber), ("dvc", measure_dvc)):
        out[name] = fn(workdir, cpu_work)
        out[name + "_ratios"] = ratios(out[name], out["baseline_venv"])
    out["foreign_cpu_s"] = foreign_cpu_since(marks)
    return out


def print_table(r: dict) -> None:
    """One column per tool: raw seconds first, then the ratios."""
    print(f"cpu_work={r['cpu_work']} iterations; versions: {r['versions']}")
    other = r["foreign_cpu_s"]
    if other is not None:
        note = "  WARNING: machine was shared, rerun when idle" if other > 5 else ""
        print(f"CPU used by other processes during the run: {other:.1f}s{note}")
    for key in ("baseline", "baseline_venv"):
        b = r[key]
        print(f"{key:14s} bare_launch={b['bare_launch']:.4f}s  bare30={b['bare30']:.3f}s")
    print(f"\n{'':34s}" + "".join(f"{t:>10s}" for t in COMPETITORS))
    for c in ("chain30", "unchanged200", "branches_parallel", "branches_chain"):
        print(f"{c + ' (s)':34s}" + "".join(f"{r[t][c]:>10.3f}" for t in COMPETITORS))
    for c in r[COMPETITORS[0] + "_ratios"]:
        print(f"{c:34s}" + "".join(f"{r[t + '_ratios'][c]:>9.2f}x" for t in COMPETITORS))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-seconds", type=float, default=1.5, help="target length of one CPU step")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="mlpipe-bench-"))
    try:
        results = measure_all(workdir, args.cpu_seconds)
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
