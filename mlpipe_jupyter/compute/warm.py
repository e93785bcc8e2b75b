"""Warm starts for local steps: a helper process per environment has already imported the heavy modules
its steps import, and forks a fresh child per step (compute/forkserver.py), so a step that imports
pandas and scikit-learn starts in milliseconds instead of seconds.

It is an optimization, never a change of meaning: the step's snapshot, reuse key and results are the same.
Warm starts are on unless ``MLPIPE_WARM_START=0`` for the process. A step starts cold when the step asks
(the same variable in its own variables, ``%%step --cold``), when it imports a module its environment's
helper has not preloaded (a helper with the larger set is then started for the next time), or when the
helper cannot be used: it died, a preloaded package changed on disk since (it is replaced), or its
preloaded modules started threads (forking then is not safe). Helpers are contained like steps
(compute/process.py): they die with this process, and one left idle for ``IDLE_SECONDS`` goes away.
"""
from __future__ import annotations

import dis
import hashlib
import json
import os
import select
import signal
import socket
import sys
import tempfile
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

from mlpipe_jupyter.compute import forkserver
from mlpipe_jupyter.compute.process import containment_prefix, start_process
from mlpipe_jupyter.planning.reuse import START_SETTING
from mlpipe_jupyter.running import contract
from mlpipe_jupyter.running.protocol import Job

SETTING = START_SETTING  # "0" turns warm starts off for the process; in a step's variables, for that step
IDLE_SECONDS = 600
REAP_SECONDS = 30  # how often idle helpers are looked for
MAX_HELPERS = 4  # at once in a process, each holding its preloaded modules' memory: the least recently used goes
GREETING_SECONDS = 120  # a helper importing its modules on a loaded machine; a guard, not a measure
SCAN_LIMIT = 400  # files of a snapshot read for imports
# Our own package and its azureml layer are quick to import, and a step must get the copy on its path
# when it starts (a checkout edited between steps), which a helper's stamps of one file would miss.
NEVER_PRELOADED = frozenset({"__future__", "mlpipe_jupyter", "azureml"})


def enabled() -> bool:
    return os.environ.get(SETTING, "1") != "0"


_CACHE_LOCK = threading.Lock()
_FILE_IMPORTS: dict[str, frozenset[str]] = {}  # by file digest: parallel steps of one snapshot parse once
_FILE_IMPORTS_LIMIT = 4096


def imported_modules(folder: Path) -> frozenset[str]:
    """Top-level modules the snapshot's Python files import that are not part of the snapshot itself or
    the standard library: what a helper should preload."""
    found, own = set(), set()
    for path in sorted(folder.rglob("*.py"))[:SCAN_LIMIT]:
        own.add(path.relative_to(folder).parts[0].removesuffix(".py"))
        try:
            found |= file_imports(path.read_bytes())
        except OSError:
            continue
    return frozenset(m for m in found - own - NEVER_PRELOADED if m not in sys.stdlib_module_names)


def file_imports(source: bytes) -> frozenset[str]:
    """The top-level names one file imports (absolute imports only, wherever they are in the file).

    Read from the compiled code's import instructions, not from ``ast.parse``: building Python AST objects
    while another thread does the same (IPython parsing a cell as a step starts) can fail on Python 3.11
    with "AST constructor recursion depth mismatch" (CPython gh-106905), and the compiler never builds
    them."""
    key = hashlib.sha256(source).hexdigest()
    with _CACHE_LOCK:
        if key in _FILE_IMPORTS:
            return _FILE_IMPORTS[key]
    try:
        codes = [compile(source, "<snapshot file>", "exec", dont_inherit=True)]
    except (SyntaxError, ValueError):
        codes = []
    names = set()
    while codes:
        code = codes.pop()
        consts: list = []  # the import's level and names are the two constants loaded just before it
        for ins in dis.get_instructions(code):
            if ins.opname == "LOAD_CONST":
                consts = [*consts[-1:], ins.argval]
            elif ins.opname == "IMPORT_NAME" and len(consts) == 2 and consts[0] == 0 and ins.argval:
                names.add(ins.argval.split(".")[0])
        codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
    with _CACHE_LOCK:
        if len(_FILE_IMPORTS) >= _FILE_IMPORTS_LIMIT:
            _FILE_IMPORTS.clear()
        _FILE_IMPORTS[key] = frozenset(names)
    return frozenset(names)


class Helper:
    """One running helper: its process, socket, greeting, and when it was last used."""

    def __init__(self, python: str, modules: frozenset[str], env: dict):
        self.python, self.modules = python, modules
        self.folder = tempfile.mkdtemp(prefix="mlpipe-warm-")
        self.socket_path = os.path.join(self.folder, "socket")
        self.proc = start_process([python, forkserver.__file__, self.socket_path, json.dumps(sorted(modules))],
                                  env=env, cwd=self.folder)
        self.greeting: dict | None = None
        self.problem: str | None = None
        self.ready = threading.Event()
        self.last_used = time.monotonic()
        self.active = 0  # steps running; an idle helper goes away, a busy one never
        self.retired = False  # replaced: it stops once its last step ended
        self.lock = threading.Lock()  # over active and retired: steps start and end on their own threads
        threading.Thread(target=self._greet, name="warm-helper", daemon=True).start()

    def _greet(self):
        try:
            for line in self.proc.stdout:  # what preloading printed comes first
                if line.startswith(forkserver.GREETING.encode()):
                    self.greeting = json.loads(line[len(forkserver.GREETING):])
                    break
            else:
                raise ValueError("no greeting")
            if self.greeting["threads"] > 1:
                self.problem = (f"preloading {', '.join(sorted(self.modules))} started "
                                f"{self.greeting['threads'] - 1} thread(s); forking it is not safe")
        except (ValueError, KeyError, OSError):
            self.problem = "the warm-start helper did not start"
        finally:
            self.ready.set()
        for _ in iter(lambda: self.proc.stdout.read(1 << 12), b""):  # keep its pipe drained
            pass

    def usable(self) -> str | None:
        """Why this helper cannot run a step now, or None."""
        if self.proc.poll() is not None:
            return "the warm-start helper has exited"
        if self.problem:
            return self.problem
        for path, stamp in self.greeting["stamps"].items():
            try:
                if os.stat(path).st_mtime_ns != stamp:
                    return f"{path} changed since the warm-start helper imported it"
            except OSError:
                return f"{path} is gone since the warm-start helper imported it (an upgrade)"
        return None

    def covers(self, modules: frozenset[str]) -> bool:
        return modules <= set(self.greeting["loaded"]) | set(self.greeting["failed"])

    def retire(self):
        """Stop now, or, while steps still run in it (stopping it would stop them), after the last."""
        with self.lock:
            self.retired = True
            idle = not self.active
        if idle:
            self.stop()

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 9)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()
        self.proc.stdout.close()
        try:
            os.unlink(self.socket_path)
            os.rmdir(self.folder)
        except OSError:
            pass


class Pool:
    """This process's helpers, by interpreter and the variables they start with (``helper_variables``).
    Steps that leave PYTHONHASHSEED unset share their helper's random seed, where cold ones would each
    draw their own: a helper's seed cannot be changed in a child whose strings already hold their
    hashes, and ``hash()`` of a string is not a source of randomness."""

    def __init__(self):
        self._helpers: dict[tuple[str, tuple], Helper] = {}
        self._lock = threading.Lock()
        self._starter: ThreadPoolExecutor | None = None  # made with the first helper: no thread before

    def _start(self, python: str, modules: frozenset[str], variables: tuple) -> Helper:
        """Helpers die with the thread that started them (PR_SET_PDEATHSIG follows the thread, not the
        process): they are started by one long-lived thread, not by the step's, which ends with the step."""
        if self._starter is None:
            self._starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warm-start")
            threading.Thread(target=self._reap_idle, name="warm-idle", daemon=True).start()
        return self._starter.submit(Helper, python, modules, dict(variables)).result()

    def helper_for(self, python: str, modules: frozenset[str], variables: tuple) -> tuple[Helper | None, str]:
        """A ready helper that has ``modules``, or None and why the step starts cold. A missing helper is
        started and waited for (a cold start would spend the same time importing); one that died or whose
        packages changed is replaced and waited for; one without the step's modules is replaced by one
        with both sets, for the next step."""
        with self._lock:
            key = (python, variables)
            helper = self._helpers.get(key)
            if helper is not None and helper.ready.is_set():
                why = helper.usable()
                if why and helper.problem:
                    return None, why  # a new helper would start the same threads
                if why is None and not helper.covers(modules):
                    helper.retire()
                    self._helpers[key] = self._start(python, modules | helper.modules, variables)
                    return None, "it imports modules the warm-start helper had not preloaded (preloading them now)"
                if why:
                    helper.retire()
                    helper = None
            if helper is None:
                self._make_room(key)
                helper = self._helpers[key] = self._start(python, modules, variables)
        if not helper.ready.wait(GREETING_SECONDS):
            return None, "the warm-start helper is still starting"
        why = helper.usable() or (None if helper.covers(modules) else "it imports modules the warm-start helper "
                                  "has not preloaded")
        if why:
            return None, why
        helper.last_used = time.monotonic()
        return helper, ""

    def _make_room(self, key: tuple) -> None:
        """Room for one more helper within ``MAX_HELPERS``: the least recently used others are retired
        (steps running in them finish first). Steps whose variables differ need helpers of their own."""
        others = sorted((k for k in self._helpers if k != key), key=lambda k: self._helpers[k].last_used)
        for old in others[:max(0, len(others) - MAX_HELPERS + 1)]:
            self._helpers.pop(old).retire()

    def _reap_idle(self):
        while True:
            time.sleep(REAP_SECONDS)
            with self._lock:
                for python, helper in list(self._helpers.items()):
                    if time.monotonic() - helper.last_used > IDLE_SECONDS and not helper.active:
                        helper.stop()
                        del self._helpers[python]

    def stop_all(self):
        with self._lock:
            for helper in self._helpers.values():
                helper.stop()
            self._helpers.clear()


POOL = Pool()


class WarmHandle:
    """A step forked by a helper: its output through a pipe, its end and cancel through its connection."""

    def __init__(self, helper: Helper, argv: list[str], cwd: str, env: dict, path: list[str]):
        started = time.monotonic()
        self.helper = helper
        self.contained = bool(containment_prefix())
        read_fd, write_fd = os.pipe()
        self.conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.conn.connect(helper.socket_path)
            request = json.dumps({"argv": argv, "cwd": cwd, "env": env, "path": path,
                                  "contain": self.contained}).encode() + b"\n"
            socket.send_fds(self.conn, [request], [write_fd])
        finally:
            os.close(write_fd)
        self.output = os.fdopen(read_fd, "rb", buffering=0)
        self.reader = self.conn.makefile("rb")
        # The helper says it took the step before it forks it: the runner goes on meanwhile (a fork's time
        # a step), and a fork that fails is reported as the step's end.
        accepted = json.loads(self.reader.readline() or b"{}").get("accepted")
        self.start_seconds = time.monotonic() - started
        self.status: int | None = None
        self.error: str | None = None
        self._lock = threading.Lock()
        if not accepted:
            raise OSError("the warm-start helper did not take the step")
        with helper.lock:
            helper.active += 1

    LEFTOVER_GIVE_UP_SECONDS = 2.0  # as LocalHandle: after the step ended, a leftover holding its output

    def chunks(self) -> Iterator[bytes]:
        """The step's output until it closes, or, once the step has ended, until nothing came for a while
        (without a PID namespace a process the step left behind can hold the pipe open)."""
        fd, ended_at = self.output.fileno(), None
        poller = select.poll()  # not select(): a busy process has descriptors above 1024
        poller.register(fd, select.POLLIN)
        poller.register(self.conn.fileno(), select.POLLIN)
        try:
            while True:
                ready = {f for f, _ in poller.poll(100)}
                if fd in ready:
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        return
                    yield chunk
                elif ready:  # the helper reported the step's end (or died)
                    poller.unregister(self.conn.fileno())
                    self._read_status()
                    ended_at = time.monotonic()
                elif ended_at and time.monotonic() - ended_at > self.LEFTOVER_GIVE_UP_SECONDS:
                    return
        finally:
            self.output.close()

    def wait(self) -> int:
        self._read_status()
        return self.status

    def _read_status(self) -> None:
        with self._lock:
            if self.status is None:
                line = self.reader.readline()
                if not line:  # the helper died mid-step: its child died with it
                    self.status = -9
                    self.error = ("The warm-start helper running this step died while it ran, which stopped the "
                                  "step; it will be replaced (set MLPIPE_WARM_START=0 to start steps cold).")
                elif "error" in (message := json.loads(line)):
                    self.status, self.error = 1, message["error"]
                else:
                    self.status = os.waitstatus_to_exitcode(message["status"])
                    if self.contained and 128 < self.status <= 128 + signal.NSIG:  # as LocalHandle reads it
                        self.status = 128 - self.status
                with self.helper.lock:
                    self.helper.active -= 1
                    self.helper.last_used = time.monotonic()
                    last = self.helper.retired and not self.helper.active
                if last:
                    self.helper.stop()
                self.reader.close()
                self.conn.close()

    def cancel(self, grace_seconds: float = 3.0) -> None:
        try:
            self.conn.sendall(json.dumps({"cancel": grace_seconds}).encode() + b"\n")
        except OSError:
            pass

    def process_info(self) -> dict:
        return {}


def interpreter_path(working_dir: str, script: str, pythonpath: str, base: list[str],
                     safe_path: bool = False) -> list[str]:
    """``sys.path`` as ``python script`` in ``working_dir`` makes it: the script's own folder with links
    resolved (none with PYTHONSAFEPATH), then the entries of PYTHONPATH made absolute against the
    process's folder (an empty one is that folder), then the interpreter's own, each only the first time
    (site.removeduppaths)."""
    cwd = os.path.realpath(working_dir)  # what os.getcwd() says in the step
    entries = [os.path.abspath(os.path.join(cwd, p)) for p in pythonpath.split(os.pathsep) if pythonpath]
    first = [] if safe_path else [os.path.dirname(os.path.realpath(os.path.join(cwd, script)))]
    return [*first, *dict.fromkeys(entries + base)]


# What names one run (its id, folders, data and parameter values): read when used, and new every run.
RUN_VARIABLES = frozenset({contract.RUN_ID_VAR, contract.ROOT_RUN_ID_VAR, contract.EXPERIMENT_VAR, contract.RUN_DIR_VAR,
                           contract.STEP_NAME_VAR, contract.INPUT_DATASETS_VAR, contract.WORKSPACE_VAR})
RUN_VARIABLE_PREFIXES = ("AML_PARAMETER_", "AZUREML_DATAREFERENCE_")


def helper_variables(env: dict) -> tuple:
    """The step's variables its helper starts with: what the interpreter reads when it starts
    (PYTHONHASHSEED, PYTHONWARNINGS, ...) and preloaded modules read when imported (numpy's BLAS reads
    OMP_NUM_THREADS) must be the step's. All but PYTHONPATH (each step's own is put in front of the
    interpreter's path in its child) and those naming the run, so the steps of a pipeline share one."""
    return tuple(sorted((k, v) for k, v in env.items() if k != "PYTHONPATH" and k not in RUN_VARIABLES
                        and not k.startswith(RUN_VARIABLE_PREFIXES)))


def start_warm(job: Job, python: str, env: dict) -> tuple[WarmHandle | None, str]:
    """The step forked by its environment's helper, or None and why it starts cold."""
    if not enabled():
        return None, f"warm starts are off for this process ({SETTING}=0)"
    if env.get(SETTING) == "0":  # the step's own variables (RunConfiguration.environment_variables)
        return None, f"the step asks to start cold ({SETTING}=0 in its variables)"
    if job.distributed:
        return None, "a distributed step starts its processes cold"
    helper, why = POOL.helper_for(python, imported_modules(job.working_dir), helper_variables(env))
    if helper is None:
        return None, why
    if containment_prefix():  # the shell a cold step starts under does not pass on the caller's "_"
        env = {k: v for k, v in env.items() if k != "_"}
    path = interpreter_path(str(job.working_dir), job.script, env.get("PYTHONPATH", ""),
                            helper.greeting["base_path"], helper.greeting.get("safe_path", False))
    try:
        return WarmHandle(helper, [job.script, *job.argv()], str(job.working_dir), env, path), ""
    except OSError as e:
        return None, f"the warm-start helper could not start it ({e})"


__all__ = ["POOL", "WarmHandle", "enabled", "imported_modules", "start_warm"]
