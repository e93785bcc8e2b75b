"""Compute backends, one module per kind (local.py, docker.py, ray.py), each registered with the compute protocol
(running/protocol.py). A new kind is a module here and its line below."""
from __future__ import annotations

from mlpipe_jupyter.compute import docker, local, ray  # noqa: F401 - importing a backend registers its kind
from mlpipe_jupyter.errors import UserError
from mlpipe_jupyter.running.protocol import ComputeBackend, backend_class, backend_kinds


def backend_for(workspace, name: str, target: dict) -> ComputeBackend:
    """The backend object of a compute target (``target``: its {"kind", "config"})."""
    cls = backend_class(target["kind"])
    if cls is None:
        raise UserError(f"Compute target '{name}' is of kind '{target['kind']}', which this installation does not "
                        f"run (kinds: {', '.join(backend_kinds())}).")
    return cls(workspace, name, target.get("config"))


def backends_for(workspace, target_names) -> dict[str, ComputeBackend]:
    """One backend object per compute target named."""
    targets = workspace._compute_records()
    return {name: backend_for(workspace, name, targets[name]) for name in dict.fromkeys(target_names)}


def check_plan(backends: dict, plan) -> None:
    """What can be checked before anything runs (a Docker engine that answers, images that exist,
    interpreters and conda that are there), each problem named once, for the first step it hits."""
    checked = set()
    for sp in plan.steps.values():
        key = (sp.compute_target, sp.environment.content_hash)
        if key not in checked:
            checked.add(key)
            backends[sp.compute_target].check(sp.name, sp.environment)


def recover(runs: list[dict], targets: dict) -> None:
    """Runs whose runner died: each kind of target they used removes what their steps left there."""
    kinds = {targets.get(r["details"].get("compute_target"), {}).get("kind") for r in runs}
    for kind in sorted(k for k in kinds if k):
        cls = backend_class(kind)
        if cls is not None:
            cls.recover(runs, targets)
