"""The first process of a step's PID namespace: starts the step, reaps what it leaves, ends with it.

Run as ``python -I -S step_init.py STATUS_FILE -- COMMAND...`` (no site, no imports of this package:
it starts in milliseconds). The step is its child, so it is an ordinary process: signals it sends
itself work and it is not the namespace's first process. When the step ends this process ends, and
the kernel then ends every process left in the namespace. A first process cannot end by a signal, so
it exits with 128 + the signal number, as shells do, and writes the step's exact exit status
(negative for a signal) to STATUS_FILE for the runner's message.
"""
import os
import signal
import sys


def main() -> None:
    status_file, command = sys.argv[1], sys.argv[3:]
    pid = os.fork()
    if pid == 0:
        for sig in (signal.SIGPIPE, signal.SIGXFSZ):  # Python ignores these; the step starts with defaults
            signal.signal(sig, signal.SIG_DFL)
        try:
            os.execvp(command[0], command)
        except OSError as e:
            os.write(2, f"mlpipe: cannot start {command[0]}: {e}\n".encode())
            os._exit(127)
    while True:
        try:
            done, status = os.waitpid(-1, 0)  # also reaps the step's orphans, which come to this process
        except ChildProcessError:
            status = 1 << 8
            break
        if done == pid:
            break
    code = os.waitstatus_to_exitcode(status)
    if status_file:
        try:
            with open(status_file, "w") as f:
                f.write(str(code))
        except OSError:
            pass
    os._exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
