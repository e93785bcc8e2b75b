"""The runner's scheduling on a fake compute backend: no process starts, so these run in a blink.

A step's behaviour is scripted by its name: what it prints, its exit code, how long it takes, whether
it writes its outputs. The backend counts the steps running at once."""
from __future__ import annotations

import threading
import time

import pytest

from helpers import run_pipeline, statuses, steps_by_name, submit
from mlpipe_jupyter import PipelineData, PythonScriptStep
from mlpipe_jupyter.running.protocol import ComputeBackend, register

SCRIPT = {  # step name -> (printed, exit code, seconds)
    "ok": (b"fine\n", 0, 0.0), "slow1": (b"", 0, 0.3), "slow2": (b"", 0, 0.3), "slow3": (b"", 0, 0.3),
    "boom": (b"bad things\n", 3, 0.0), "after": (b"after\n", 0, 0.0), "hang": (b"", 0, 30.0),
}


class FakeHandle:
    def __init__(self, backend, job):
        self.backend, self.job = backend, job
        self.printed, self.code, self.seconds = SCRIPT[job.step_name]
        self.cancelled = threading.Event()
        for path in job.outputs.values():  # the step writes its outputs
            if path.is_dir():
                (path / "out.txt").write_text(job.step_name)

    def chunks(self):
        with self.backend.lock:
            self.backend.running += 1
            self.backend.most = max(self.backend.most, self.backend.running)
        try:
            yield self.printed
            self.cancelled.wait(self.seconds)
        finally:
            with self.backend.lock:
                self.backend.running -= 1

    def wait(self):
        return -15 if self.cancelled.is_set() else self.code

    def cancel(self):
        self.cancelled.set()

    def process_info(self):
        return {}


@register("fake")
class FakeBackend(ComputeBackend):
    instances: list = []

    def __init__(self, *args):
        super().__init__(*args)
        self.lock, self.running, self.most = threading.Lock(), 0, 0
        FakeBackend.instances.append(self)

    def start(self, job):
        return FakeHandle(self, job)


@pytest.fixture
def fake(workspace, tmp_path):
    workspace._store.save_compute_target("fake", "fake", {"max_concurrency": 2})
    src = tmp_path / "src"
    src.mkdir()
    for name in SCRIPT:
        (src / f"{name}.py").write_text("# the fake backend runs nothing\n")
    FakeBackend.instances.clear()
    return src


def fake_step(src, name, **kwargs):
    return PythonScriptStep(f"{name}.py", name=name, source_directory=str(src), compute_target="fake", **kwargs)


def test_steps_run_in_order_and_their_outputs_are_committed(workspace, fake):
    data = PipelineData("data")
    run = run_pipeline(workspace, [fake_step(fake, "ok", outputs=[data], arguments=[data]),
                                   fake_step(fake, "after", inputs=[data], arguments=[data])])
    assert statuses(run) == {"ok": "Completed", "after": "Completed"}
    steps = steps_by_name(run)
    assert "fine" in steps["ok"].get_log_text()
    assert (steps["ok"].get_output_data("data").path / "out.txt").read_text() == "ok"


def test_the_target_capacity_bounds_steps_at_once(workspace, fake):
    run = run_pipeline(workspace, [fake_step(fake, n) for n in ("slow1", "slow2", "slow3")])
    assert set(statuses(run).values()) == {"Completed"}
    assert FakeBackend.instances[-1].most == 2  # max_concurrency of the target


def test_a_failure_cancels_what_depends_on_it_and_the_rest(workspace, fake):
    data = PipelineData("data")
    run = run_pipeline(workspace, [fake_step(fake, "boom", outputs=[data], arguments=[data]),
                                   fake_step(fake, "after", inputs=[data], arguments=[data])])
    assert run.get_status() == "Failed"
    assert statuses(run) == {"boom": "Failed", "after": "Canceled"}
    assert "exited with code 3: bad things" in run.get_details()["error"]["message"]
    assert steps_by_name(run)["boom"].get_outputs() == {}  # a failed step commits nothing


def test_continue_on_step_failure_runs_the_independent_steps(workspace, fake):
    run = run_pipeline(workspace, [fake_step(fake, "boom"), fake_step(fake, "ok")], continue_on_step_failure=True)
    assert statuses(run) == {"boom": "Failed", "ok": "Completed"}


def test_cancel_stops_a_running_step(workspace, fake):
    run = submit(workspace, [fake_step(fake, "hang")])
    deadline = time.monotonic() + 10
    while run.get_steps()[0].get_status() != "Running" and time.monotonic() < deadline:
        time.sleep(0.01)
    run.cancel()
    run.wait_for_completion(raise_on_error=False, timeout_seconds=10)
    assert run.get_status() == "Canceled" and statuses(run) == {"hang": "Canceled"}


def test_a_reused_step_does_not_start(workspace, fake):
    run_pipeline(workspace, [fake_step(fake, "ok")])
    again = run_pipeline(workspace, [fake_step(fake, "ok")])
    assert steps_by_name(again)["ok"].reused
