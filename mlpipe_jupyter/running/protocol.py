"""The compute protocol: the runner's only view of where a step runs.

A backend (``ComputeBackend``, one module per kind, registered by kind) turns a ``Job`` into a running
process with ``start(job) -> Handle``. The handle yields what the step prints, waits for the exit code
and cancels. Paths in a job are host paths; a backend that runs elsewhere (a container, a cluster)
maps them with ``job.argv(path_of)`` and ``job.environ(path_of)``, and brings back in ``collect`` what
the step wrote there.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Protocol

from mlpipe_jupyter.model.environment import EnvironmentDefinition

if TYPE_CHECKING:  # a job only carries the planner's path placeholders; the planner need not load
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
    environment: EnvironmentDefinition
    input_datasets: dict = field(default_factory=dict)
    scratch: Path | None = None  # the step's private folder holding all of the above but inputs in place
    workspace_dir: str | None = None  # the workspace's root, for a script that opens it (where it is reachable)
    distributed: dict | None = None  # processes per node and nodes to start (compute/launch_ranks.py)

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


class ComputeBackend:
    """What every kind of compute target gives the runner; one subclass per kind, in one module, made
    known with ``@register("kind")``.

    The stages, in the order a step meets them: ``identity`` (what of the target can change a result:
    it enters the reuse key), ``check`` (before the run starts: fail fast, naming the step), ``capacity``
    (steps at once), ``start`` (a running step, as a ``Handle``), ``collect`` (after the step ended:
    bring what it wrote elsewhere, outputs, logs and metrics, into the job's folders on this host), and,
    once a runner died, ``recover`` (remove what its steps left on the target)."""

    kind = ""
    inputs_read_only = False  # True when steps cannot change their inputs (read-only mounts)

    def __init__(self, workspace, target_name: str, config: dict | None = None):
        self.workspace = workspace
        self.target_name = target_name
        self.config = dict(config or {})

    def identity(self) -> dict:
        """The part of the target that can change a step's result: its kind and the image or environment
        it gives steps that name none (not its name, limits or concurrency)."""
        identity = {"kind": self.kind}
        for key in ("image", "environment"):
            if self.config.get(key):
                identity[key] = self.config[key]
        return identity

    def check(self, step_name: str, environment: EnvironmentDefinition) -> None:
        """Raise a UserError naming the step when it cannot run here; nothing by default."""

    def capacity(self) -> int | None:
        """How many steps may run on this target at once, over every run of this process (None: no limit)."""
        limit = self.config.get("max_concurrency")
        return int(limit) if limit else None

    def start(self, job: Job) -> Handle:
        raise NotImplementedError

    def collect(self, job: Job, handle: Handle) -> None:
        """After the step ended: what it wrote on another machine into ``job``'s folders; a backend whose
        steps write on this host has nothing to do."""

    @classmethod
    def recover(cls, runs: list[dict], targets: dict) -> None:
        """Runs whose runner died (their rows): remove what their steps left running on targets of this kind
        (``targets``: every target by name, {"kind", "config"}, to reach the ones the runs used)."""


_backends: dict[str, type[ComputeBackend]] = {}


def register(kind: str):
    """Class decorator: ``@register("docker")`` makes a backend the one for targets of that kind."""
    def add(cls):
        cls.kind = kind
        _backends[kind] = cls
        return cls

    return add


def backend_class(kind: str) -> type[ComputeBackend] | None:
    return _backends.get(kind)


def backend_kinds() -> list[str]:
    return sorted(_backends)
