"""How a warm step ends must be how a cold interpreter ends: it waits for the threads the script left
running, runs the exit handlers of the modules it imports (also those its helper imported first), and
flushes what the script left open. Each case runs cold, then warm, and must leave the same trace."""
from __future__ import annotations

import pytest

from helpers import WAIT_SECONDS
from mlpipe_jupyter import Experiment, Pipeline, PythonScriptStep
from mlpipe_jupyter.compute import warm

SCRIPTS = {
    # a thread that is not a daemon: Python waits for it after the script's last line
    "late_thread.py": """
        import sys, threading, time
        def late():
            time.sleep(0.5)
            open(sys.argv[1], "a").write("the thread finished\\n")
        threading.Thread(target=late).start()
        print("main done", flush=True)
    """,
    # a buffered file never closed: Python flushes it when it tears the script's module down
    "unclosed.py": """
        import sys
        kept = open(sys.argv[1], "a")
        kept.write("written, never closed\\n")
    """,
    # a daemon thread still running at the end: it is stopped without a word; Python then leaves a file
    # the script did not close unflushed (seen with CPython 3.11), and so must a warm step
    "daemon_thread.py": """
        import fractions, sys, threading, time
        with open(sys.argv[1], "a") as f:
            f.write("closed before the end\\n")
        def busy():
            while True:
                fractions.Fraction(1, 3)
                time.sleep(0.001)
        threading.Thread(target=busy, daemon=True).start()
        kept = open(sys.argv[1], "a")
        kept.write("written beside a daemon thread\\n")
        time.sleep(0.05)
    """,
    # a temporary file kept in a global: the interpreter's end removes it
    "temporary.py": """
        import os, sys, tempfile
        left = tempfile.NamedTemporaryFile(dir=os.path.dirname(sys.argv[1]), prefix="left-")
        open(sys.argv[1], "a").write("made a temporary file\\n")
    """,
    # a logging handler freed as the script's modules are torn down: its callback still finds logging's names
    "freed_handler.py": """
        import logging, sys
        handler = logging.FileHandler(sys.argv[1])
        handler.emit(logging.makeLogRecord({"msg": "written by a handler freed at the end"}))
    """,
    # pandas imports logging, so the helper has imported it (and its exit handler) before the step
    "buffered_log.py": """
        import logging, logging.handlers, sys
        import pandas
        handler = logging.handlers.MemoryHandler(100, flushLevel=logging.CRITICAL,
                                                 target=logging.FileHandler(sys.argv[1]))
        logging.getLogger().addHandler(handler)
        logging.warning("flushed by logging's exit handler")
    """,
}


@pytest.fixture
def src(tmp_path, write_scripts):
    return write_scripts(tmp_path / "src", SCRIPTS)


def run_step(ws, src, script, *args):
    step = PythonScriptStep(script, arguments=list(args), source_directory=str(src), allow_reuse=False)
    run = Experiment(ws, "warm-exit").submit(Pipeline(ws, [step]))
    run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)
    return run.get_steps()[0]


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_a_warm_step_ends_as_a_cold_one_does(workspace, src, tmp_path, monkeypatch, script):
    traces = {}
    try:
        for setting in ("0", "1", "1"):  # the second warm run surely runs in a ready helper
            monkeypatch.setenv(warm.SETTING, setting)
            trace = tmp_path / f"trace-{len(traces)}.txt"
            step = run_step(workspace, src, script, str(trace))
            assert step.get_status() == "Completed", step.get_log_text()
            traces[len(traces)] = (step, trace.read_text() if trace.exists() else "")
    finally:
        warm.POOL.stop_all()
    (cold, cold_trace), _, (hot, hot_trace) = traces.values()
    assert hot.get_details()["start"]["warm"] is True, hot.get_details()["start"]
    assert cold_trace != "" and hot_trace == cold_trace
    assert "Traceback" not in hot.get_log_text() and "Exception" not in hot.get_log_text()
    assert not list(tmp_path.glob("left-*"))
