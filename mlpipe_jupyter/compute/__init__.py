"""Compute backends by kind. Each backend is one module implementing running/protocol.py."""
from __future__ import annotations

from mlpipe_jupyter.errors import UserError


def backends_for(workspace, plan) -> dict:
    """One backend object per compute target the plan uses, after checking what can be checked before
    anything runs (a Docker engine that answers, images that exist, interpreters and conda that are there)."""
    targets = workspace.compute_targets
    out, checked = {}, set()
    for sp in plan.steps.values():
        name = sp.compute_target
        kind = targets[name]["kind"]
        if name not in out:
            if kind == "local":
                from mlpipe_jupyter.compute.local import LocalCompute

                out[name] = LocalCompute(workspace)
            elif kind == "docker":
                from mlpipe_jupyter.compute.docker import DockerBackend

                out[name] = DockerBackend(workspace, name, targets[name]["config"])
            else:
                raise UserError(f"Step '{sp.name}': compute target '{name}' of kind '{kind}' is not supported here.")
        env = sp.environment
        if kind == "local" and not (env.needs_build or env.python.interpreter_path):
            continue  # only an environment of its own has anything to check
        if (name, env.content_hash) in checked:  # each problem is named once, for the first step it hits
            continue
        checked.add((name, env.content_hash))
        if kind == "local":
            from mlpipe_jupyter.compute.envbuild import check_local

            check_local(env, sp.name)
        else:
            out[name].check(sp.name, env)
    return out
