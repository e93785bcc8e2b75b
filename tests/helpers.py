"""Helpers for the end-to-end tests that run real pipelines in subprocesses."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from mlpipe_jupyter import Experiment, Pipeline

# A guard against hangs only; no test asserts on how long anything took.
WAIT_SECONDS = 60


def submit(ws, steps, experiment="e2e", **kwargs):
    return Experiment(ws, experiment).submit(Pipeline(ws, steps), **kwargs)


def run_pipeline(ws, steps, experiment="e2e", **kwargs):
    """Submit, wait for the end without raising, and return the run."""
    run = submit(ws, steps, experiment, **kwargs)
    run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)
    return run


def steps_by_name(run) -> dict:
    return {s.name: s for s in run.get_steps()}


def statuses(run) -> dict:
    return {s.name: s.get_status() for s in run.get_steps()}


def reused(run) -> dict:
    return {s.name: s.reused for s in run.get_steps()}


def wait_until(predicate, what: str, timeout: float = WAIT_SECONDS, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"gave up waiting for {what}")


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def pids_with(marker) -> list[int]:
    """Live processes whose command line mentions ``marker`` (say, a file path a step got as argument).

    A local step runs in a PID namespace of its own, so what it reports as its pid means nothing out
    here; its command line is how a test finds it."""
    marker = str(marker).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in cmdline and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def read_json(path):
    return json.loads(Path(path).read_text())


# A three-step chain, each step in its own source directory: prep -> train -> evaluate.
# Every script appends its name to a trace file, so a test can tell which steps really ran.
CHAIN_SCRIPTS = {
    "prep/prep.py": """
        import argparse, os
        p = argparse.ArgumentParser()
        p.add_argument("--out"); p.add_argument("--n", type=int); p.add_argument("--trace")
        a = p.parse_args()
        open(a.trace, "a").write("prep\\n")
        with open(os.path.join(a.out, "numbers.txt"), "w") as f:
            f.write("\\n".join(str(i) for i in range(a.n)))
        print("prep wrote", a.n, "numbers")
    """,
    "train/train.py": """
        import argparse, json, os
        from helper import transform
        from mlpipe_jupyter import Run
        p = argparse.ArgumentParser()
        p.add_argument("--data"); p.add_argument("--model"); p.add_argument("--trace")
        a = p.parse_args()
        open(a.trace, "a").write("train\\n")
        numbers = [int(x) for x in open(os.path.join(a.data, "numbers.txt")).read().split()]
        total = sum(transform(x) for x in numbers)
        with open(os.path.join(a.model, "model.json"), "w") as f:
            json.dump({"total": total}, f)
        Run.get_context().log("total", total)
        print("train total", total)
    """,
    "train/helper.py": """
        def transform(x):
            return x * 10
    """,
    "evaluate/evaluate.py": """
        import argparse, json, os
        from mlpipe_jupyter import Run
        p = argparse.ArgumentParser()
        p.add_argument("--model"); p.add_argument("--trace")
        a = p.parse_args()
        open(a.trace, "a").write("evaluate\\n")
        total = json.load(open(os.path.join(a.model, "model.json")))["total"]
        os.makedirs("outputs", exist_ok=True)
        open("outputs/report.txt", "w").write(f"score={total / 100}\\n")
        Run.get_context().log("score", total / 100)
        print("evaluate score", total / 100)
    """,
}


def chain_steps(root, trace, n=4, **prep_kwargs):
    """(prep, train, evaluate) reading and writing the scripts written from CHAIN_SCRIPTS under ``root``."""
    from mlpipe_jupyter import PipelineData, PythonScriptStep

    root = Path(root)
    data, model = PipelineData("data"), PipelineData("model")
    prep = PythonScriptStep("prep.py", name="prep", source_directory=str(root / "prep"), outputs=[data],
                            arguments=["--out", data, "--n", n, "--trace", str(trace)], **prep_kwargs)
    train = PythonScriptStep("train.py", name="train",
                             source_directory=str(root / "train"), inputs=[data], outputs=[model],
                             arguments=["--data", data, "--model", model, "--trace", str(trace)])
    evaluate = PythonScriptStep("evaluate.py", name="evaluate", source_directory=str(root / "evaluate"), inputs=[model],
                                arguments=["--model", model, "--trace", str(trace)])
    return prep, train, evaluate


def trace_lines(trace) -> list[str]:
    path = Path(trace)
    return path.read_text().split() if path.exists() else []


def remove_tree(path):
    """Delete a folder even when it was committed read-only."""
    import shutil

    path = Path(path)
    for p in [path, *path.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o700)
    shutil.rmtree(path)
