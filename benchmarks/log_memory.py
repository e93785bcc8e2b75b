"""Memory that log lines cost: ``mlpipe logs`` on a big log, and a kernel that runs chatty pipelines.

(a) Peak resident memory (max RSS) of ``mlpipe logs RUN`` on a 200 MB log, with the ``[step]``
    prefixes and with ``--step`` (raw lines), against ``cat LOG > /dev/null`` as the baseline; all
    write to /dev/null. ``mlpipe runs`` is shown for what the command costs before it reads any log.
(b) Resident memory of one long-lived Python process (standing in for a kernel) after each of 10
    pipeline runs whose step prints 200 MB of 10 kB lines, through the API, against the same
    process's RSS before the first of them (measured after one tiny warm-up run, so it includes
    the runner's imports).

    python benchmarks/log_memory.py [--quick]

``--quick`` uses a 20 MB log and 3 runs of 20 MB. A full run takes about 15 s on 2 cores.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from mlpipe_jupyter import Experiment, Pipeline, PythonScriptStep, Workspace  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
CLI = [sys.executable, "-m", "mlpipe_jupyter.cli"]
MB = 1_000_000
LINE = 10_000  # bytes per log line, newline included
LIBC = ctypes.CDLL(None, use_errno=True)
PR_SET_CHILD_SUBREAPER = 36
# The step of part (b): prints ``argv[1]`` bytes of 10 kB lines, a hundred lines per write.
CHATTY = textwrap.dedent("""\
    import sys
    block = ("x" * 9_999 + "\\n") * 100
    for _ in range(int(sys.argv[1]) // len(block)):
        sys.stdout.write(block)
""")
# Part (b)'s process: one workspace, a warm-up run, then one RSS figure (kB) per run on stdout.
KERNEL = textwrap.dedent("""\
    import sys
    from pathlib import Path
    from mlpipe_jupyter import Experiment, Pipeline, PythonScriptStep, Workspace
    from mlpipe_jupyter.running.control import active_execution

    def rss_kb():
        return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmRSS:"))

    def run(size):
        step = PythonScriptStep("chatty.py", source_directory=str(src), arguments=[size], allow_reuse=False)
        r = Experiment(ws, "chatty").submit(Pipeline(ws, [step]))
        r.wait_for_completion()
        execution = active_execution(r.id)
        if execution is not None:  # the run's last event comes just after its status is final
            execution.done.wait()

    folder, runs, size = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    ws = Workspace.create("kernel", path=folder, exist_ok=True)
    src = folder / "src"
    run(0)
    print(rss_kb(), flush=True)
    for _ in range(runs):
        run(size)
        print(rss_kb(), flush=True)
""")


def peak_rss_mb(cmd, cwd) -> tuple[float, float]:
    """(peak RSS in MB, seconds) of one command writing to /dev/null, from its own ru_maxrss.

    Linux counts in a process's ru_maxrss the memory of the process it was forked from (this one, some
    30 MB). So a small shell forks the command and exits at once; the command waits on a pipe until
    then, so that no one but this process, the subreaper of its descendants, waits for it.
    """
    if LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
    gate, go = os.pipe()
    script = f'{{ read _ <&{gate}; exec "$@" {gate}<&-; }} </dev/null >/dev/null 2>"$0" &\necho $!'
    with tempfile.NamedTemporaryFile() as err:
        pid = int(subprocess.run(["sh", "-c", script, err.name, *map(str, cmd)], cwd=cwd, env=ENV, pass_fds=(gate,),
                                 capture_output=True, text=True, check=True).stdout)
        os.close(gate)
        start = time.perf_counter()
        os.write(go, b"go\n")
        os.close(go)
        _, status, usage = os.wait4(pid, 0)
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{Path(err.name).read_text(errors='replace')}")
    return usage.ru_maxrss * 1024 / MB, seconds


def big_log_run(folder: Path, size: int) -> tuple[str, Path]:
    """A finished one-step run whose log was grown to ``size`` bytes of 10 kB lines."""
    ws = Workspace.create("bench", path=folder, exist_ok=True)
    src = folder / "src"
    src.mkdir()
    (src / "step.py").write_text("print('first line')\n")
    run = Experiment(ws, "logs").submit(Pipeline(ws, [PythonScriptStep("step.py", source_directory=str(src))]))
    run.wait_for_completion()
    log = ws._store.run_dir(run.get_steps()[0].id) / "logs" / "std_log.txt"
    block = (b"y" * (LINE - 1) + b"\n") * 100
    with open(log, "ab") as f:
        for _ in range(size // len(block)):
            f.write(block)
    return run.id, log


def logs_memory(folder: Path, size: int):
    run_id, log = big_log_run(folder, size)
    rows = [("cat LOG > /dev/null (baseline)", ["cat", str(log)]),
            ("mlpipe runs", [*CLI, "runs"]),
            ("mlpipe logs RUN", [*CLI, "logs", run_id]),
            ("mlpipe logs RUN --step step", [*CLI, "logs", run_id, "--step", "step"])]
    results = [(label, *peak_rss_mb(cmd, folder)) for label, cmd in rows]
    base = results[0][1]
    print(f"(a) peak RSS printing a {os.path.getsize(log) / MB:.0f} MB log to /dev/null")
    print(f"{'command':<32} {'peak RSS MB':>11} {'x cat':>7} {'seconds':>8}")
    for label, rss, seconds in results:
        print(f"{label:<32} {rss:>11.1f} {rss / base:>7.1f} {seconds:>8.2f}")


def kernel_memory(folder: Path, runs: int, size: int):
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "chatty.py").write_text(CHATTY)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", KERNEL, str(folder), str(runs), str(size)], env=ENV,
                         capture_output=True, text=True, check=True).stdout
    seconds = time.perf_counter() - start
    figures = [int(x) * 1024 / MB for x in out.split()]
    base = figures[0]
    print(f"(b) RSS of one process after each of {runs} pipeline runs printing {size / MB:.0f} MB "
          f"of {LINE // 1000} kB lines ({seconds:.0f} s)")
    print(f"{'after':<14} {'RSS MB':>8} {'grown MB':>9} {'x before':>9}")
    print(f"{'(before)':<14} {base:>8.1f} {0:>9.1f} {1:>9.2f}")
    for i, rss in enumerate(figures[1:], 1):
        print(f"{f'run {i}':<14} {rss:>8.1f} {rss - base:>9.1f} {rss / base:>9.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 20 MB log and 3 runs of 20 MB")
    args = parser.parse_args()
    log_size, runs, run_size = (20 * MB, 3, 20 * MB) if args.quick else (200 * MB, 10, 200 * MB)
    with tempfile.TemporaryDirectory() as tmp:
        logs_memory(Path(tmp) / "a", log_size)
        print()
        kernel_memory(Path(tmp) / "b", runs, run_size)


if __name__ == "__main__":
    main()
