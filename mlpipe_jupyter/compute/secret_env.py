"""A step's secret variables, carried in a file only its user can read rather than in a job's request.

A Ray job's ``runtime_env`` variables are shown in the cluster's dashboard and job list, so a step's
secret-looking variables go into a file (mode 0600) in the step's private folder, on the storage the
nodes share, and this script, started as the job's entrypoint, puts them into the environment, removes
the file and runs the step's command. It runs by file path in whatever Python the node has, so it uses
the standard library only: ``python -I secret_env.py FILE SHELL_COMMAND``.
"""
from __future__ import annotations

import json
import os
import sys


def write(path: str, variables: dict) -> None:
    """The variables into a new file no one else can read (it must not exist: no one else's file is reused)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(variables, f)


def main(argv: list[str]) -> None:
    path, command = argv
    with open(path) as f:
        variables = json.load(f)
    os.remove(path)  # read once: the step has them in its environment
    os.environ.update(variables)
    os.execv("/bin/sh", ["sh", "-c", command])


if __name__ == "__main__":
    main(sys.argv[1:])
