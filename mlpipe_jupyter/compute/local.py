"""Local compute: each step is a subprocess in its own process group, in its own working directory.

The child gets PR_SET_PDEATHSIG on Linux, so if the process running the pipeline dies (a kernel
restart, ``kill -9``) its steps die with it instead of running on unobserved.
"""
from __future__ import annotations

import functools
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
from typing import Iterator

from ..running.protocol import Job
from ..tracking.store import process_start_time


@functools.cache
def _death_signal_launch() -> tuple[list[str], object]:
    """(command prefix, preexec_fn) that give the child PR_SET_PDEATHSIG.

    util-linux's ``setpriv --pdeathsig`` sets it and execs the step: one small exec, while a Python
    preexec_fn forbids vfork and copies the whole runner process, which costs a few milliseconds a step.
    Without setpriv the preexec_fn does it; off Linux there is no such signal."""
    if not sys.platform.startswith("linux"):
        return [], None
    setpriv = shutil.which("setpriv")
    if setpriv:
        try:
            usage = subprocess.run([setpriv, "--help"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            usage = ""
        if "--pdeathsig" in usage:
            return [setpriv, "--pdeathsig", "KILL", "--"], None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return [], None

    def die_with_parent():  # runs in the child between fork and exec
        prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG

    return [], die_with_parent


def start_process(cmd: list[str], **popen_kwargs) -> subprocess.Popen:
    """A process in a session (and process group) of its own that dies with the thread starting it,
    output and errors on one pipe."""
    prefix, preexec_fn = _death_signal_launch()
    return subprocess.Popen([*prefix, *cmd], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=preexec_fn, **popen_kwargs)


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


def stream_lines(chunks) -> Iterator[str]:
    """Whole lines from byte chunks that cut lines anywhere (a pipe, a Docker log stream)."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            yield raw.decode("utf-8", "replace").rstrip("\r")
    if pending:
        yield pending.decode("utf-8", "replace").rstrip("\r")


class LocalHandle:
    """A step's process group. The thread reading its lines also notices the script's end and kills
    what it left behind, so nothing outlives the step and no thread is started per step."""

    LEFTOVER_POLL_SECONDS = 0.1  # how soon a background child holding the log pipe open is noticed

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self._start = process_start_time(proc.pid)
        self._cancel_lock = threading.Lock()
        self._reaped = False  # after this, the group's id may name someone else's processes

    def lines(self) -> Iterator[str]:
        yield from stream_lines(self._chunks())

    def _chunks(self) -> Iterator[bytes]:
        fd = self.proc.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            if not poller.poll(self.LEFTOVER_POLL_SECONDS * 1000):
                if self.proc.poll() is not None:  # the script ended, something it started keeps the pipe
                    self._kill_group(signal.SIGKILL)
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return
            yield chunk

    def wait(self) -> int:
        rc = self.proc.wait()
        with self._cancel_lock:
            self._kill_group(signal.SIGKILL)  # whatever the script left running in its group
            self._reaped = True
        self.proc.stdout.close()
        return rc

    def cancel(self, grace_seconds: float = 3.0) -> None:
        """SIGTERM to the whole process group, SIGKILL after a grace period."""
        with self._cancel_lock:
            if self._reaped:
                return
            if self.proc.poll() is None:
                self._kill_group(signal.SIGTERM)
                try:
                    self.proc.wait(grace_seconds)
                except subprocess.TimeoutExpired:
                    pass
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
            done.record(self.workspace, job.run_id)
            return self._spawn(job, done.python, isolated=True)

        def launch(result):
            result.record(self.workspace, job.run_id)
            handle = self._spawn(job, result.python, isolated=True)
            if self.workspace is not None:  # what crash recovery needs, known only now
                self.workspace._store.update_run(job.run_id, **handle.process_info())
            return handle

        return PreparedHandle(lambda log, cancel: build_venv(self.workspace, env, log, job.step_name, cancel), launch)

    def _spawn(self, job: Job, interpreter: str | None, isolated: bool = False) -> LocalHandle:
        proc = start_process(python_command(job, interpreter), cwd=job.working_dir,
                             env=step_environ(job, add_package=not isolated))
        return LocalHandle(proc)
