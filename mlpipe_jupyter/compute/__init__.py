"""Compute backends by kind. Each backend is one module implementing running/protocol.py."""
from __future__ import annotations

from ..errors import UserError


def backends_for(workspace, plan) -> dict:
    """One backend object per compute target the plan uses, after checking what can be checked before
    anything runs (a Docker engine that answers, images that exist, interpreters and conda that are there)."""
    targets = workspace.compute_targets
    out = {}
    for sp in plan.steps.values():
        name = sp.compute_target
        kind = targets[name]["kind"]
        if name not in out:
            if kind == "local":
                from .local import LocalCompute

                out[name] = LocalCompute(workspace)
            elif kind == "docker":
                from .docker import DockerBackend

                out[name] = DockerBackend(workspace, name, targets[name]["config"])
            else:
                raise UserError(f"Step '{sp.name}': compute target '{name}' of kind '{kind}' is not supported here.")
        if kind == "local" and (sp.environment.needs_build or sp.environment.python.interpreter_path):
            from .envbuild import check_local  # only an environment of its own has anything to check

            check_local(sp.environment, sp.name)
        elif kind == "docker":
            out[name].check(sp.name, sp.environment)
    return out
