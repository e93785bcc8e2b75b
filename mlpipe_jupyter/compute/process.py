"""Starting contained processes: a step, or an environment build, so that nothing it starts outlives it.

On Linux a step runs in a PID namespace of its own (util-linux ``unshare``, as root or through an
unprivileged user namespace), under bash as the namespace's first process: when the step ends, or
is stopped, the shell ends and the kernel ends every process the step started, daemons that
double-forked and called setsid included, and the pipe of its output closes. The shell reaps what
the step leaves, and keeps the step an ordinary process (a first process ignores signals it has no
handler for, even SIGKILL sent to itself). Like any shell or container runtime it reports a step
killed by signal N as exit status 128 + N, which the handle turns back into -N. The namespace's first
process gets PR_SET_PDEATHSIG, so if the process running the pipeline dies (a kernel restart,
``kill -9``) the whole namespace dies with it. Where namespaces are not available the step gets its
own process group, which is stopped as a whole, and the runner stops reading a step's output soon
after its main process ended, so a leftover holding the pipe cannot keep the step going.
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
import time
from typing import Iterator

from mlpipe_jupyter.store import process_start_time

CONTAINMENT_SETTING = "MLPIPE_STEP_CONTAINMENT"  # "process-group" turns the PID namespace off


# The namespace's first process: runs the step as its child (a subshell that execs it, with the original
# stderr) and exits with its status. The shell's own messages ("Killed") go to /dev/null, and the
# ``exit`` after the command keeps the shell from replacing itself by the step. bash, because dash drops
# environment variables whose names are not shell names (AML_PARAMETER_n.rows); --posix, so that it
# reads no startup file (not even $BASH_ENV from the step's environment).
NAMESPACE_INIT = ["--posix", "-c", 'exec 3>&2 2>/dev/null; (exec "$@" 2>&3 3>&-); exit $?', "mlpipe-step"]


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


@functools.cache
def containment_prefix() -> tuple[str, ...]:
    """The command that runs a process in a new PID namespace under its first process (with its own
    /proc, so the step sees its own processes), or () where this machine cannot make one."""
    if os.environ.get(CONTAINMENT_SETTING) == "process-group" or not sys.platform.startswith("linux"):
        return ()
    unshare, bash = shutil.which("unshare"), shutil.which("bash")
    if not unshare or not bash:
        return ()
    namespace = ("--pid", "--fork", "--kill-child", "--mount-proc")
    tries = [(unshare, *namespace)] if os.geteuid() == 0 else []
    tries.append((unshare, "--user", "--map-current-user", *namespace))  # no root: an unprivileged user namespace
    for prefix in tries:
        try:
            if subprocess.run([*prefix, "true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=10).returncode == 0:
                return (*prefix, bash, *NAMESPACE_INIT)
        except (OSError, subprocess.SubprocessError):
            continue
    return ()


def start_process(cmd: list[str], **popen_kwargs) -> subprocess.Popen:
    """A contained process (see the module) in a session and process group of its own that dies with
    the thread starting it, output and errors on one pipe."""
    prefix, preexec_fn = _death_signal_launch()
    return subprocess.Popen([*prefix, *containment_prefix(), *cmd], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=preexec_fn, **popen_kwargs)


class LocalHandle:
    """A step's contained process. The thread reading its output also notices the script's end and stops
    what it left behind, so nothing outlives the step and no thread is started per step."""

    LEFTOVER_POLL_SECONDS = 0.1  # how soon a background child holding the output pipe open is noticed
    LEFTOVER_GIVE_UP_SECONDS = 2.0  # after this the pipe is left alone: the step ended with its main process

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.contained = bool(containment_prefix())
        self._start = process_start_time(proc.pid)
        self._cancel_lock = threading.Lock()
        self._reaped = False  # after this, the group's id may name someone else's processes

    def chunks(self) -> Iterator[bytes]:
        fd = self.proc.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        ended_at = None
        while True:
            if not poller.poll(self.LEFTOVER_POLL_SECONDS * 1000):
                if self.proc.poll() is not None:  # the script ended, something it started keeps the pipe
                    self._kill_group(signal.SIGKILL)
                    ended_at = ended_at or time.monotonic()
                    if time.monotonic() - ended_at > self.LEFTOVER_GIVE_UP_SECONDS:
                        return  # a leftover outside the group (no namespace here) holds it: stop reading
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
        return self._exact(rc)

    def _exact(self, rc: int) -> int:
        """The step's exit status as Python reports one: a contained step killed by signal N comes back
        from the namespace's shell as 128 + N."""
        if self.contained and 128 < rc <= 128 + signal.NSIG:
            return 128 - rc
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
