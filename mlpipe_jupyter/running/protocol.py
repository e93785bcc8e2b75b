"""The compute protocol: the runner's only view of where a step runs.

A backend turns a ``Job`` into a running process with ``start(job) -> Handle``. The handle yields
what the step prints, waits for the exit code and cancels. A backend whose steps cannot change their
inputs (read-only mounts) says so with ``inputs_read_only = True``; the runner checks the others. Paths in a job are host paths; a backend that runs
elsewhere (a container, a cluster) maps them with ``job.argv(path_of)`` and ``job.environ(path_of)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol

from mlpipe_jupyter.sdk.environment import Environment
from mlpipe_jupyter.planning.planner import Ref


@dataclass
class Job:
    run_id: str  # this step run
    parent_run_id: str | None
    experiment: str
    step_name: str
    script: str  # relative to working_dir
    arguments: list  # str or Ref
    env_vars: dict  # str or Ref values
    working_dir: Path  # the step's copy of its snapshot; becomes the process's cwd
    run_dir: Path  # the step's run folder (metrics file, images, uploaded files); the runner keeps it after
    inputs: dict[str, Path]
    outputs: dict[str, Path]
    environment: Environment
    input_datasets: dict = field(default_factory=dict)
    scratch: Path | None = None  # the step's private folder holding all of the above but inputs in place

    def _path(self, ref: Ref, path_of: Callable[[str, str, Path], str]) -> str:
        table = self.inputs if ref.kind == "input" else self.outputs
        return path_of(ref.kind, ref.name, table[ref.name])

    def argv(self, path_of=lambda kind, name, host: str(host)) -> list[str]:
        return [a if isinstance(a, str) else self._path(a, path_of) for a in self.arguments]

    def environ(self, path_of=lambda kind, name, host: str(host)) -> dict[str, str]:
        return {k: v if isinstance(v, str) else self._path(v, path_of) for k, v in self.env_vars.items()}


class Handle(Protocol):
    def chunks(self) -> Iterator[bytes]:
        """What the step prints, as bytes, until it ends (the runner splits lines and keeps every byte)."""

    def wait(self) -> int:
        """The exit code, once the step has ended."""

    def cancel(self) -> None:
        """Stop the step and everything it started; safe to call twice or after it ended."""

    def process_info(self) -> dict:
        """What crash recovery needs to kill this step later (``pgid``, ``pgid_start``), or {}."""


class ComputeBackend(Protocol):
    name: str

    def start(self, job: Job) -> Handle: ...
