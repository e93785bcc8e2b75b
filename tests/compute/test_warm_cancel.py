"""A canceled warm step is stopped as a cold one is: SIGTERM first, and a script that handles it gets the
grace period to finish its handler before SIGKILL. (A warm step once had an extra process above it that
died of the SIGTERM, after which the helper killed the step's whole group at once.)"""
from __future__ import annotations

import pytest

from helpers import WAIT_SECONDS, pids_with, wait_until, working_in
from mlpipe_jupyter import Experiment, Pipeline, PythonScriptStep, RunConfiguration
from mlpipe_jupyter.compute import warm

TRAPS_SIGTERM = """
    import signal, sys, time
    def on_term(signum, frame):
        time.sleep(0.5)
        open(sys.argv[1], "a").write("the handler finished\\n")
        sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    print("ready", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def src(tmp_path, write_scripts):
    return write_scripts(tmp_path / "src", {"traps.py": TRAPS_SIGTERM})


def canceled_trace(ws, src, trace) -> tuple[object, str]:
    config = RunConfiguration()  # a variable to find the step by: a warm step's command line is its helper's
    config.environment_variables = {"WARM_CANCEL_MARKER": str(trace)}
    run = Experiment(ws, "warm-cancel").submit(Pipeline(ws, [PythonScriptStep(
        "traps.py", arguments=[str(trace)], source_directory=str(src), allow_reuse=False, runconfig=config)]))
    wait_until(lambda: run.get_steps() and "ready" in run.get_steps()[0].get_log_text(), "the step to run")
    step_processes = lambda: working_in(set(pids_with(trace, where="environ")), ws.path)  # noqa: E731
    assert step_processes()
    run.cancel()
    run.wait_for_completion(raise_on_error=False, timeout_seconds=WAIT_SECONDS)
    wait_until(lambda: not step_processes(), "the step's process to go", timeout=15)
    return run.get_steps()[0], trace.read_text() if trace.exists() else ""


def test_a_canceled_warm_step_runs_its_sigterm_handler_as_a_cold_one_does(workspace, src, tmp_path, monkeypatch):
    seen = []
    try:
        for setting in ("0", "1", "1"):  # the second warm run surely runs in a ready helper
            monkeypatch.setenv(warm.SETTING, setting)
            seen.append(canceled_trace(workspace, src, tmp_path / f"trace-{len(seen)}.txt"))
    finally:
        warm.POOL.stop_all()
    (cold, cold_trace), _, (hot, hot_trace) = seen
    assert hot.get_details()["start"]["warm"] is True, hot.get_details()["start"]
    assert cold.get_status() == hot.get_status() == "Canceled"
    assert cold_trace == hot_trace == "the handler finished\n"
