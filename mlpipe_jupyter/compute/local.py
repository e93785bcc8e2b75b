"""Local compute: each step is a subprocess in its own process group, in its own working directory.

The child gets PR_SET_PDEATHSIG on Linux, so if the process running the pipeline dies (a kernel
restart, ``kill -9``) its steps die with it instead of running on unobserved.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from typing import Iterator

from ..running.protocol import Job
from ..tracking.store import process_start_time

_prctl = None
if sys.platform.startswith("linux"):
    try:
        import ctypes

        _prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        _prctl = None


def _die_with_parent():  # runs in the child between fork and exec
    _prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


def python_command(job: Job, interpreter: str | None = None) -> list[str]:
    return [interpreter or sys.executable, job.script, *job.argv()]


# The folder holding this package: a script's ``Run.get_context()`` must import the same version as the
# runner that tails what it writes, even when the package is used from a source checkout.
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def step_environ(job: Job, base: dict | None = None, add_package: bool = True) -> dict:
    env = dict(os.environ if base is None else base)
    env.update(job.environment.environment_variables)
    env.update(job.environ())
    env.update(run_context_environ(job))
    pypath = [str(job.working_dir)]
    if env.get("PYTHONPATH"):
        pypath.append(env["PYTHONPATH"])
    if add_package:  # a built virtualenv links the package itself, without the rest of this site-packages
        pypath.append(PACKAGE_PARENT)
    env["PYTHONPATH"] = os.pathsep.join(pypath)
    return env


def run_context_environ(job: Job, run_dir: str | None = None) -> dict:
    """What Run.get_context() inside the script reads to find its run (Azure's variable names where they exist)."""
    import json

    return {
        "PYTHONUNBUFFERED": "1",
        "AZUREML_RUN_ID": job.run_id,
        "AZUREML_ROOT_RUN_ID": job.parent_run_id or job.run_id,
        "AZUREML_ARM_PROJECT_NAME": job.experiment,
        "MLPIPE_RUN_DIR": run_dir or str(job.run_dir),
        "MLPIPE_STEP_NAME": job.step_name,
        "MLPIPE_INPUT_DATASETS": json.dumps(job.input_datasets),
    }


class LocalHandle:
    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self._start = process_start_time(proc.pid)
        self._cancel_lock = threading.Lock()
        self._ended = threading.Event()
        threading.Thread(target=self._reap, name=f"reap-{proc.pid}", daemon=True).start()

    def _reap(self):
        """When the script ends, end what it left behind too, so nothing outlives the step
        (and a background child holding the log pipe open cannot hang the log stream)."""
        self.proc.wait()
        self._kill_group(signal.SIGKILL)
        self._ended.set()

    def lines(self) -> Iterator[str]:
        for raw in self.proc.stdout:
            yield raw.decode("utf-8", "replace").rstrip("\r\n")

    def wait(self) -> int:
        self._ended.wait()
        self.proc.stdout.close()
        return self.proc.returncode

    def cancel(self, grace_seconds: float = 3.0) -> None:
        """SIGTERM to the whole process group, SIGKILL after a grace period."""
        with self._cancel_lock:
            if self._ended.is_set():
                return
            self._kill_group(signal.SIGTERM)
            if not self._ended.wait(grace_seconds):
                self._kill_group(signal.SIGKILL)

    def _kill_group(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def process_info(self) -> dict:
        return {"pgid": self.proc.pid, "pgid_start": self._start}


class LocalCompute:
    """Runs steps as subprocesses with the current interpreter (or the environment's)."""

    name = "local"

    def __init__(self, workspace=None):
        self.workspace = workspace

    def start(self, job: Job):
        """A user-managed environment runs in its interpreter; any other in its cached virtualenv, built
        first when missing (the build's log streams as the step's first lines)."""
        env = job.environment
        if not env.needs_build:
            return self._spawn(job, env.python.interpreter_path)
        from .envbuild import PreparedHandle, build_venv, cached_venv

        done = cached_venv(self.workspace, env)
        if done is not None:
            self._record_build(job, done)
            return self._spawn(job, done.python, isolated=True)

        def launch(result):
            self._record_build(job, result)
            handle = self._spawn(job, result.python, isolated=True)
            if self.workspace is not None:  # what crash recovery needs, known only now
                self.workspace._store.update_run(job.run_id, **handle.process_info())
            return handle

        return PreparedHandle(lambda log, cancel: build_venv(self.workspace, env, log, job.step_name, cancel), launch)

    def _record_build(self, job: Job, result):
        if self.workspace is not None:
            self.workspace._store.update_run(job.run_id, details={"environment_build": {
                **result.to_dict(), "environment": job.environment.name}})

    def _spawn(self, job: Job, interpreter: str | None, isolated: bool = False) -> LocalHandle:
        proc = subprocess.Popen(
            python_command(job, interpreter),
            cwd=job.working_dir,
            env=step_environ(job, add_package=not isolated),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent if _prctl else None,
        )
        return LocalHandle(proc)
