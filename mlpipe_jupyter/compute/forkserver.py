"""The warm-start helper: one process per environment that has imported the modules its steps import,
and forks a fresh child per step (compute/warm.py is the runner's side).

It runs by file path in the environment's own interpreter, so it uses the standard library only. It is
single-threaded: forking a process that runs other threads can leave a lock held for ever in the
child, so a helper whose preloaded modules started threads says so in its greeting and is not used.

The child is made to look like a fresh interpreter running the script: its own session and process
group, the step's output pipe as stdout and stderr, stdin from /dev/null, the step's working folder,
variables, ``sys.argv`` and ``sys.path``, the signal dispositions the interpreter started with, fresh
random states (the module-level generators of ``RESEEDS``: Python's, numpy's, torch's, tensorflow's,
cupy's), the script run as ``__main__``, a traceback without this module's frames, the end of a script
(threads joined, exit handlers run, files flushed) and the exit status Python gives. The helper
says when it took a step and reports its wait status when it ends, and stops a child's process
group when asked to.

A limit: a generator a preloaded package made for itself at import (say ``_rng = random.Random()``)
starts every child in the same state, and cannot be told from one seeded on purpose with a fixed value,
so it is not reseeded; a package can reseed its own with ``os.register_at_fork(after_in_child=...)``,
which runs in each child (children are made with ``os.fork``). A step whose randomness comes from such
a package should start cold (``MLPIPE_WARM_START=0`` in its variables).

Protocol, one connection per step on a Unix socket: the runner sends a JSON line (argv, cwd, env,
path) with the output pipe's write end attached; the helper answers ``{"accepted": true}`` before it
forks, and later ``{"status": S}`` (a wait status), or ``{"error": message}`` where it could not fork;
the runner may send ``{"cancel": grace seconds}`` meanwhile.
"""
from __future__ import annotations

import array
import atexit
import ctypes
import gc
import importlib
import importlib.machinery
import io
import json
import os
import selectors
import signal
import socket
import struct
import sys
import threading
import time
import types
from importlib.metadata import distribution, packages_distributions
from typing import NoReturn

GREETING = "mlpipe-warm-helper "  # begins the line the runner waits for
STARTUP_SIGNALS = {s: signal.getsignal(s) for s in signal.valid_signals()
                   if s not in (signal.SIGKILL, signal.SIGSTOP)}  # as a fresh interpreter has them


def preload(modules: list[str]) -> dict:
    """Import each module; what was imported, what failed, the threads running after, and the files
    whose change means an upgraded package (each module's file and its distribution's metadata folder)."""
    loaded, failed = [], {}
    for name in modules:
        try:
            importlib.import_module(name)
            loaded.append(name)
        except BaseException as e:  # noqa: BLE001 - a module that cannot load is simply not preloaded
            failed[name] = f"{type(e).__name__}: {e}"
    return {"loaded": loaded, "failed": failed, "threads": thread_count(), "stamps": stamps(loaded)}


def thread_count() -> int:
    """Python threads: a fork copies only the forking one, and a lock another held stays held in the child.
    (Native pools such as OpenBLAS's register fork handlers of their own and are not counted.)"""
    return threading.active_count()


def stamps(modules: list[str]) -> dict[str, int]:
    """path -> mtime_ns of what an upgrade changes: the module's file and its distribution's metadata."""
    found = {}
    try:
        owners = packages_distributions()
    except Exception:  # noqa: BLE001 - then module files only
        owners = {}
    for name in modules:
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            found[path] = os.stat(path).st_mtime_ns
        for dist_name in owners.get(name.split(".")[0], []):
            try:
                folder = str(distribution(dist_name)._path)  # the .dist-info folder an upgrade replaces
                found[folder] = os.stat(folder).st_mtime_ns
            except Exception:  # noqa: BLE001 - no metadata folder to watch
                pass
    return found


# -- the child ---------------------------------------------------------------------------------------------
def become_step(request: dict, out_fd: int) -> NoReturn:
    """In the forked child: turn into the step, run it, and end as the interpreter ends a script
    (``end_as_a_script``). It never returns into the helper's loop."""
    try:
        os.setsid()
        if request.get("contain"):
            contain()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        for fd in (devnull, out_fd):
            if fd > 2:
                os.close(fd)
        for sig, handler in STARTUP_SIGNALS.items():
            try:
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
            except (OSError, ValueError, TypeError):
                pass
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = list(request["argv"])
        if hasattr(sys, "orig_argv"):  # as the interpreter was called: the same interpreter, then the script
            sys.orig_argv = [sys.orig_argv[0], *sys.argv]
        sys.path[:] = request["path"]
        fresh_streams(request["env"])
        fresh_random_states()
    except BaseException:  # noqa: BLE001 - the step never started: say why, and end without the helper's exit
        try:
            sys.excepthook(*sys.exc_info())
            sys.stderr.flush()
        finally:
            os._exit(1)
    end_as_a_script(run_main(os.path.abspath(request["argv"][0])))


def end_as_a_script(code: int) -> NoReturn:
    """What the interpreter's own end does that a script can see: wait for the threads it left running,
    run the exit handlers (also those of modules the helper imported first, which the script's imports
    would have registered), tear down what the script's own modules hold (``__main__`` and the modules
    imported since the fork, newest first, as the interpreter does: a temporary file is removed, a file
    left open is flushed), flush the files still open, and exit with the script's status.

    The helper's preloaded modules are not torn down: that would copy all their pages into the child
    (about 250 ms a step with pandas and scikit-learn) to free what the exit frees anyway. So an object a
    step stored inside a preloaded module is not finalized; a file among them is still flushed. Where
    daemon threads still run, nothing is torn down and only the standard streams are flushed: what the
    interpreter does then too (a file left open stays unflushed), and tearing modules down under running
    threads would print errors a cold step never shows."""
    try:
        threading._shutdown()  # the non-daemon threads, as the interpreter waits for them
        atexit._run_exitfuncs()
        if threading.active_count() == 1:
            for name in [*reversed([m for m in sys.modules if m not in INHERITED]), "__main__"]:
                module = sys.modules.get(name)
                if module is not None:
                    clear_module(module)
            gc.collect()
            for obj in gc.get_objects():  # made since the fork (the helper's are frozen): files kept in
                if isinstance(obj, io.IOBase):  # preloaded modules
                    try:
                        if not obj.closed and obj.writable():
                            obj.flush()
                    except Exception:  # noqa: BLE001 - as the interpreter, a file that cannot be flushed is left
                        pass
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed stream: nothing to flush
                pass
    finally:
        os._exit(code)


def clear_module(module: types.ModuleType) -> None:
    """As the interpreter clears a module at its end: names set to None, not removed (the handlers that
    run meanwhile, logging's among them, expect that), those starting with one underscore first."""
    names = module.__dict__
    for first in (True, False):
        for name in list(names):
            if name != "__builtins__" and (name.startswith("_") and not name.startswith("__")) == first:
                names[name] = None


CLONE_NEWPID = 0x20000000
INHERITED: frozenset = frozenset()  # the modules a child starts with (end_as_a_script keeps them)
LIBC = ctypes.CDLL(None, use_errno=True)
OWN_PID_NAMESPACE: int | None = None  # the helper's own PID namespace (a descriptor), where it can make new ones


def contain() -> None:
    """As a cold step runs: in a PID namespace of its own under a small first process, so that whatever
    it leaves running ends with it. Called in the namespace's first process (``fork_child`` made the
    namespace); returns in the step's process, and the first process exits with its status (a signal N
    as 128 + N, as the cold path's shell reports it)."""
    step = os.fork()
    if step:  # the namespace's first process: reap until the step ends, then end (the kernel ends the rest)
        while True:
            pid, status = os.wait()
            if pid == step:
                code = os.waitstatus_to_exitcode(status)
                os._exit(128 - code if code < 0 else code)


def fork_child(contain: bool) -> tuple[int, bool]:
    """os.fork(); with ``contain`` and where this helper can make PID namespaces, the child is the first
    process of a new one. The helper makes it for this one child and then goes back to its own, so
    no process stands between the helper and the namespace (each one more costs a fork and an exit per
    step). Returns (pid, whether the child is in a namespace of its own)."""
    if not contain or OWN_PID_NAMESPACE is None or LIBC.unshare(CLONE_NEWPID) != 0:
        return os.fork(), False
    pid = -1
    try:
        pid = os.fork()
    finally:
        if pid != 0 and LIBC.setns(OWN_PID_NAMESPACE, CLONE_NEWPID) != 0:
            os._exit(1)  # its next children would start in a namespace without a first process: replaced
    if pid == 0:
        os.close(OWN_PID_NAMESPACE)
    return pid, True


def open_own_pid_namespace() -> int | None:
    """The helper's PID namespace, once it has been shown that it can make a new one and come back."""
    try:
        own = os.open("/proc/self/ns/pid", os.O_RDONLY)
    except OSError:
        return None
    if LIBC.unshare(CLONE_NEWPID) == 0 and LIBC.setns(own, CLONE_NEWPID) == 0:
        return own
    os.close(own)
    return None


def fresh_streams(env: dict) -> None:
    """stdout and stderr on the new descriptors, buffered as Python would for that environment."""
    unbuffered = bool(env.get("PYTHONUNBUFFERED"))
    encoding = env.get("PYTHONIOENCODING", "").split(":")[0] or sys.stdout.encoding
    for fd, name in ((1, "stdout"), (2, "stderr")):
        raw = io.FileIO(fd, "w", closefd=False)
        buffered = raw if unbuffered else io.BufferedWriter(raw)
        errors = "backslashreplace" if name == "stderr" else sys.stdout.errors
        stream = io.TextIOWrapper(buffered, encoding=encoding, errors=errors, write_through=unbuffered or
                                  name == "stderr", line_buffering=False)
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding=encoding)


def fresh_words(n: int) -> list[int]:
    return list(struct.unpack(f"{n}I", os.urandom(4 * n)))


# Module-level generators that the helper's import seeded once, and that every child would otherwise
# repeat, by the module holding them. Each is reseeded from fresh system entropy in a child that
# inherited that module; where the helper never imported it, the step imports it afresh, as cold.
RESEEDS = {
    "random": lambda m: m.seed(os.urandom(32)),  # (Python's own after-fork hook reseeds it too)
    "numpy.random": lambda m: m.seed(fresh_words(8)),  # the global RandomState behind numpy.random.rand
    "torch": lambda m: m.manual_seed(int.from_bytes(os.urandom(8), "little")),  # the CPU's and each device's
    "tensorflow": lambda m: m.random.set_seed(int.from_bytes(os.urandom(4), "little")),
    "cupy.random": lambda m: m.reset_states(),  # made again on first use from entropy (or CUPY_SEED), as cold
}


def fresh_random_states() -> None:
    """Reseed what RESEEDS lists: only modules already loaded (reseeding must not import anything)."""
    for name, reseed in RESEEDS.items():
        module = sys.modules.get(name)
        if module is not None:
            try:
                reseed(module)
            except Exception:  # noqa: BLE001 - a version without that call: its generator is left as is
                pass


def run_main(script: str) -> int:
    """Run the script as ``__main__``, as ``python script.py`` does (runpy would set ``sys.argv[0]`` to
    the absolute path); the exit status Python would give it."""
    try:
        execute_main(script)
        return 0
    except SystemExit as e:
        if e.code is None:
            return 0
        if isinstance(e.code, int):
            return e.code
        print(e.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:  # as Python does: the traceback, then die of SIGINT
        report(e, script)
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        return 130
    except BaseException as e:  # noqa: BLE001 - reported as the interpreter would
        report(e, script)
        return 1


def execute_main(script: str) -> None:
    """A fresh ``__main__`` module for the script (its ``__file__`` absolute, as since Python 3.9)."""
    with open(script, "rb") as f:
        source = f.read()
    main = types.ModuleType("__main__")
    main.__file__ = script
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", script)
    main.__builtins__ = __builtins__
    main.__spec__ = main.__package__ = main.__cached__ = None
    sys.modules["__main__"] = main
    exec(compile(source, script, "exec"), main.__dict__)


def report(error: BaseException, script: str) -> None:
    """The traceback from the script's own frames on, as a cold interpreter prints it."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != script:
        tb = tb.tb_next
    if tb is not None:  # the hook prints the exception's own traceback, whatever it is given
        error.with_traceback(tb)
    sys.excepthook(type(error), error, error.__traceback__)


# -- the helper --------------------------------------------------------------------------------------------
def receive(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds = b"", []
    while not data.endswith(b"\n"):
        chunk, ancdata, _, _ = conn.recvmsg(1 << 16, socket.CMSG_SPACE(4 * 4))
        if not chunk:
            raise EOFError
        data += chunk
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += array.array("i", payload[:len(payload) - len(payload) % 4]).tolist()
    return json.loads(data), fds


def send(conn: socket.socket, message: dict) -> None:
    try:
        conn.sendall(json.dumps(message).encode() + b"\n")
    except OSError:
        pass  # the runner went away: the child is stopped when its connection closes


def serve(listener: socket.socket) -> None:
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    # A child's end wakes the loop at once (a step's end is reported without waiting for the next poll).
    wake_read, wake_write = socket.socketpair()
    wake_read.setblocking(False)
    wake_write.setblocking(False)
    signal.set_wakeup_fd(wake_write.fileno())
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    selector.register(wake_read, selectors.EVENT_READ, "wake")
    children: dict[int, socket.socket] = {}  # pid -> its connection
    kill_at: dict[int, float] = {}  # pid -> when SIGKILL follows the SIGTERM of a cancel
    while True:
        for key, _ in selector.select(0.05):
            if key.data == "wake":
                try:
                    wake_read.recv(4096)
                except BlockingIOError:
                    pass
                continue
            if key.fileobj is listener:
                conn, _ = listener.accept()
                try:
                    request, fds = receive(conn)
                except (EOFError, OSError, ValueError):
                    conn.close()
                    continue
                sys.stdout.flush()
                send(conn, {"accepted": True})  # before the fork, which the runner need not wait for
                try:
                    pid, request["contain"] = fork_child(bool(request.get("contain")))
                except OSError as e:  # no memory for another process, say: the step fails, the helper serves on
                    send(conn, {"error": f"The warm-start helper could not fork the step ({e}); set "
                                         "MLPIPE_WARM_START=0 in its variables to start it cold."})
                    for fd in fds:
                        os.close(fd)
                    conn.close()
                    continue
                if pid == 0:
                    signal.set_wakeup_fd(-1)
                    selector.close()
                    wake_read.close()
                    wake_write.close()
                    listener.close()
                    for other in children.values():
                        other.close()
                    conn.close()
                    become_step(request, fds[0])
                for fd in fds:
                    os.close(fd)
                children[pid] = conn
                selector.register(conn, selectors.EVENT_READ, pid)
            else:  # a cancel, or the runner closed the connection: stop the child's group
                pid = key.data
                try:
                    message = key.fileobj.recv(1 << 12)
                except OSError:
                    message = b""
                grace = 3.0
                if message:
                    try:
                        grace = float(json.loads(message.splitlines()[0]).get("cancel", grace))
                    except (ValueError, AttributeError):
                        pass
                else:
                    selector.unregister(key.fileobj)
                stop_group(pid, signal.SIGTERM)
                kill_at.setdefault(pid, time.monotonic() + grace)
        for pid, when in list(kill_at.items()):
            if time.monotonic() >= when:
                stop_group(pid, signal.SIGKILL)
                del kill_at[pid]
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            stop_group(pid, signal.SIGKILL)  # whatever the step left in its group
            kill_at.pop(pid, None)
            conn = children.pop(pid, None)
            if conn is not None:
                send(conn, {"status": status})
                try:
                    selector.unregister(conn)
                except (KeyError, ValueError):
                    pass
                conn.close()


def stop_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def main() -> None:
    socket_path, modules = sys.argv[1], json.loads(sys.argv[2])
    state = preload(modules)
    global OWN_PID_NAMESPACE
    OWN_PID_NAMESPACE = open_own_pid_namespace()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(64)
    state["base_path"] = [p for p in sys.path if p != os.path.dirname(os.path.abspath(__file__))]
    state["safe_path"] = bool(getattr(sys.flags, "safe_path", False))  # PYTHONSAFEPATH: no script folder first
    print(GREETING + json.dumps(state), flush=True)  # the runner reads it from the helper's output
    # What the helper holds now is out of the garbage collector's reach (gc.freeze is made for a process
    # that forks without exec): a child's collections, the one at its end above all, then never walk
    # the preloaded modules' objects, which would copy every page of them into the child (about 6 ms a
    # step without preloads, 200 ms with pandas and scikit-learn). The price: a reference cycle among
    # them that a step lets go of is freed with the child, not collected (its __del__ does not run).
    gc.collect()
    gc.freeze()
    global INHERITED
    INHERITED = frozenset(sys.modules)
    serve(listener)


if __name__ == "__main__":
    main()
