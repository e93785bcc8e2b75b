"""``%%step NAME --run`` on local compute starts like a pipeline step: warm from its environment's helper
when warm starts are on (MLPIPE_WARM_START=1), cold with ``--cold``."""
from __future__ import annotations

import pytest

from mlpipe_jupyter import Experiment, Workspace
from mlpipe_jupyter.compute import warm


@pytest.fixture
def warm_on(monkeypatch):
    monkeypatch.setenv(warm.SETTING, "1")
    yield
    warm.POOL.stop_all()


def last_step_start(ip) -> tuple[str, dict]:
    """The output and start details of the step the latest ``--run`` ran."""
    ws = Workspace.from_config()
    run = next(Experiment(ws, "notebook").get_runs())  # newest first, as in SDK v1
    step = run.get_steps()[0]
    return step.get_log_text(), step.get_details()["start"]


def test_a_step_run_from_its_cell_starts_warm_and_cold_when_asked(ip, capsys, warm_on):
    cell = "%%step hello --run{flag}\nprint('hello from', {n})"
    ip.run(cell.format(flag="", n=1))  # starts the helper
    ip.run(cell.format(flag="", n=2))
    log, start = last_step_start(ip)
    assert "hello from 2" in log and start["warm"] is True, (log, start)

    ip.run(cell.format(flag=" --cold", n=3))
    log, start = last_step_start(ip)
    assert "hello from 3" in log, log
    assert start == {"warm": False, "why_cold": f"the step asks to start cold ({warm.SETTING}=0 in its variables)"}
